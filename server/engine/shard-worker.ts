// A data-parallel worker thread (parallel.ts): its own backend and copy of the model. It takes the
// adapters' values when the trainer sends them, and for each request computes its shard's summed
// loss and gradient, or its rows' scores, and hands them back.
import { parentPort, workerData } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs-core';
import type { Adapter } from '../../kernels/adapter/linear';
import { takeNumber, takeValues } from '../../kernels/backends/read';
import { setProductThreads } from '../../kernels/backends/mlas-matmul';
import { isWasmHeapExhausted } from '../../kernels/backends/wasm-kernels';
import { CausalLM } from '../models/model';
import { startBackend } from '../runtime';
import { makeTrainable } from '../models/adapters';
import { shardGradients, shardScores, type ShardReply, type ShardRequest, type ShardWorkerInit } from './parallel';

const port = parentPort!;
const init = workerData as ShardWorkerInit;
const reply = (message: ShardReply) => port.postMessage(message);
const fail = (error: unknown) =>
  reply({ type: 'error', message: error instanceof Error ? error.message : String(error), heapExhausted: isWasmHeapExhausted(error) });

async function load() {
  await startBackend(init.backend);
  setProductThreads(init.productThreads);
  const model = await CausalLM.load(init.modelDir, init.load);
  const adapters = new Map<string, Adapter>(
    init.adapters.map(({ module, spec, A, B, mixers, magnitude }) => [
      module,
      {
        spec,
        weights: {
          A: tf.tensor2d(A, [spec.r, spec.dIn]), B: tf.tensor2d(B, [spec.dOut, spec.r]), mixers: mixers.map((m) => tf.tensor2d(m, [spec.r, spec.r])),
          ...(magnitude ? { magnitude: tf.tensor1d(magnitude) } : {}),
        },
      },
    ]),
  );
  const params = [...makeTrainable(adapters).values()];
  const compute = async (request: Exclude<ShardRequest, { kind: 'params' | 'close' }>): Promise<ShardReply> => {
    if (request.kind === 'scores') return { type: 'scores', id: request.id, result: Array.from(await takeValues(shardScores(model, adapters, request.shard))) };
    const { lossSum, grads } = shardGradients(model, adapters, params, request.shard, request.step);
    return { type: 'gradients', id: request.id, result: { lossSum: await takeNumber(lossSum), grads: (await takeValues(grads)) as Float32Array } };
  };
  return { params, compute };
}

// The listener is there from the start, so that a close asked for while the model loads is seen:
// the worker ends itself between two of its tasks. Stopped from outside (Worker.terminate) while
// one of onnxruntime's native calls runs, the whole process aborts (a Napi::Error thrown at
// teardown), so the pool asks instead of terminating.
const loaded = load();
port.on('message', (request: ShardRequest) => {
  if (request.kind === 'close') process.exit(0);
  loaded.then(({ params, compute }) => {
    if (request.kind !== 'params') {
      compute(request).then(reply, fail);
      return;
    }
    try {
      let offset = 0;
      for (const v of params) {
        tf.tidy(() => v.assign(tf.tensor(request.params.subarray(offset, offset + v.size), v.shape)));
        offset += v.size;
      }
    } catch (error) {
      fail(error);
    }
  }, () => undefined); // a load that failed was reported once, below
});
loaded.then(() => reply({ type: 'ready' }), fail);
