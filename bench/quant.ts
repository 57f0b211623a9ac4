// The frozen base in the native weight store (kernels/quant.ts, kernels/native-weights.ts) at each
// precision, for a model's linear weights and its (tied) embedding, from a random BF16 checkpoint
// in a real model's shape written by the benchmark (sharded: bench/random-llama.ts):
// - memory: the bytes stored, the process's resident memory after loading and its peak while
//   loading, and the wasm heap (which the weights no longer enter);
// - load time, streaming tensor by tensor at that precision;
// - the products of a few modules at `tokens` tokens, forward (x·deq(W)ᵀ) and input gradient
//   (dy·deq(W)), against today's: W float32 in the wasm heap held [d_in, d_out], on MLAS, the two
//   alternating in one run;
// - the quantisation error: deq(W) against the checkpoint's values, and the forward product's
//   output against today's float32 one, relative (root mean square).
// Each precision runs in a process of its own, so that one's memory does not count in another's.
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { loadPackedMatrices } from '../kernels/base/native-load';
import { nativeInputGradient, nativeLinear, nativeScratchBytes } from '../kernels/base/native-weights';
import { BASE_PRECISIONS, type BasePrecision, type PackedMatrix } from '../kernels/base/quant';
import { heapOf } from '../kernels/backends/wasm-kernels';
import { Checkpoint } from '../server/formats/checkpoint';
import { median } from '../server/engine/median';
import { childOutput, inTurn, loadProgressPrinter, residentPeak } from './measure';
import { LLAMA_100M, llamaLinearModules, QWEN2_5_SHAPES, writeRandomLlamaShards, type LlamaShape } from './random-llama';

export interface QuantOptions {
  /** A key of QUANT_SHAPES. */
  shape: string;
  precisions: BasePrecision[];
  groupSize: number;
  tokens: number;
  rounds: number;
  /** A folder for the checkpoint: reused if it holds one (written earlier in this shape), else written there and kept. Without it, one is written to a scratch folder and removed. */
  model?: string;
}

/** One module's products, medians over the rounds (ms), and its errors. */
export interface ModuleMeasurement {
  module: string;
  /** [d_out, d_in] */
  shape: [number, number];
  forward_ms: { ours: number; today: number };
  input_gradient_ms: { ours: number; today: number };
  /** ‖deq(W) − W‖ / ‖W‖ over the module's weights. */
  weight_rel_rms_error: number;
  /** ‖y − y_float32‖ / ‖y_float32‖ of the forward product, x ~ N(0, 1). */
  output_rel_rms_error: number;
}

export interface PrecisionMeasurement {
  precision: BasePrecision;
  group_size: number | null;
  /** Bytes of codes and scales the store holds. */
  stored_gib: number;
  rss_before_gib: number;
  rss_after_gib: number;
  /** The process's resident peak (VmHWM) by the end of loading. */
  rss_peak_gib: number;
  /** The wasm heap after loading, before the comparison's float32 copies were made. */
  heap_mib: number;
  load_s: number;
  modules: ModuleMeasurement[];
  /** Sums over the modules measured: ours / today's time, forward and input gradient together. */
  time_ratio: number;
  /** The scratch arrays the products left in this thread (kernels/native-weights.ts). */
  scratch_mib: number;
}

export interface QuantBenchResult {
  bench: 'quant';
  model: string;
  checkpoint_dtype: 'BF16';
  parameters_stored: number;
  tokens: number;
  rounds: number;
  /** The 1-minute load average before and after: this machine is shared with other work. */
  load_average: [number, number];
  machine_shared: true;
  precisions: PrecisionMeasurement[];
}

const GiB = 1024 ** 3;
const round = (v: number, digits = 3) => Number(v.toFixed(digits));

/** The shapes --shape names: the ~100M Llama for a quick run, and Qwen2.5's. */
export const QUANT_SHAPES: Record<string, LlamaShape> = { 'llama-100m': LLAMA_100M, ...QWEN2_5_SHAPES };

