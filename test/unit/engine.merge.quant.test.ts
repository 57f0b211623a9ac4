// What a quantised base cost (server/engine/merge.ts quantisationCost, checkMerge): on the shipped
// tiny model and the reference checkpoints, each reported figure against the two forwards run
// here, and no figure where the run held every weight as stored.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '../../kernels/backends/backend';
import { basePrecisionSchema, baseFormats, type BasePrecisionKeys } from '../../server/config/schema';
import { checkMerge, checkTokenIds, mergeIntoModel, quantisationCost, UNRECORDED_PRECISION } from '../../server/engine/merge';
import { selectModules } from '../../server/models/adapters';
import { CausalLM } from '../../server/models/model';
import { readModelLayout } from '../../server/models/modules';
import type { Adapter } from '../../kernels/adapter/linear';
import type { QuantisationCost } from '../../protocol/cli';
import { trainedAdapters } from '../helpers/adapters';

const ROOT = join(import.meta.dirname, '..', '..');
const TINY = join(ROOT, 'examples', 'tiny-model');
const FIXTURES = join(ROOT, 'test', 'fixtures', 'models');
let dir: string;

const keys = (input: Record<string, unknown>): BasePrecisionKeys => basePrecisionSchema.parse(input);

/** A trained-looking MoSLoRA adapter on every linear module but the (tied) head. */
async function adaptersOn(modelDir: string): Promise<Map<string, Adapter>> {
  const { layout } = await readModelLayout(modelDir);
  const targets = layout.linears.map((m) => m.name).filter((name) => !name.endsWith('lm_head'));
  return trainedAdapters(selectModules(layout.linears, targets).selected, { method: 'moslora', r: 8, alpha: 16 }, 11);
}

/** The check batch through the model loaded at `precision` (float32 unless given) with the adapter. */
async function logits(modelDir: string, adapters: ReadonlyMap<string, Adapter>, precision?: BasePrecisionKeys): Promise<tf.Tensor3D> {
  const model = await CausalLM.load(modelDir, precision ? { formats: baseFormats(precision) } : {});
  try {
    return model.forward([checkTokenIds(model.config.vocabSize, model.config.maxPositions)], { adapters });
  } finally {
    model.dispose();
  }
}

/** The cost computed here: max, mean and max relative to the float32 logits' largest magnitude. */
async function expectedCost(modelDir: string, adapters: ReadonlyMap<string, Adapter>, precision: BasePrecisionKeys) {
  const [full, low] = [await logits(modelDir, adapters), await logits(modelDir, adapters, precision)];
  const [max, mean, largest] = tf.tidy(() => {
    const diff = tf.abs(tf.sub(full, low));
    return [tf.max(diff), tf.mean(diff), tf.max(tf.abs(full))].map((t) => t.dataSync()[0]!);
  });
  tf.dispose([full, low]);
  return { max: max!, mean: mean!, relative: max! / largest! };
}

function assertClose(actual: number, expected: number, what: string): void {
  assert.ok(Math.abs(actual - expected) <= 1e-5 * expected, `${what}: reported ${actual}, computed here ${expected}`);
}

function measured(cost: QuantisationCost): Extract<QuantisationCost, { status: 'measured' }> {
  assert.equal(cost.status, 'measured', JSON.stringify(cost));
  return cost as Extract<QuantisationCost, { status: 'measured' }>;
}

