// Two pieces of a ~100M Llama step (hidden 768, vocabulary 32000, MoSLoRA on q,k,v,up,down) against
// the plain tfjs way of doing them, alternating in one run:
// - dropout masks: the step's 60 masks at batch × 256 tokens from kernels/adapter/dropout.ts (a kernel on
//   webgpu, the hash in JavaScript elsewhere) against tf.randomUniform's draws, which tfjs makes
//   in JavaScript and uploads; host time (until the call returns) and time until the values are read;
// - lm_head's forward product [batch·256, 768]·[768, 32000] by a frozen weight
//   (kernels/ops/matmul.ts matMulByConstant: column blocks on wasm) against one tf.matMul.
import * as tf from '@tensorflow/tfjs-core';
import type { BackendChoice } from '../protocol/backends';
import { dropoutMask } from '../kernels/adapter/dropout';
import { matMulByConstant } from '../kernels/ops/matmul';
import { readValues } from '../kernels/backends/read';
import { median } from '../server/engine/median';
import { inTurn } from './measure';

export interface HostBenchOptions {
  batch: number;
  rounds: number;
}

export interface HostBenchResult {
  bench: 'host';
  backend: string;
  device: string;
  batch: number;
  tokens: number;
  rounds: number;
  masks: number;
  mask_host_ms: { ours: number; random_uniform: number };
  mask_total_ms: { ours: number; random_uniform: number };
  lm_head_ms: { ours: number; mat_mul: number };
}

const [TOKENS, HIDDEN, INTERMEDIATE, VOCAB, LAYERS, RATE] = [256, 768, 2048, 32000, 12, 0.05];

/** The plain tfjs mask: uniform draws in JavaScript, compared and scaled. */
function randomUniformMask(shape: [number, number], seed: number): tf.Tensor2D {
  return tf.tidy(() => tf.mul(tf.cast(tf.greaterEqual(tf.randomUniform(shape, 0, 1, 'float32', seed + 1), RATE), 'float32'), 1 / (1 - RATE)));
}

/** Host ms until `make` returns, and ms until every tensor's values are read. */
async function timed(make: () => tf.Tensor[]): Promise<{ host: number; total: number }> {
  const started = performance.now();
  const tensors = make();
  const host = performance.now() - started;
  await Promise.all(tensors.map((t) => readValues(t)));
  const total = performance.now() - started;
  tf.dispose(tensors);
  return { host, total };
}

export async function benchHost(choice: BackendChoice, options: HostBenchOptions): Promise<HostBenchResult> {
  const rows = options.batch * TOKENS;
  // per layer: q, k, v and up read the hidden state, down the MLP's
  const shapes: [number, number][] = Array.from({ length: LAYERS }, () => [[rows, HIDDEN], [rows, HIDDEN], [rows, HIDDEN], [rows, HIDDEN], [rows, INTERMEDIATE]] as [number, number][]).flat();
  const head = tf.randomNormal([HIDDEN, VOCAB], 0, 0.02, 'float32', 1) as tf.Tensor2D;
  const x = tf.randomNormal([rows, HIDDEN], 0, 1, 'float32', 2) as tf.Tensor2D;
  const sides = {
    ours: (round: number) => shapes.map((shape, i) => dropoutMask(shape, options.batch, RATE, round * 100 + i, 0)),
    random_uniform: (round: number) => shapes.map((shape, i) => randomUniformMask(shape, round * 100 + i)),
  };
  const masks = { ours: [] as { host: number; total: number }[], random_uniform: [] as { host: number; total: number }[] };
  const products = { ours: [] as number[], mat_mul: [] as number[] };
  // a warm-up round, then the timed ones; the sides alternate which goes first
  for (let round = 0; round <= options.rounds; round++) {
    for (const side of inTurn(['ours', 'random_uniform'] as const, round)) {
      const t = await timed(() => sides[side](round));
      if (round > 0) masks[side].push(t);
    }
    for (const side of inTurn(['ours', 'mat_mul'] as const, round)) {
      const t = await timed(() => [side === 'ours' ? matMulByConstant(x, head) : tf.matMul(x, head)]);
      if (round > 0) products[side].push(t.total);
    }
  }
  tf.dispose([head, x]);
  const ms = (values: number[]) => Number(median(values).toFixed(1));
  return {
    bench: 'host', backend: choice.backend, device: choice.device, batch: options.batch, tokens: TOKENS, rounds: options.rounds, masks: shapes.length,
    mask_host_ms: { ours: ms(masks.ours.map((t) => t.host)), random_uniform: ms(masks.random_uniform.map((t) => t.host)) },
    mask_total_ms: { ours: ms(masks.ours.map((t) => t.total)), random_uniform: ms(masks.random_uniform.map((t) => t.total)) },
    lm_head_ms: { ours: ms(products.ours), mat_mul: ms(products.mat_mul) },
  };
}