function shapeOf(name: string): LlamaShape {
  const shape = QUANT_SHAPES[name];
  if (!shape) throw new Error(`--shape ${JSON.stringify(name)} is not one of ${Object.keys(QUANT_SHAPES).join(', ')}`);
  return shape;
}

/** The tensors the store holds: every linear weight, and the embedding (lm_head's weight, tied). */
function requestsOf(shape: LlamaShape) {
  return [{ tensor: 'model.embed_tokens.weight', layout: 'out_in' as const }, ...llamaLinearModules(shape).map((m) => ({ tensor: `${m.name}.weight`, layout: 'out_in' as const }))];
}

function relativeRms(values: Float32Array, reference: Float32Array): number {
  let diff = 0;
  let norm = 0;
  for (let i = 0; i < reference.length; i++) {
    diff += (values[i]! - reference[i]!) ** 2;
    norm += reference[i]! ** 2;
  }
  return Math.sqrt(diff / norm);
}

/** One precision, in this process: load, measure memory, time the products, measure the errors. */
export async function measurePrecision(dir: string, shapeName: string, precision: BasePrecision, options: Pick<QuantOptions, 'groupSize' | 'tokens' | 'rounds'>): Promise<PrecisionMeasurement> {
  const shape = shapeOf(shapeName);
  const backend = tf.backend() as BackendWasm;
  const format = { precision, groupSize: options.groupSize };
  const checkpoint = await Checkpoint.open(dir);
  try {
    const rssBefore = process.memoryUsage().rss;
    const start = performance.now();
    const onProgress = loadProgressPrinter(precision);
    const store = await loadPackedMatrices(checkpoint, requestsOf(shape), format, { onProgress });
    const loadSeconds = (performance.now() - start) / 1000;
    const rssAfter = process.memoryUsage().rss;
    const peak = residentPeak();
    const heap = heapOf(backend).buffer.byteLength;
    const stored = [...store.values()].reduce((sum, m) => sum + m.byteLength, 0);
    const sampled: [string, string][] = [
      ['model.layers.0.self_attn.q_proj', 'model.layers.0.self_attn.q_proj.weight'],
      ['model.layers.0.self_attn.k_proj', 'model.layers.0.self_attn.k_proj.weight'],
      ['model.layers.0.mlp.up_proj', 'model.layers.0.mlp.up_proj.weight'],
      ['model.layers.0.mlp.down_proj', 'model.layers.0.mlp.down_proj.weight'],
      ['lm_head', 'model.embed_tokens.weight'],
    ];
    const modules: ModuleMeasurement[] = [];
    for (const [module, tensor] of sampled) modules.push(await measureModule(module, store.get(tensor)!, await checkpoint.readFloat32(tensor), options));
    const ours = modules.reduce((sum, m) => sum + m.forward_ms.ours + m.input_gradient_ms.ours, 0);
    const today = modules.reduce((sum, m) => sum + m.forward_ms.today + m.input_gradient_ms.today, 0);
    return {
      precision,
      group_size: ['int8', 'int4', 'nf4'].includes(precision) ? options.groupSize : null,
      stored_gib: round(stored / GiB),
      rss_before_gib: round(rssBefore / GiB),
      rss_after_gib: round(rssAfter / GiB),
      rss_peak_gib: round(peak / GiB),
      heap_mib: round(heap / 1024 ** 2, 1),
      load_s: round(loadSeconds, 1),
      modules,
      time_ratio: round(ours / today),
      scratch_mib: round(nativeScratchBytes() / 1024 ** 2, 1),
    };
  } finally {
    await checkpoint.close();
  }
}

