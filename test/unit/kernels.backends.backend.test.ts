// Backend choice (kernels/backends/backend.ts) on this machine: what auto takes and why it skipped
// the others, a named backend that cannot start, wasm against cpu, and an unknown name.
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { BackendUnavailableError, selectBackend } from '../../kernels/backends/backend';
import { BACKENDS, type BackendPreference } from '../../protocol/backends';

function installed(name: string): boolean {
  try {
    createRequire(import.meta.filename).resolve(name);
    return true;
  } catch {
    return false;
  }
}

describe('backend choice', () => {
  it("'auto' takes the first backend that starts and reports why each earlier one was skipped", async () => {
    const choice = await selectBackend('auto');
    assert.equal(tf.getBackend(), choice.backend);
    const position = BACKENDS.indexOf(choice.backend);
    assert.deepEqual(choice.skipped.map((s) => s.backend), BACKENDS.slice(0, position));
    for (const skipped of choice.skipped) assert.ok(skipped.reason.length > 10, `${skipped.backend} has a reason`);
    if (!installed('@tensorflow/tfjs-node-gpu') && !installed('@tensorflow/tfjs-node')) {
      assert.match(choice.skipped[0]!.reason, /@tensorflow\/tfjs-node-gpu/);
    }
    assert.ok(choice.device.length > 0);
  });

  it('a named backend that cannot start throws with its reason instead of falling back', async () => {
    if (installed('@tensorflow/tfjs-node-gpu')) return;
    await assert.rejects(selectBackend('tensorflow'), (error: unknown) => error instanceof BackendUnavailableError && error.backend === 'tensorflow');
  });

  it('wasm and cpu compute the same matmul', async () => {
    const values: Float32Array[] = [];
    for (const backend of ['wasm', 'cpu'] as const) {
      assert.equal((await selectBackend(backend)).backend, backend);
      values.push(tf.matMul(tf.reshape(tf.range(0, 12), [3, 4]), tf.reshape(tf.range(0, 8), [4, 2])).dataSync() as Float32Array);
    }
    assert.deepEqual(values[0], values[1]);
  });

  it('an unknown backend is an error that lists the allowed values', async () => {
    await assert.rejects(selectBackend('cuda' as BackendPreference), /backend: unknown value "cuda"; allowed: auto, tensorflow, webgpu, wasm, cpu/);
  });
});
