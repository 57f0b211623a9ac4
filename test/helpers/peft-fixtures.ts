// The PEFT fixtures (test/fixtures/peft/<adapter>/): an adapter this tool trained on a model
// fixture (adapter/), its PEFT export (peft/), and the logits a reference computed with it
// (reference.json holds the input ids, reference.safetensors the logits).
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '../../kernels/backends/backend';
import { SafetensorsFile } from '../../server/formats/safetensors';
import { CausalLM } from '../../server/models/model';

export const FIXTURES = join(__dirname, '..', 'fixtures');

export async function readTensors(file: string): Promise<Map<string, { shape: readonly number[]; values: Float32Array }>> {
  const st = await SafetensorsFile.open(file);
  try {
    const out = new Map<string, { shape: readonly number[]; values: Float32Array }>();
    for (const [name, info] of st.tensors) out.set(name, { shape: info.shape, values: await st.readFloat32(name) });
    return out;
  } finally {
    await st.close();
  }
}

export interface ReferenceFixture {
  /** test/fixtures/peft/<adapter> */
  fixture: string;
  model: CausalLM;
  ids: number[][];
  reference: tf.Tensor3D;
  /** A scratch folder, removed after the suite. */
  dir: string;
}

/** Inside a describe: loads the fixture's base model, input ids and reference logits before its tests, and frees them after. */
export function referenceFixture(adapter: string, base: string): ReferenceFixture {
  const loaded = { fixture: join(FIXTURES, 'peft', adapter) } as ReferenceFixture;
  before(async () => {
    await selectBackend('wasm');
    loaded.model = await CausalLM.load(join(FIXTURES, 'models', base));
    loaded.ids = (JSON.parse(await readFile(join(loaded.fixture, 'reference.json'), 'utf8')) as { input_ids: number[][] }).input_ids;
    const logits = (await readTensors(join(loaded.fixture, 'reference.safetensors'))).get('logits')!;
    loaded.reference = tf.tensor3d(logits.values, logits.shape as [number, number, number]);
    loaded.dir = await mkdtemp(join(tmpdir(), `moslora-${adapter}-`));
  });
  after(async () => {
    loaded.model.dispose();
    loaded.reference.dispose();
    await rm(loaded.dir, { recursive: true, force: true });
  });
  return loaded;
}

/** Asserts that two safetensors files hold the same tensor names and shapes, and values within 1e-6; returns the expected ones. */
export async function assertSameTensors(actualFile: string, expectedFile: string): Promise<Map<string, { shape: readonly number[]; values: Float32Array }>> {
  const [actual, expected] = [await readTensors(actualFile), await readTensors(expectedFile)];
  assert.deepEqual([...actual.keys()].sort(), [...expected.keys()].sort());
  for (const [name, { shape, values }] of expected) {
    assert.deepEqual(actual.get(name)!.shape, shape, name);
    const diff = Math.max(...values.map((v, i) => Math.abs(v - actual.get(name)!.values[i]!)));
    assert.ok(diff < 1e-6, `${name}: max abs diff ${diff}`);
  }
  return expected;
}
