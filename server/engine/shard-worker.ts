// A data-parallel worker thread (parallel.ts): its own backend and copy of the model; for each
// request it takes the adapters' current values, computes its shard's summed loss and gradient,
// and hands the gradient back.
import { parentPort, workerData } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs-core';
import type { Adapter } from '../../kernels/linear';
import { takeNumber, takeValues } from '../../kernels/read';
import { isWasmHeapExhausted } from '../../kernels/wasm-kernels';
import { CausalLM } from '../models/model';
import { startBackend } from '../runtime';
import { shardGradients, trainableParams, type ShardReply, type ShardRequest, type ShardWorkerInit } from './parallel';

const port = parentPort!;
const init = workerData as ShardWorkerInit;
const reply = (message: ShardReply) => port.postMessage(message);
const fail = (error: unknown) =>
  reply({ type: 'error', message: error instanceof Error ? error.message : String(error), heapExhausted: isWasmHeapExhausted(error) });

async function load() {
  await startBackend(init.backend);
  const model = await CausalLM.load(init.modelDir);
  const adapters = new Map<string, Adapter>(
    init.adapters.map(({ module, spec, A, B, mixers }) => [
      module,
      {
        spec,
        weights: {
          A: tf.variable(tf.tensor2d(A, [spec.r, spec.dIn])),
          B: tf.variable(tf.tensor2d(B, [spec.dOut, spec.r])),
          mixers: mixers.map((m) => tf.variable(tf.tensor2d(m, [spec.r, spec.r]), spec.method !== 'moslora-fixed')),
        },
      },
    ]),
  );
  return { model, adapters, params: [...trainableParams(adapters).values()] };
}

load().then(
  ({ model, adapters, params }) => {
    port.on('message', (request: ShardRequest) => {
      (async () => {
        let offset = 0;
        for (const v of params) {
          tf.tidy(() => v.assign(tf.tensor(request.params.subarray(offset, offset + v.size), v.shape)));
          offset += v.size;
        }
        const { lossSum, grads } = shardGradients(model, adapters, params, request.shard, request.step);
        const [sum, flat] = [await takeNumber(lossSum), (await takeValues(grads)) as Float32Array];
        reply({ type: 'result', id: request.id, lossSum: sum, grads: flat });
      })().catch(fail);
    });
    reply({ type: 'ready' });
  },
  fail,
);