async function measureModule(module: string, matrix: PackedMatrix, values: Float32Array, options: Pick<QuantOptions, 'tokens' | 'rounds'>): Promise<ModuleMeasurement> {
  const { rows: dOut, cols: dIn } = matrix;
  const deq = new Float32Array(dOut * dIn);
  matrix.readRows(0, dOut, deq);
  const weightError = relativeRms(deq, values);
  // today's: the float32 weight in the heap, held [d_in, d_out] as CausalLM holds it
  const inOut = tf.tidy(() => tf.transpose(tf.tensor2d(values, [dOut, dIn])));
  const x = tf.randomNormal([options.tokens, dIn], 0, 1, 'float32', 1) as tf.Tensor2D;
  const dy = tf.randomNormal([options.tokens, dOut], 0, 1, 'float32', 2) as tf.Tensor2D;
  try {
    const outputError = tf.tidy(() => relativeRms(nativeLinear(x, matrix).dataSync() as Float32Array, tf.matMul(x, inOut).dataSync() as Float32Array));
    // wasm runs a kernel synchronously: a call's time is its product's
    const timed = (f: () => tf.Tensor) => () => {
      const t = performance.now();
      tf.dispose(f());
      return performance.now() - t;
    };
    const sides = {
      forwardOurs: timed(() => nativeLinear(x, matrix)),
      forwardToday: timed(() => tf.matMul(x, inOut)),
      gradientOurs: timed(() => nativeInputGradient(dy, matrix)),
      gradientToday: timed(() => tf.matMul(dy, inOut, false, true)),
    };
    const names = Object.keys(sides) as (keyof typeof sides)[];
    const ms = Object.fromEntries(names.map((n) => [n, [] as number[]])) as Record<keyof typeof sides, number[]>;
    for (const n of names) sides[n](); // warm-up
    for (let r = 0; r < options.rounds; r++) for (const n of inTurn(names, r)) ms[n].push(sides[n]());
    const med = (n: keyof typeof sides) => round(median(ms[n]), 1);
    return {
      module,
      shape: [dOut, dIn],
      forward_ms: { ours: med('forwardOurs'), today: med('forwardToday') },
      input_gradient_ms: { ours: med('gradientOurs'), today: med('gradientToday') },
      weight_rel_rms_error: Number(weightError.toExponential(3)),
      output_rel_rms_error: Number(outputError.toExponential(3)),
    };
  } finally {
    tf.dispose([inOut, x, dy]);
  }
}

export function parsePrecisions(list: string): BasePrecision[] {
  return list.split(',').map((item) => {
    const p = item.trim();
    if (!(BASE_PRECISIONS as readonly string[]).includes(p)) throw new Error(`--precisions: "${p}" is not one of ${BASE_PRECISIONS.join(', ')}`);
    return p as BasePrecision;
  });
}

export async function benchQuant(options: QuantOptions): Promise<QuantBenchResult> {
  const shape = shapeOf(options.shape);
  const loadBefore = loadavg()[0]!;
  const scratch = options.model ? null : await mkdtemp(join(tmpdir(), 'moslora-bench-quant-'));
  const dir = options.model ?? scratch!;
  try {
    if (!existsSync(join(dir, 'config.json'))) {
      console.error(`writing a random ${options.shape}-shaped BF16 checkpoint to ${dir} …`);
      await writeRandomLlamaShards(dir, shape, 'BF16');
    }
    const precisions: PrecisionMeasurement[] = [];
    for (const precision of options.precisions) {
      const one = JSON.stringify({ dir, shape: options.shape, precision, groupSize: options.groupSize, tokens: options.tokens, rounds: options.rounds });
      precisions.push(JSON.parse(await childOutput([...process.execArgv, process.argv[1]!, 'quant', '--one', one])) as PrecisionMeasurement);
    }
    const parameters = llamaLinearModules(shape).reduce((n, m) => n + m.dIn * m.dOut, 0) + shape.vocab * shape.hidden;
    return {
      bench: 'quant',
      model: `random ${options.shape}-shaped (hidden ${shape.hidden}, ${shape.layers} layers, intermediate ${shape.intermediate}, vocab ${shape.vocab}, tied)`,
      checkpoint_dtype: 'BF16',
      parameters_stored: parameters,
      tokens: options.tokens,
      rounds: options.rounds,
      load_average: [round(loadBefore, 2), round(loadavg()[0]!, 2)],
      machine_shared: true,
      precisions,
    };
  } finally {
    if (scratch) await rm(scratch, { recursive: true, force: true });
  }
}
