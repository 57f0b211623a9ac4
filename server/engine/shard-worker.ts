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
  const model = await CausalLM.load(init.modelDir);
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
  return { model, adapters, params: [...makeTrainable(adapters).values()] };
}

load().then(
  ({ model, adapters, params }) => {
    const assign = (values: Float32Array) => {
      let offset = 0;
      for (const v of params) {
        tf.tidy(() => v.assign(tf.tensor(values.subarray(offset, offset + v.size), v.shape)));
        offset += v.size;
      }
    };
    const compute = async (request: Exclude<ShardRequest, { kind: 'params' }>): Promise<ShardReply> => {
      if (request.kind === 'scores') return { type: 'scores', id: request.id, result: Array.from(await takeValues(shardScores(model, adapters, request.shard))) };
      const { lossSum, grads } = shardGradients(model, adapters, params, request.shard, request.step);
      return { type: 'gradients', id: request.id, result: { lossSum: await takeNumber(lossSum), grads: (await takeValues(grads)) as Float32Array } };
    };
    port.on('message', (request: ShardRequest) => {
      if (request.kind === 'params') {
        try {
          assign(request.params);
        } catch (error) {
          fail(error);
        }
        return;
      }
      compute(request).then(reply, fail);
    });
    reply({ type: 'ready' });
  },
  fail,
);
