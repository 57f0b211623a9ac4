import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { validateConfig } from '../../server/lsp/diagnostics';
import type { FactCache, ModelFacts } from '../../server/lsp/facts';
import type { ModuleSize } from '../../server/models/modules';
import type { ProductEngine } from '../../kernels/backends/mlas-matmul';
import { estimateMemory, memoryLimit, resolveCheckpointing, WASM_HEAP_BYTES } from '../../server/engine/memory';

// The measured case (server/engine/memory.ts): a ~100M Llama trained with MoSLoRA r 16 on q,k,v,up,down.
const LLAMA_100M = { baseParameters: 100_092_672, products: 'xnnpack' as const, layers: 12, hidden: 768, heads: 12, vocab: 32_000, maxLength: 256 };
// r·(d_in + d_out) + r² per module: q 768→768, k,v 768→256, up 768→2048, down 2048→768.
const TRAINABLE = 12 * (16 * (768 + 768) + 2 * 16 * (768 + 256) + 2 * 16 * (768 + 2048) + 5 * 256);
const GiB = 1024 ** 3;

describe('memory estimate', () => {
  // [batch, checkpointing, layers, heap measured (GiB)], and how far from it the estimate may be: below, a run aborts unwarned
  const measured: Record<ProductEngine, { cases: [number, boolean, number, number][]; under: number; over: number }> = {
    xnnpack: { cases: [[1, false, 12, 2.12], [2, false, 12, 3.57], [2, true, 12, 1.35], [4, true, 12, 1.77], [8, true, 12, 2.62], [4, true, 4, 1.32]], under: 0.06, over: 0.06 },
    mlas: { cases: [[1, false, 12, 1.74], [2, false, 12, 3.21], [2, true, 12, 0.89], [4, true, 12, 1.36], [8, true, 12, 2.25], [4, true, 4, 1.04]], under: 0, over: 0.16 },
  };
  for (const [products, { cases, under, over }] of Object.entries(measured) as [ProductEngine, (typeof measured)[ProductEngine]][]) {
    it(`reproduces the wasm heap measured for a ~100M Llama with ${products}'s products (−${100 * under}% … +${100 * over}%)`, () => {
      // 6,292,992 parameters in each layer of this shape: q, o 768², k, v 768·256, gate, up, down 768·2048, two norms.
      for (const [batch, checkpointing, layers, heap] of cases) {
        const e = estimateMemory({ ...LLAMA_100M, layers, baseParameters: LLAMA_100M.baseParameters - (12 - layers) * 6_292_992, products, trainable: (TRAINABLE * layers) / 12, batch, checkpointing });
        const estimated = e.total / GiB;
        assert.ok(estimated >= heap * (1 - under) && estimated <= heap * (1 + over), `batch ${batch}, ${layers} layers, checkpointing ${checkpointing}: estimated ${estimated.toFixed(2)} GiB, measured ${heap}`);
      }
    });
  }

  it('puts batch 3 without checkpointing above the wasm heap, batch 2 (measured 3.57 GiB) and batch 8 with it below', () => {
    const wasm = memoryLimit('wasm')!;
    assert.equal(wasm.bytes, WASM_HEAP_BYTES);
    assert.ok(estimateMemory({ ...LLAMA_100M, trainable: TRAINABLE, batch: 3, checkpointing: false }).total > wasm.bytes);
    assert.ok(estimateMemory({ ...LLAMA_100M, trainable: TRAINABLE, batch: 2, checkpointing: false }).total < wasm.bytes);
    assert.ok(estimateMemory({ ...LLAMA_100M, trainable: TRAINABLE, batch: 8, checkpointing: true }).total < wasm.bytes);
  });

  it('adds two float32 copies of the base (XNNPACK packs its own; one with MLAS), three copies of the trainable parameters, the runtime and activations', () => {
    assert.equal(estimateMemory({ baseParameters: 1000, products: 'mlas', trainable: 10, batch: 2, maxLength: 3, layers: 2, hidden: 1, heads: 1, vocab: 1, checkpointing: false }).weights, 4000);
    const e = estimateMemory({ baseParameters: 1000, products: 'xnnpack', trainable: 10, batch: 2, maxLength: 3, layers: 2, hidden: 1, heads: 1, vocab: 1, checkpointing: false });
    assert.equal(e.weights, 8000);
    assert.equal(e.adapter, 120);
    assert.equal(e.activations, 4 * 2 * 3 * (2 * (120 + 3 * 6) + 4));
    assert.equal(e.total, e.weights + e.adapter + 80 * 1024 ** 2 + e.activations);
    const checkpointed = estimateMemory({ baseParameters: 1000, products: 'xnnpack', trainable: 10, batch: 2, maxLength: 3, layers: 2, hidden: 1, heads: 1, vocab: 1, checkpointing: true });
    assert.equal(checkpointed.activations, 4 * 2 * 3 * (120 + 3 * 6 + 2 + 4));
  });

  it('auto turns checkpointing on exactly when the run does not fit without it, and says why', () => {
    const run = { ...LLAMA_100M, trainable: TRAINABLE };
    const wasm = memoryLimit('wasm');
    assert.deepEqual(resolveCheckpointing('auto', { ...run, batch: 2 }, wasm), { on: false });
    const three = resolveCheckpointing('auto', { ...run, batch: 3 }, wasm);
    assert.equal(three.on, true);
    assert.match(three.reason!, /^gradient checkpointing on \(training\.gradient_checkpointing: auto\): without it this run needs an estimated [45]\.\d GiB, more than the wasm backend's 4 GiB heap; with it 1\.\d GiB$/);
    assert.deepEqual(resolveCheckpointing(false, { ...run, batch: 2 }, wasm), { on: false }, 'an explicit setting is kept');
    assert.deepEqual(resolveCheckpointing(true, { ...run, batch: 1 }, wasm), { on: true });
    assert.deepEqual(resolveCheckpointing('auto', { ...run, batch: 2 }, memoryLimit('webgpu')), { on: false }, 'no known limit: off');
    assert.deepEqual(resolveCheckpointing('auto', null, wasm), { on: false }, 'no known shape: off');
  });

  it('knows the limit of wasm, auto (wasm on a machine without a GPU) and cpu, and not of GPU backends', () => {
    assert.equal(memoryLimit('auto')?.bytes, WASM_HEAP_BYTES);
    assert.match(memoryLimit('auto')!.what, /auto lands on wasm/);
    assert.equal(memoryLimit('cpu', 8 * 1024 ** 3)?.bytes, 8 * 1024 ** 3);
    assert.equal(memoryLimit('webgpu'), null);
    assert.equal(memoryLimit('tensorflow'), null);
  });
});

describe('memory diagnostic', () => {
  const modules: ModuleSize[] = [];
  for (let layer = 0; layer < 12; layer++) {
    const p = `model.layers.${layer}`;
    for (const m of ['self_attn.q_proj', 'self_attn.k_proj', 'self_attn.v_proj', 'self_attn.o_proj']) modules.push({ name: `${p}.${m}`, dIn: 768, dOut: 768 });
    modules.push({ name: `${p}.mlp.up_proj`, dIn: 768, dOut: 2048 }, { name: `${p}.mlp.gate_proj`, dIn: 768, dOut: 2048 }, { name: `${p}.mlp.down_proj`, dIn: 2048, dOut: 768 });
  }
  const model: ModelFacts = { ok: true, dir: '/m/llama-100m', architecture: 'LlamaForCausalLM', modules, totalParameters: 100_000_000, shape: { hidden: 768, layers: 12, heads: 12, vocab: 32_000 }, tokenizerProblem: null };
  const facts = { model: async () => model, dataset: async () => ({ ok: true, records: [], problems: [], checked: true }) } as unknown as FactCache;
  const memory = async (text: string) => (await validateConfig('file:///w/a.moslora.yaml', text, facts)).diagnostics.map((d) => ({ line: d.range.start.line, message: String(d.message) })).filter((d) => d.message.startsWith('memory:'));
  const config = (batch: number, backend: string, checkpointing?: boolean, workers?: number) =>
    ['model: ./m', `backend: ${backend}`, 'data:', '  train: t.jsonl', '  max_length: 256', 'training:', `  batch_size: ${batch}`, '  gradient_accumulation: 4', ...(checkpointing === undefined ? [] : [`  gradient_checkpointing: ${checkpointing}`]), ...(workers === undefined ? [] : [`  workers: ${workers}`]), ''].join('\n');

  it('warns on wasm at 3 × 256, naming the estimate, the limit and gradient checkpointing as the fix', async () => {
    const [warning, ...rest] = await memory(config(3, 'wasm', false));
    assert.ok(warning);
    assert.equal(rest.length, 0);
    assert.equal(warning.line, 4, 'on max_length: against the defaults (4 × 256), it is the larger');
    assert.equal((await memory(config(8, 'wasm', false)))[0]?.line, 6, 'on batch_size when that is the larger');
    assert.match(warning.message, /GiB at its peak/);
    assert.match(warning.message, /wasm backend's 4 GiB heap/);
    assert.match(warning.message, /To fit: set training.gradient_checkpointing: true \(estimated 1\.\d GiB; /);
    assert.match(warning.message, /or lower training.batch_size to 2 and raise training.gradient_accumulation to 6 to keep the effective batch \(12\)/);
  });

  it('is silent once gradient checkpointing is on, or auto (the default) turns it on, and past what it can save suggests a smaller batch', async () => {
    assert.deepEqual(await memory(config(4, 'wasm', true)), []);
    assert.deepEqual(await memory(config(4, 'wasm')), []);
    assert.deepEqual(await memory(config(8, 'wasm')), []);
    assert.match((await memory(config(16, 'wasm')))[0]?.message ?? '', /with gradient checkpointing \(auto\)/);
    const [warning] = await memory(config(16, 'wasm', true));
    assert.match(warning?.message ?? '', /with gradient checkpointing/);
    assert.match(warning?.message ?? '', /To fit: lower training.batch_size to \d+ and raise training.gradient_accumulation to \d+ to keep the effective batch \(64\)/);
    assert.doesNotMatch(warning?.message ?? '', /set training.gradient_checkpointing/);
  });

  it('counts what each thread holds when training.workers shares the batch, and suggests a batch per thread', async () => {
    assert.deepEqual(await memory(config(4, 'wasm', false, 2)), [], 'two rows a thread fit where four in one thread do not');
    const [warning] = await memory(config(6, 'wasm', false, 2));
    assert.match(warning?.message ?? '', /activations for 3 × 256 tokens, each of the 2 threads' share of the batch \(training\.workers\)/);
    assert.match(warning?.message ?? '', /or lower training\.batch_size to 4 \(2 for each of the 2 threads\) and raise training\.gradient_accumulation to 6 to keep the effective batch \(24\)/);
  });

  it('says so when auto is what lands on wasm; nothing at batch 1, nor on a GPU backend', async () => {
    assert.match((await memory(config(4, 'auto', false)))[0]?.message ?? '', /auto lands on wasm/);
    assert.deepEqual(await memory(config(1, 'wasm')), []);
    assert.deepEqual(await memory(config(4, 'webgpu')), []);
  });
});