describe('the cost of a quantised base, measured', () => {
  let adapters: Map<string, Adapter>;
  before(async () => {
    await selectBackend('wasm');
    dir = await mkdtemp(join(tmpdir(), 'moslora-merge-quant-'));
    adapters = await adaptersOn(TINY);
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const cases = [
    { name: '4-bit nf4', precision: { load_in_4bit: true, bnb_4bit_quant_type: 'nf4' }, words: 'nf4 (groups of 64), embedding and lm_head float32' },
    { name: '4-bit int4, groups of 32', precision: { load_in_4bit: true, bnb_4bit_quant_type: 'int4', quant_group_size: 32 }, words: 'int4 (groups of 32), embedding and lm_head float32' },
    { name: '8-bit', precision: { load_in_8bit: true }, words: 'int8 (groups of 64), embedding and lm_head float32' },
    { name: 'bfloat16 (rounding a float32 checkpoint)', precision: { torch_dtype: 'bfloat16' }, words: 'bfloat16' },
  ];
  const reported = new Map<string, number>();
  for (const { name, precision, words } of cases) {
    it(`${name}: the figures are the two forwards' difference, and above 0`, async () => {
      const cost = measured(await quantisationCost(TINY, adapters, keys(precision)));
      assert.equal(cost.basePrecision, words);
      const expected = await expectedCost(TINY, adapters, keys(precision));
      assert.ok(expected.max > 0, `the ${name} base changes the logits (${expected.max})`);
      assertClose(cost.maxAbsLogitDiff, expected.max, 'max |Δlogit|');
      assertClose(cost.meanAbsLogitDiff, expected.mean, 'mean |Δlogit|');
      assertClose(cost.relativeLogitDiff, expected.relative, 'max |Δlogit| / max |logit|');
      reported.set(name, cost.maxAbsLogitDiff);
    });
  }

  it('8 bits cost less than 4, and bfloat16 less than 8 bits', () => {
    assert.ok(reported.get('8-bit')! < reported.get('4-bit nf4')!, JSON.stringify([...reported]));
    assert.ok(reported.get('bfloat16 (rounding a float32 checkpoint)')! < reported.get('8-bit')!, JSON.stringify([...reported]));
  });

  it('a merge reports the merged model against base + adapter and the cost from one float32 reference', async () => {
    const { layout } = await readModelLayout(TINY);
    const merged = await mergeIntoModel(TINY, join(dir, 'merged'), adapters, layout.linears);
    const nf4 = keys({ load_in_4bit: true });
    const check = await checkMerge(TINY, merged.outDir, adapters, nf4);
    assert.ok(check.maxAbsLogitDiff < 1e-4, `merged vs base + adapter: ${check.maxAbsLogitDiff}`);
    assert.deepEqual(check.quantisation, await quantisationCost(TINY, adapters, nf4));
    assert.deepEqual((await checkMerge(TINY, merged.outDir, adapters, keys({}))).quantisation, { status: 'not-quantised', basePrecision: 'float32', reason: 'the base was held at float32' });
  });

  it('a run at the precision the checkpoint stores is not quantised: no figure, and the reason', async () => {
    const qwen = join(FIXTURES, 'tiny-qwen2'); // BF16
    const gpt2 = join(FIXTURES, 'tiny-gpt2'); // F16
    assert.deepEqual(await quantisationCost(qwen, new Map(), keys({ torch_dtype: 'bfloat16' })), {
      status: 'not-quantised', basePrecision: 'bfloat16', reason: `bfloat16 holds every weight of ${qwen} as stored (BF16)`,
    });
    assert.deepEqual(await quantisationCost(gpt2, new Map(), keys({ torch_dtype: 'float16' })), {
      status: 'not-quantised', basePrecision: 'float16', reason: `float16 holds every weight of ${gpt2} as stored (F16)`,
    });
    // the other half precision, or 8 bits on top, changes the weights
    assert.equal((await quantisationCost(gpt2, await adaptersOn(gpt2), keys({ torch_dtype: 'bfloat16' }))).status, 'measured');
    assert.equal((await quantisationCost(qwen, await adaptersOn(qwen), keys({ torch_dtype: 'bfloat16', load_in_8bit: true }))).status, 'measured');
  });

  it('an adapter that records no precision reads as float32, and says so; an unreadable base is not measured', async () => {
    assert.deepEqual(await quantisationCost(TINY, adapters, undefined), { status: 'not-quantised', basePrecision: 'float32', reason: UNRECORDED_PRECISION });
    const nf4 = keys({ load_in_4bit: true });
    const none = await quantisationCost(undefined, adapters, nf4);
    assert.equal(none.status, 'not-measured');
    assert.match((none as { reason: string }).reason, /^the adapter records no base model; name the base model folder \(moslora export --model DIR\)/);
    const missing = await quantisationCost(join(dir, 'nowhere'), adapters, nf4);
    assert.equal(missing.status, 'not-measured');
    assert.match((missing as { reason: string }).reason, /^the base model cannot be read \(.*nowhere/);
  });

  it("an adapter that cannot run on the base named (another model's) is not measured, with the reason, rather than an error", async () => {
    const qwen = join(FIXTURES, 'tiny-qwen2');
    const cost = await quantisationCost(qwen, adapters, keys({ load_in_4bit: true }));
    assert.equal(cost.status, 'not-measured');
    assert.match((cost as { reason: string }).reason, new RegExp(`^the adapter could not run on ${qwen.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} \\(.+\\)$`));
  });
});
