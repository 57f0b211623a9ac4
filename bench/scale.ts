// Real model sizes on this machine: random BF16 checkpoints in the shapes of Qwen2.5-0.5B / 1.5B /
// 3B and Llama-3.1-8B (bench/random-llama.ts, sharded), the frozen base stored at each precision
// as a config's torch_dtype / load_in_8bit / load_in_4bit choose it (server/config/schema.ts
// baseFormats), on wasm with the base in the native store:
// - whether the run fits: the engine's own refusal before loading (server/engine/memory.ts
//   machineRefusal, with the inputs server/engine/session.ts gives it) and its estimate of the
//   process's peak;
// - for a run that fits, in a process of its own (so that one's memory does not count in
//   another's): the load time, the resident peak, and the time of MoSLoRA r 16 training steps on
//   q, k, v, up, down at batch 1 × 256 tokens with gradient checkpointing (bench/workload.ts: the
//   engine's gradient path and AdamW).
// And the loss gap: a model trained through runTrainingJob on the tiny task (examples/
// tiny-moslora.moslora.yaml, a fixed number of steps) at each precision and seed, the final train
// loss against float32's at the same seed, and over the seeds the mean of those paired differences
// with its 95% t-interval (server/ab/stats.ts, as the A/B report's). The model is the shipped
// tiny one, or a ~100M Llama-shaped one with random weights and the tiny model's tokenizer
// (LOSS_MODELS): no ~100M checkpoint ships or downloads here, and on the tiny task's labels an
// adapter's loss falls from any base.
import { existsSync, readFileSync } from 'node:fs';
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { freemem, loadavg, tmpdir, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { parse, stringify } from 'yaml';
import { productEngine } from '../kernels/backends/mlas-matmul';
import { heapOf } from '../kernels/backends/wasm-kernels';
import { describeBaseFormats, type BasePrecision, type BaseFormats } from '../kernels/base/quant';
import { baseFormats, type AdapterConfig } from '../server/config/schema';
import { estimateMemory, machineRefusal } from '../server/engine/memory';
import { median } from '../server/engine/median';
import { tInterval } from '../server/ab/stats';
import { LOWER_PRECISIONS, runTrainingJob } from '../server/engine/session';
import { CausalLM, defaultStore } from '../server/models/model';
import { baseStoreBytes, readModelLayout } from '../server/models/modules';
import { childOutput, loadProgressPrinter, residentPeak } from './measure';
import { LLAMA_100M, LLAMA_3_1_8B, llamaLinearModules, llamaParameterCount, QWEN2_5_SHAPES, writeRandomLlama, writeRandomLlamaShards, type LlamaShape } from './random-llama';
import { TARGETS, TrainingWorkload } from './workload';

const RANK = 16;
const BATCH = 1;
const TOKENS = 256;
const GiB = 1024 ** 3;
const round = (v: number, digits = 3) => Number(v.toFixed(digits));

/** The shapes --shapes names. */
export const SCALE_SHAPES: Record<string, LlamaShape> = { ...QWEN2_5_SHAPES, 'llama-3.1-8b': LLAMA_3_1_8B };

type PrecisionKeys = Pick<AdapterConfig, 'torch_dtype' | 'load_in_8bit' | 'load_in_4bit'> & Partial<Pick<AdapterConfig, 'bnb_4bit_quant_type'>>;

/** The config keys that store the base at a precision; 8- and 4-bit leave the embedding and lm_head at bfloat16, the checkpoints' dtype. */
export function precisionKeys(precision: BasePrecision): PrecisionKeys {
  switch (precision) {
    case 'float32':
    case 'bfloat16':
    case 'float16':
      return { torch_dtype: precision, load_in_8bit: false, load_in_4bit: false };
    case 'int8':
      return { torch_dtype: 'bfloat16', load_in_8bit: true, load_in_4bit: false };
    case 'int4':
    case 'nf4':
      return { torch_dtype: 'bfloat16', load_in_8bit: false, load_in_4bit: true, bnb_4bit_quant_type: precision };
  }
}

function formatsOf(precision: BasePrecision): BaseFormats {
  return baseFormats(precisionKeys(precision));
}

/** What one precision's process measured. */
export interface ScaleStep {
  load_s: number;
  rss_after_load_gib: number;
  /** The process's resident peak (VmHWM) by the end of loading, and by the end of the steps. */
  rss_peak_load_gib: number;
  rss_peak_gib: number;
  heap_gib: number;
  /** The median step's time, and each step's (the first one included). */
  step_s: number;
  each_step_s: number[];
  losses: number[];
  products: string;
}

export interface ScaleCase {
  shape: string;
  precision: BasePrecision;
  formats: string;
  /** The engine's estimate of the process's peak (the heap and the native store) and of the native store alone. */
  estimate_gib: number;
  store_estimate_gib: number;
  /** The engine's refusal before loading; null: it fits and was measured. */
  refusal: string | null;
  fits: boolean;
  measured: ScaleStep | null;
  /** Why a run that fits was not measured (its process failed). */
  error?: string;
}

export interface LossGapCase {
  precision: BasePrecision;
  seed: number;
  formats: string;
  /** The train loss averaged over the last log window (training.log_interval steps), as the run's summary gives it. */
  final_loss: number;
  eval_loss: number | null;
  /** (final_loss − float32's at the same seed) / float32's. */
  relative_difference: number | null;
  wall_s: number;
}

/** One precision over the seeds: its paired relative differences from float32. */
export interface LossGapPaired {
  precision: BasePrecision;
  seeds: number;
  /** Mean of the seeds' relative differences of the final train loss, and the half width of its 95% t-interval (null for one seed). */
  mean_relative_difference: number;
  difference_half_width_95: number | null;
  lowest_difference: number;
  highest_difference: number;
  /** The same for the eval loss; null without eval losses. */
  eval_mean_relative_difference: number | null;
  eval_difference_half_width_95: number | null;
}

export interface ScaleBenchResult {
  bench: 'scale';
  backend: 'wasm';
  batch: number;
  tokens: number;
  rank: number;
  targets: string[];
  checkpointing: true;
  checkpoint_dtype: 'BF16';
  machine_gib: number;
  /** Free memory when the benchmark started: the machine is shared with other work. */
  free_gib_before: number;
  /** The 1-minute load average before and after. */
  load_average: [number, number];
  machine_shared: true;
  cases: ScaleCase[];
  loss_gap: LossGap | null;
}

export interface ScaleOptions {
  shapes: string[];
  precisions: BasePrecision[];
  /** A folder with one checkpoint folder per shape: reused when written there earlier, else written and kept. Without it, scratch folders, each removed after its shape. */
  modelDir?: string;
  steps: number;
  /** Steps of the loss gap; 0: no loss gap. */
  lossSteps: number;
  lossPrecisions: BasePrecision[];
  /** The loss gap's model (LOSS_MODELS) and its training.batch_size (absent: the config's). */
  lossModel: LossModel;
  lossBatch?: number;
  /** Seeds of the loss gap, from the config's on. */
  lossSeeds: number;
}

export function parseShapes(list: string): string[] {
  if (list === 'none') return [];
  return list.split(',').map((item) => {
    const name = item.trim();
    if (!SCALE_SHAPES[name]) throw new Error(`--shapes: "${name}" is not one of ${Object.keys(SCALE_SHAPES).join(', ')} (or none)`);
    return name;
  });
}

/** Trainable parameters of the workload's adapters: A, B and the mixer of each targeted module. */
function trainableOf(shape: LlamaShape): number {
  return llamaLinearModules(shape)
    .filter((m) => TARGETS.some((t) => m.name.endsWith(`.${t}`)))
    .reduce((n, m) => n + RANK * (m.dIn + m.dOut) + RANK * RANK, 0);
}

/** One precision of one checkpoint, in this process: load, then the timed steps. */
export async function measureScaleStep(dir: string, precision: BasePrecision, steps: number): Promise<ScaleStep> {
  if (defaultStore() !== 'native') throw new Error(`the base is not in the native store on ${tf.getBackend()} (onnxruntime's MLAS not loaded): nothing here measures what the benchmark is for`);
  const formats = formatsOf(precision);
  const start = performance.now();
  const onProgress = loadProgressPrinter(precision);
  const model = await CausalLM.load(dir, { formats, onProgress });
  const loadSeconds = (performance.now() - start) / 1000;
  const rssAfterLoad = process.memoryUsage().rss;
  const peakLoad = residentPeak();
  const workload = new TrainingWorkload(model, { batch: BATCH, tokens: TOKENS, rank: RANK, checkpointing: true });
  try {
    const stepMs: number[] = [];
    const losses: number[] = [];
    for (let step = 1; step <= steps; step++) {
      const { ms, losses: [loss] } = await workload.timedSteps(step, 1);
      stepMs.push(ms[0]!);
      losses.push(loss!);
      console.error(`  ${precision}: step ${step} ${(ms[0]! / 1000).toFixed(1)} s, loss ${loss!.toFixed(4)}`);
    }
    return {
      load_s: round(loadSeconds, 1),
      rss_after_load_gib: round(rssAfterLoad / GiB),
      rss_peak_load_gib: round(peakLoad / GiB),
      rss_peak_gib: round(residentPeak() / GiB),
      heap_gib: round(heapOf(tf.backend() as BackendWasm).buffer.byteLength / GiB),
      step_s: round(median(stepMs) / 1000, 1),
      each_step_s: stepMs.map((ms) => round(ms / 1000, 1)),
      losses: losses.map((l) => round(l, 4)),
      products: productEngine(),
    };
  } finally {
    await workload.dispose();
    model.dispose();
  }
}

/** Whether the checkpoint in `dir` was written in this shape (a folder reused between runs). */
function holdsShape(dir: string, shape: LlamaShape): boolean {
  const file = join(dir, 'config.json');
  if (!existsSync(file) || !existsSync(join(dir, 'model.safetensors.index.json'))) return false;
  const c = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  const same = c.hidden_size === shape.hidden && c.num_hidden_layers === shape.layers && c.intermediate_size === shape.intermediate && c.vocab_size === shape.vocab && c.tie_word_embeddings === !shape.untied;
  if (!same) throw new Error(`${file}: a checkpoint of another shape than the one asked; give --model-dir a folder of its own, or remove this one`);
  return true;
}

/** One shape at each precision: the refusal and estimate, and each run that fits measured in a child process. */
async function measureShape(name: string, options: ScaleOptions, childArgs: (one: string) => string[]): Promise<ScaleCase[]> {
  const shape = SCALE_SHAPES[name]!;
  const scratch = options.modelDir ? null : await mkdtemp(join(tmpdir(), 'moslora-bench-scale-'));
  const dir = options.modelDir ? join(resolve(options.modelDir), name) : scratch!;
  try {
    if (!holdsShape(dir, shape)) {
      console.error(`writing a random ${name}-shaped BF16 checkpoint to ${dir} …`);
      const started = performance.now();
      await writeRandomLlamaShards(dir, shape, 'BF16');
      console.error(`  written in ${((performance.now() - started) / 1000).toFixed(0)} s`);
    }
    const { config, layout } = await readModelLayout(dir);
    const baseParameters = layout.parameters.reduce((n, p) => n + p.shape.reduce((a, b) => a * b, 1), 0);
    const cases: ScaleCase[] = [];
    for (const precision of options.precisions) {
      const formats = formatsOf(precision);
      const nativeBytes = baseStoreBytes(layout, formats);
      const run = {
        hidden: config.hiddenSize, layers: config.numLayers, heads: config.numHeads, vocab: config.vocabSize,
        baseParameters, nativeBytes, products: 'mlas' as const, maxLength: TOKENS,
      };
      // as runTrainingJob asks: one thread (batch 1 is not split)
      const lower = LOWER_PRECISIONS.map(({ setting, config: keys }) => ({ setting, nativeBytes: baseStoreBytes(layout, baseFormats(keys)) }));
      const refusal = machineRefusal({ ...run, trainable: trainableOf(shape), batch: BATCH, checkpointing: true, threads: 1 }, undefined, lower);
      const estimate = estimateMemory({ ...run, trainable: trainableOf(shape), batch: BATCH, checkpointing: true });
      const entry: ScaleCase = {
        shape: name, precision, formats: describeBaseFormats(formats), estimate_gib: round(estimate.process / GiB), store_estimate_gib: round(nativeBytes / GiB),
        refusal, fits: refusal === null, measured: null,
      };
      if (refusal) {
        console.error(`${name} ${precision}: refused before loading: ${refusal}`);
      } else {
        console.error(`${name} ${precision}: estimate ${entry.estimate_gib} GiB; loading and training in a process of its own …`);
        try {
          entry.measured = JSON.parse(await childOutput(childArgs(JSON.stringify({ dir, precision, steps: options.steps })))) as ScaleStep;
        } catch (error) {
          entry.error = error instanceof Error ? error.message : String(error);
          console.error(`${name} ${precision}: ${entry.error}`);
        }
      }
      cases.push(entry);
    }
    return cases;
  } finally {
    if (scratch) await rm(scratch, { recursive: true, force: true });
  }
}

/** The tiny task's config with a fixed number of steps, the model in `model` (absent: the config's), `batch` sequences a step (absent: the config's) and the base at `precision`, written to `dir`. */
async function lossGapConfig(configPath: string, precision: BasePrecision, steps: number, dir: string, model?: string, batch?: number): Promise<string> {
  const base = resolve(configPath, '..');
  const config = parse(await readFile(configPath, 'utf8')) as Record<string, unknown> & { data: Record<string, unknown>; training: Record<string, unknown>; output: Record<string, unknown> };
  const keys = precisionKeys(precision);
  const written = {
    ...config,
    model: model ?? resolve(base, String(config.model)),
    data: { ...config.data, ...Object.fromEntries(['train', 'eval'].filter((k) => typeof config.data[k] === 'string').map((k) => [k, resolve(base, String(config.data[k]))])) },
    training: { ...config.training, ...(batch === undefined ? {} : { batch_size: batch }), max_steps: steps, eval_interval: steps, checkpoint_interval: steps, workers: 1 },
    output: { ...config.output, runs_dir: join(dir, 'runs') },
    torch_dtype: keys.torch_dtype,
    load_in_8bit: keys.load_in_8bit,
    load_in_4bit: keys.load_in_4bit,
    ...(keys.bnb_4bit_quant_type ? { bnb_4bit_quant_type: keys.bnb_4bit_quant_type } : {}),
  };
  const file = join(dir, `loss-gap-${precision}.moslora.yaml`);
  await writeFile(file, stringify(written));
  return file;
}

/** The models the loss gap trains. */
export const LOSS_MODELS = ['tiny', 'llama-100m'] as const;
export type LossModel = (typeof LOSS_MODELS)[number];

/** LLAMA_100M's width with the tiny model's vocabulary (its tokenizer's 1024 entries) and 16 layers: ~100M parameters, most of them in the linear layers a precision stores. */
export const LOSS_LLAMA_100M: LlamaShape = { ...LLAMA_100M, layers: 16, vocab: 1024 };

/**
 * A random LOSS_LLAMA_100M checkpoint (F32) in `dir` with the tiny model's tokenizer and its
 * special tokens' ids; what the loss gap's record says of it.
 */
async function writeLossModel(dir: string, tinyModel: string): Promise<string> {
  await writeRandomLlama(dir, LOSS_LLAMA_100M, 'F32');
  for (const file of ['tokenizer.json', 'tokenizer_config.json', 'generation_config.json']) await copyFile(join(tinyModel, file), join(dir, file));
  const tiny = JSON.parse(await readFile(join(tinyModel, 'config.json'), 'utf8')) as Record<string, unknown>;
  if (tiny.vocab_size !== LOSS_LLAMA_100M.vocab) throw new Error(`${join(tinyModel, 'config.json')}: vocab_size ${String(tiny.vocab_size)}, where the ~100M model is shaped for ${LOSS_LLAMA_100M.vocab}`);
  const config = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
  const ids = Object.fromEntries(['bos_token_id', 'eos_token_id', 'pad_token_id'].map((key) => [key, tiny[key]]));
  await writeFile(join(dir, 'config.json'), `${JSON.stringify({ ...config, ...ids }, null, 2)}\n`);
  const s = LOSS_LLAMA_100M;
  return `random Llama, ${(llamaParameterCount(s) / 1e6).toFixed(1)}M parameters (hidden ${s.hidden}, ${s.layers} layers, ${s.heads} heads / ${s.kvHeads} kv, intermediate ${s.intermediate}, vocab ${s.vocab}: the tiny model's tokenizer), F32, N(0, 0.02) weights`;
}

/**
 * The loss gap: each precision at each seed; per precision the paired differences from float32
 * over the seeds; and how far float32 itself moves from the first seed to the others, without any
 * quantisation (with one seed: float32 at the next seed, trained for that alone).
 */
export interface LossGap {
  config: string;
  /** The model trained: the config's, or what writeLossModel wrote. */
  model: string;
  steps: number;
  batch: number;
  cases: LossGapCase[];
  paired: LossGapPaired[];
  /** float32 at each other seed against float32 at the first: relative difference of the final train loss. */
  float32_seed_spread: LossGapCase[];
}

/** float32's run at each seed: what every precision at that seed is measured against. */
function float32BySeed(cases: readonly LossGapCase[]): Map<number, LossGapCase> {
  return new Map(cases.filter((c) => c.precision === 'float32').map((c) => [c.seed, c]));
}

const relativeTo = (value: number, reference: number) => (value - reference) / reference;

/** Per precision, the mean paired relative difference from float32 over the seeds, and its interval. */
export function pairLossGap(cases: readonly LossGapCase[]): LossGapPaired[] {
  const float32 = float32BySeed(cases);
  const precisions = [...new Set(cases.map((c) => c.precision))].filter((p) => p !== 'float32');
  return precisions.map((precision) => {
    const mine = cases.filter((c) => c.precision === precision && float32.has(c.seed));
    const relative = (c: LossGapCase, key: 'final_loss' | 'eval_loss'): number | null => {
      const reference = float32.get(c.seed)![key];
      const value = c[key];
      return value === null || reference === null ? null : relativeTo(value, reference);
    };
    const d = mine.map((c) => relative(c, 'final_loss')!);
    const train = tInterval(d);
    const evalDifferences = mine.map((c) => relative(c, 'eval_loss'));
    const evaluation = evalDifferences.every((e): e is number => e !== null) ? tInterval(evalDifferences) : null;
    return {
      precision,
      seeds: mine.length,
      mean_relative_difference: round(train.mean, 5),
      difference_half_width_95: train.halfWidth === null ? null : round(train.halfWidth, 5),
      lowest_difference: round(Math.min(...d), 5),
      highest_difference: round(Math.max(...d), 5),
      eval_mean_relative_difference: evaluation === null ? null : round(evaluation.mean, 5),
      eval_difference_half_width_95: evaluation === null || evaluation.halfWidth === null ? null : round(evaluation.halfWidth, 5),
    };
  });
}

/** `which` model trained `steps` steps on the tiny task at each precision and each of `seeds` seeds from the config's, through runTrainingJob, one after another on wasm (with one seed, float32 at the next seed too). */
async function lossGap(configPath: string, steps: number, precisions: BasePrecision[], which: LossModel, seeds: number, batchSize?: number): Promise<LossGap> {
  const scratch = await mkdtemp(join(tmpdir(), 'moslora-bench-scale-loss-'));
  try {
    const config = parse(await readFile(configPath, 'utf8')) as { model: string; training: { seed: number; batch_size: number } };
    const tinyModel = join(dirname(configPath), config.model);
    const modelDir = which === 'tiny' ? undefined : join(scratch, 'llama-100m');
    const model = modelDir ? await writeLossModel(modelDir, tinyModel) : tinyModel;
    const train = async (precision: BasePrecision, seed: number): Promise<LossGapCase> => {
      const file = await lossGapConfig(configPath, precision, steps, scratch, modelDir, batchSize);
      const summary = await runTrainingJob(file, { backend: 'wasm', runDir: join(scratch, `run-${precision}-${seed}`), overrides: { seed } });
      if (summary.state !== 'done' || summary.finalLoss === null) throw new Error(`the ${which} model at ${precision}, seed ${seed}, did not complete ${steps} steps: ${summary.state}${summary.reason ? ` (${summary.reason})` : ''}`);
      console.error(`${which} model, ${precision}, seed ${seed}: final train loss ${summary.finalLoss.toFixed(5)} after ${steps} steps (${summary.wallSeconds.toFixed(0)} s)`);
      return { precision, seed, formats: describeBaseFormats(formatsOf(precision)), final_loss: round(summary.finalLoss, 5), eval_loss: summary.evalLoss === null ? null : round(summary.evalLoss, 5), relative_difference: null, wall_s: round(summary.wallSeconds, 1) };
    };
    const first = config.training.seed;
    const trained: LossGapCase[] = [];
    for (let seed = first; seed < first + seeds; seed++) for (const precision of precisions) trained.push(await train(precision, seed));
    const float32 = float32BySeed(trained);
    const cases = trained.map((c) => ({ ...c, relative_difference: round(relativeTo(c.final_loss, float32.get(c.seed)!.final_loss), 5) }));
    const others = seeds > 1 ? cases.filter((c) => c.precision === 'float32' && c.seed !== first) : [await train('float32', first + 1)];
    const spread = others.map((c) => ({ ...c, relative_difference: round(relativeTo(c.final_loss, float32.get(first)!.final_loss), 5) }));
    return { config: configPath, model, steps, batch: batchSize ?? config.training.batch_size, cases, paired: pairLossGap(cases), float32_seed_spread: spread };
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

export const LOSS_GAP_CONFIG = 'examples/tiny-moslora.moslora.yaml';

export async function benchScale(options: ScaleOptions, childArgs: (one: string) => string[]): Promise<ScaleBenchResult> {
  const loadBefore = loadavg()[0]!;
  const freeBefore = freemem();
  const cases: ScaleCase[] = [];
  for (const name of options.shapes) cases.push(...(await measureShape(name, options, childArgs)));
  const gap = options.lossSteps > 0 ? await lossGap(LOSS_GAP_CONFIG, options.lossSteps, options.lossPrecisions, options.lossModel, options.lossSeeds, options.lossBatch) : null;
  return {
    bench: 'scale', backend: 'wasm', batch: BATCH, tokens: TOKENS, rank: RANK, targets: TARGETS, checkpointing: true, checkpoint_dtype: 'BF16',
    machine_gib: round(totalmem() / GiB, 1), free_gib_before: round(freeBefore / GiB, 1), load_average: [round(loadBefore, 2), round(loadavg()[0]!, 2)], machine_shared: true,
    cases, loss_gap: gap,
  };
}

/** The table's rows, one per shape and precision. */
export function scaleSummary(r: ScaleBenchResult): string {
  const lines = r.cases.map((c) => {
    const head = `${c.shape.padEnd(13)} ${c.precision.padEnd(8)} estimate ${String(c.estimate_gib).padStart(6)} GiB: `;
    if (c.refusal) return `${head}refused before loading (${c.refusal})`;
    if (!c.measured) return `${head}fits, but its run failed: ${c.error}`;
    const m = c.measured;
    return `${head}load ${m.load_s} s · peak RSS ${m.rss_peak_gib} GiB · step ${m.each_step_s.join(', ')} s (loss ${m.losses.join(', ')}) · heap ${m.heap_gib} GiB`;
  });
  if (r.loss_gap) {
    lines.push(`loss gap, ${r.loss_gap.model}, ${r.loss_gap.steps} steps of ${r.loss_gap.batch} sequences (${r.loss_gap.config}):`);
    const percent = (x: number) => `${x >= 0 ? '+' : ''}${(100 * x).toFixed(2)}%`;
    for (const c of r.loss_gap.cases) lines.push(`  ${c.precision.padEnd(8)} seed ${c.seed}: final train loss ${c.final_loss}${c.relative_difference === null ? '' : ` · ${percent(c.relative_difference)} from float32`}${c.eval_loss === null ? '' : ` · eval loss ${c.eval_loss}`}`);
    for (const p of r.loss_gap.paired) {
      const interval = p.difference_half_width_95 === null ? '' : ` ± ${(100 * p.difference_half_width_95).toFixed(2)}% (95%)`;
      const evaluation = p.eval_mean_relative_difference === null ? '' : ` · eval loss ${percent(p.eval_mean_relative_difference)}${p.eval_difference_half_width_95 === null ? '' : ` ± ${(100 * p.eval_difference_half_width_95).toFixed(2)}%`}`;
      lines.push(`  ${p.precision.padEnd(8)} over ${p.seeds} seed(s), paired: final train loss ${percent(p.mean_relative_difference)}${interval} from float32 (${percent(p.lowest_difference)} to ${percent(p.highest_difference)})${evaluation}`);
    }
    for (const n of r.loss_gap.float32_seed_spread) lines.push(`  float32 at seed ${n.seed} (no quantisation, another seed): final train loss ${n.final_loss} · ${percent(n.relative_difference!)} from float32 at seed ${r.loss_gap.cases[0]!.seed}`);
  }
  lines.push(`(${r.machine_gib} GiB machine, ${r.free_gib_before} GiB free at the start; load average ${r.load_average[0]} → ${r.load_average[1]}: the machine was shared)`);
  return lines.join('\n');
}

