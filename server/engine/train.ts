// The training loop, top to bottom: load, attach adapters, then for each optimizer step
// 1) accumulate gradients over micro-batches, 2) clip, 3) AdamW at the scheduled rate,
// 4) log / evaluate / snapshot mixers / checkpoint at their intervals. Cancel saves a checkpoint
// first; a NaN or Inf loss stops the run and keeps the last good checkpoint; resume continues
// from the newest checkpoint and reproduces the uninterrupted curve.
import { basename } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { AdapterConfigError, trainableParameterCount } from '../../kernels/adapter/spec';
import type { Adapter } from '../../kernels/adapter/linear';
import { mixerProduct } from '../../kernels/adapter/merge';
import { readValues, takeNumber } from '../../kernels/backends/read';
import { mixerStats } from '../../kernels/adapter/stats';
import { isGpuError } from '../../kernels/backends/gpu-errors';
import { productEngine, setProductThreads } from '../../kernels/backends/mlas-matmul';
import { isWasmAbort, isWasmHeapExhausted } from '../../kernels/backends/wasm-kernels';
import type { ResolvedConfig } from '../config/load';
import type { BackendChoice } from '../../protocol/backends';
import type { MetricRecord, MixerSnapshot, TrainSummary } from '../../protocol/records';
import type { TrainEvent, TrainPhase } from '../../protocol/trainer';
import { exportPeft, saveAdapter, type AdapterSettings } from './adapter-files';
import {
  checkRecords,
  choiceExamples,
  collate,
  epochBatches,
  loadExamples,
  pack,
  readRecords,
  renameFields,
  splitExamples,
  type Batch,
  type ChoiceExample,
  type DataRecord,
  type DataTokenizer,
  type TokenizedExample,
} from './data';
import { IGNORE_INDEX, type EngineModel } from '../models/model';
import type { LinearModule } from '../models/modules';
import { AdamW, scheduleFactor } from './optim';
import { isFileError, RunDirectory, type LoadedCheckpoint, type TrainerState } from './runs';
import { median } from './median';
import { DataParallel, isShardWorkerError, shardWorkerInit, ShardWorkers, type Scorer, type ShardWorkerInit } from './parallel';
import { createAdapters, disposeAdapters, makeTrainable, selectModules, trainableValues, type AdapterTemplate } from '../models/adapters';
import type { WorkerPlan } from './plan-workers';
import { memoryLimit, resolveCheckpointing } from './memory';

export interface TrainInputs {
  config: ResolvedConfig;
  model: EngineModel;
  tokenizer: DataTokenizer;
  backend: BackendChoice;
  /** The run folder: new for a fresh run; an existing one to resume. */
  runDir: string;
  resume: boolean;
  signal?: AbortSignal;
  onEvent?: (event: TrainEvent) => void;
  /**
   * Threads that share each micro-batch (parallel.ts planWorkers), loading the model from modelDir
   * as `load` says (its stored formats, and the native store's matrices, which they map rather
   * than read); absent: one.
   */
  workers?: { plan: WorkerPlan; modelDir: string; load?: ShardWorkerInit['load'] };
  /** The datasets as readDatasets read them, when read before the model was loaded; absent: read here. */
  datasets?: Datasets;
}

/** The records of a run's datasets, each line checked for the fields its format needs. */
export interface Datasets {
  train: DataRecord[];
  eval?: DataRecord[];
}

/** Reads and checks the config's datasets: cheap next to loading a model, so a bad line is refused first. */
export async function readDatasets(config: ResolvedConfig): Promise<Datasets> {
  const { train: trainFile, eval: evalFile, format, fields } = config.data;
  const train = await readRecords(trainFile);
  checkRecords(trainFile, train, format, fields);
  if (evalFile === undefined) return { train };
  const evalRecords = await readRecords(evalFile);
  checkRecords(evalFile, evalRecords, format, fields);
  return { train, eval: evalRecords };
}

async function evalLoss(score: Scorer, rows: TokenizedExample[], batchSize: number, padId: number): Promise<number> {
  let total = 0;
  let tokens = 0;
  for (let start = 0; start < rows.length; start += batchSize) {
    const batch = collate(rows.slice(start, start + batchSize), padId);
    total -= (await score(batch)).reduce((a, b) => a + b, 0);
    tokens += batch.targetTokens;
  }
  return total / Math.max(1, tokens);
}

/**
 * Share of multiple-choice examples whose right answer has the highest log-likelihood. Whole
 * examples are scored together, up to `rowsPerBatch` choices at a time (an example with more is
 * scored alone); padding after a row changes nothing before it, as attention is causal.
 */
export async function choiceAccuracy(score: Scorer, examples: ChoiceExample[], tokenizer: DataTokenizer, maxLength: number, rowsPerBatch: number): Promise<number> {
  const prompts = examples.map((example) => [...(tokenizer.bosTokenId === null ? [] : [tokenizer.bosTokenId]), ...tokenizer.encode(example.prompt)]);
  const rowsOf = (example: ChoiceExample, prompt: number[]) =>
    example.choices.map((choice) => {
      const answer = tokenizer.encode(choice);
      return { inputIds: [...prompt, ...answer].slice(-maxLength), labels: [...prompt.map(() => IGNORE_INDEX), ...answer].slice(-maxLength) };
    });
  let right = 0;
  for (let first = 0; first < examples.length; ) {
    const group: ChoiceExample[] = [];
    const rows: TokenizedExample[] = [];
    for (let i = first; i < examples.length && (group.length === 0 || rows.length + examples[i]!.choices.length <= rowsPerBatch); i++) {
      group.push(examples[i]!);
      rows.push(...rowsOf(examples[i]!, prompts[i]!));
    }
    const scores = await score(collate(rows, tokenizer.padTokenId));
    let offset = 0;
    for (const example of group) {
      const own = scores.slice(offset, offset + example.choices.length);
      if (own.indexOf(Math.max(...own)) === example.answer) right++;
      offset += example.choices.length;
    }
    first += group.length;
  }
  return right / examples.length;
}

function settingsOf(config: ResolvedConfig, layouts: LinearModule[]): AdapterSettings {
  return {
    baseModel: config.model,
    method: config.method,
    r: config.r,
    alpha: config.alpha,
    dropout: config.dropout,
    useRslora: config.use_rslora,
    useDora: config.use_dora,
    mixerInit: config.mixer_init,
    chainLength: config.chain_length,
    // a pattern ('all-linear', a regular expression) is saved as the modules it selected
    targetModules: Array.isArray(config.target_modules) ? config.target_modules : layouts.map((m) => m.name),
    fanInFanOut: layouts.some((m) => m.layout === 'in_out'),
    basePrecision: {
      torch_dtype: config.torch_dtype,
      load_in_8bit: config.load_in_8bit,
      load_in_4bit: config.load_in_4bit,
      ...(config.bnb_4bit_quant_type ? { bnb_4bit_quant_type: config.bnb_4bit_quant_type } : {}),
      ...(config.quant_group_size ? { quant_group_size: config.quant_group_size } : {}),
    },
  };
}

async function snapshotMixers(step: number, adapters: ReadonlyMap<string, Adapter>): Promise<MixerSnapshot[]> {
  const out: MixerSnapshot[] = [];
  for (const [module, { spec, weights }] of adapters) {
    if (weights.mixers.length === 0) continue;
    const product = mixerProduct(weights.mixers)!;
    const stats = mixerStats(await readValues(product), spec.r);
    if (weights.mixers.length > 1) product.dispose();
    out.push({ step, module, r: spec.r, values: stats.values, distanceFromIdentity: stats.distanceFromIdentity, singularValues: stats.singularValues });
  }
  return out;
}

export async function train(inputs: TrainInputs): Promise<TrainSummary> {
  const { config, model, tokenizer, backend, signal } = inputs;
  const emit = inputs.onEvent ?? (() => {});
  const t = config.training;
  const started = performance.now();

  // Data
  const dataOptions = {
    format: config.data.format, maxLength: config.data.max_length, trainOnPrompt: config.data.train_on_prompt,
    ...(config.data.fields ? { fields: config.data.fields } : {}), ...(model.shape ? { vocabSize: model.shape.vocab } : {}),
  };
  const datasets = inputs.datasets ?? (await readDatasets(config));
  let trainRows = await loadExamples(config.data.train, tokenizer, dataOptions, datasets.train);
  let evalRows: TokenizedExample[] = [];
  let choices: ChoiceExample[] | null = null;
  if (config.data.eval !== undefined) {
    const records = datasets.eval ?? (await readRecords(config.data.eval));
    evalRows = await loadExamples(config.data.eval, tokenizer, dataOptions, records);
    choices = choiceExamples(config.data.eval, renameFields(records, config.data.fields));
  } else if (config.data.eval_split > 0) {
    ({ train: trainRows, eval: evalRows } = splitExamples(trainRows, config.data.eval_split, t.seed));
  }
  if (config.data.packing) trainRows = pack(trainRows, config.data.max_length);
  const batchesPerEpoch = Math.ceil(trainRows.length / t.batch_size);
  const totalSteps = t.max_steps ?? Math.max(1, Math.ceil((t.epochs * batchesPerEpoch) / t.gradient_accumulation));

  // Adapters
  const { selected: matched, unmatched } = selectModules(model.linearModules, config.target_modules);
  if (unmatched.length) {
    throw new Error(`${config.configPath}: target_modules ${unmatched.map((u) => `"${u}"`).join(', ')} match no linear module of ${config.model}`);
  }
  const template = adapterTemplate(config);

  // The run folder, locked while this trainer writes it. A fresh run's folder is made only once
  // the config has passed every check: a refusal leaves nothing behind that would block it.
  const resumed = inputs.resume ? await RunDirectory.open(inputs.runDir) : null;
  let run = resumed;
  let adapters: Map<string, Adapter> | null = null;
  let optimizer: AdamW | null = null;
  let state: TrainerState = { step: 0, epoch: 0, batchInEpoch: 0, tokensSeen: 0, elapsedSeconds: 0 };
  let moduleAborted = false;
  try {
    const checkpoint = resumed ? await checkpointToResume(resumed, totalSteps, config) : null;
    adapters = withConfigPath(config, () => createAdapters(matched, template, t.seed, checkpoint?.adapters, (module) => model.base(module)));
    run ??= await RunDirectory.create(inputs.runDir, config, { unique: config.output.run_name === undefined });
    const params = makeTrainable(adapters);
    const threads = inputs.workers?.plan.count ?? 1;
    const productThreads = inputs.workers?.plan.productThreads ?? 1;
    setProductThreads(productThreads);
    const trainable = [...adapters.values()].reduce((n, { spec }) => n + trainableParameterCount(spec), 0);
    const checkpointing = resolveCheckpointing(
      t.gradient_checkpointing,
      // each thread's backend holds its share of the batch
      model.shape ? { ...model.shape, baseParameters: model.parameterCount, ...(model.nativeBytes !== undefined ? { nativeBytes: model.nativeBytes } : {}), products: productEngine(), trainable, batch: Math.ceil(t.batch_size / threads), maxLength: config.data.max_length } : null,
      memoryLimit(backend.backend),
    );
    optimizer = new AdamW({ weightDecay: t.weight_decay });
    let last: { loss: number | null; accuracy: number | null } = { loss: null, accuracy: null };
    let lastLogged: number[] = [];
    if (checkpoint) {
      optimizer.setState(checkpoint.optimizer);
      await run.truncateAfter(checkpoint.state.step);
      state = checkpoint.state;
      // what the summary reports if the resumed part logs or evaluates nothing more
      const metrics = (await run.readMetrics()).reverse();
      const numberOf = (value: unknown) => (typeof value === 'number' ? value : null);
      const lastEval = metrics.find((m) => m.kind === 'eval');
      const lastLoss = numberOf(metrics.find((m) => m.kind === 'train')?.loss);
      if (lastEval) last = { loss: numberOf(lastEval.eval_loss), accuracy: numberOf(lastEval.accuracy) };
      if (lastLoss !== null) lastLogged = [lastLoss];
    }
    const settings = settingsOf(config, matched);
    const folder = run;
    const weights = adapters;
    const adamW = optimizer;

    const resumedElapsed = state.elapsedSeconds;
    const elapsed = () => resumedElapsed + (performance.now() - started) / 1000;
    const event = (s: TrainPhase, message?: string) => emit({ type: 'state', state: s, runDir: folder.dir, step: state.step, totalSteps, ...(message ? { message } : {}) });
    const log = async (record: MetricRecord) => {
      await folder.appendMetrics(record);
      emit({ type: 'metrics', record });
    };
    const saveCheckpoint = async () => {
      event('saving');
      await folder.saveCheckpoint(weights, settings, await adamW.getState(), { ...state, elapsedSeconds: elapsed() }, t.checkpoints_kept);
      // a checkpoint mid-run: back to training (the status bar and panel would say "saving" to the end)
      if (state.step < totalSteps) event('training');
    };
    // gradients and evaluation, in this thread alone until the workers have started
    let parallel = new DataParallel(model, weights, params, null);
    const evaluate = async () => {
      if (evalRows.length === 0) return { loss: null, accuracy: null };
      const score = await parallel.scorer();
      const loss = await evalLoss(score, evalRows, t.batch_size, tokenizer.padTokenId);
      // a training batch's rows fit in memory, so its forward pass alone does
      const accuracy = choices ? await choiceAccuracy(score, choices, tokenizer, config.data.max_length, t.batch_size) : null;
      await log({ step: state.step, kind: 'eval', eval_loss: loss, ...(accuracy === null ? {} : { accuracy }), wall_s: elapsed() });
      return { loss, accuracy };
    };
    const snapshot = async () => {
      const snapshots = await snapshotMixers(state.step, weights);
      await folder.appendMixers(snapshots);
      if (snapshots.length) emit({ type: 'mixers', snapshots });
    };

    // The batches of an epoch depend only on the seed and the epoch, so a resumed run sees
    // exactly the batches the uninterrupted one would have.
    let epochCache: { epoch: number; batches: Batch[] } | null = null;
    const nextBatch = (): Batch => {
      if (state.batchInEpoch >= batchesPerEpoch) state = { ...state, epoch: state.epoch + 1, batchInEpoch: 0 };
      if (epochCache?.epoch !== state.epoch) epochCache = { epoch: state.epoch, batches: epochBatches(trainRows, t.batch_size, t.seed, state.epoch, tokenizer.padTokenId) };
      const batch = epochCache.batches[state.batchInEpoch]!;
      state = { ...state, batchInEpoch: state.batchInEpoch + 1 };
      return batch;
    };

    const finish = async (outcome: TrainSummary['state'], reason: string | undefined, lossWindow: number[], stepSeconds: number[]) => {
      const summary: TrainSummary = {
        runDir: folder.dir, state: outcome, ...(reason ? { reason } : {}), backend: backend.backend, device: backend.device, threads, method: config.method, useDora: config.use_dora,
        steps: state.step, totalSteps, trainableParameters: trainable, baseParameters: model.parameterCount,
        finalLoss: lossWindow.length ? lossWindow.reduce((a, b) => a + b, 0) / lossWindow.length : null,
        evalLoss: last.loss, accuracy: last.accuracy, medianStepSeconds: stepSeconds.length ? median(stepSeconds) : null, wallSeconds: elapsed(),
      };
      await folder.writeSummary(summary);
      event(outcome, reason);
      return summary;
    };

    event('training', [folder.lockNote, checkpointing.reason, inputs.workers?.plan.reason].filter(Boolean).join('; ') || undefined);
    if (state.step === 0) {
      await snapshot();
    }
    let lossWindow: number[] = [];
    const stepSeconds: number[] = [];
    let workers: ShardWorkers | null = null;
    try {
      if (inputs.workers && threads > 1) {
        workers = await ShardWorkers.start(threads - 1, await shardWorkerInit(backend.backend, inputs.workers.modelDir, weights, productThreads, inputs.workers.load));
        parallel = new DataParallel(model, weights, params, workers);
      }
      while (state.step < totalSteps) {
        if (signal?.aborted) {
          await saveCheckpoint();
          return await finish('cancelled', 'cancelled by the user; resume continues from the checkpoint just saved', lastLogged, stepSeconds);
        }
        const stepStarted = performance.now();
        // 1) gradients, averaged over the micro-batches of this step
        let lossSum = 0;
        let tokens = 0;
        let summed: tf.Tensor1D | null = null;
        for (let micro = 0; micro < t.gradient_accumulation; micro++) {
          const batch = nextBatch();
          tokens += batch.inputIds.reduce((n, row) => n + row.length, 0);
          const dropoutSeed = t.seed * 1_000_003 + state.step * 101 + micro;
          const { loss: microLoss, grad } = await parallel.gradients(batch, { dropoutSeed, checkpoint: checkpointing.on });
          lossSum += microLoss;
          const previous: tf.Tensor1D | null = summed;
          summed = previous ? tf.add<tf.Tensor1D>(previous, grad) : grad;
          if (previous) tf.dispose([previous, grad]);
        }
        const loss = lossSum / t.gradient_accumulation;
        if (!Number.isFinite(loss)) {
          summed!.dispose();
          const reason = `the loss became ${loss} at step ${state.step + 1}; stopped, the last good checkpoint is kept. Lower training.learning_rate or set training.grad_clip`;
          return await finish('failed', reason, lastLogged, stepSeconds);
        }
        // 2) clip, 3) AdamW at the scheduled learning rate
        const averaged: tf.Tensor1D = tf.div(summed!, t.gradient_accumulation);
        summed!.dispose();
        const lr = t.learning_rate * scheduleFactor(t.schedule, state.step, t.warmup_steps, totalSteps);
        const norm = await adamW.applyClipped(params, averaged, lr, t.grad_clip);
        averaged.dispose();
        // a finite loss does not make finite weights (a huge weight decay overflows them): such an
        // adapter is never checkpointed, saved or reported done
        const broken = await nonFiniteWeight(params);
        if (broken) {
          const reason =
            `the adapter's weights became non-finite (NaN or infinite) at step ${state.step + 1}, in ${broken}; stopped, the last good checkpoint is kept. ` +
            `Lower training.learning_rate or training.weight_decay (${t.weight_decay}), or set training.grad_clip`;
          return await finish('failed', reason, lastLogged, stepSeconds);
        }
        state = { ...state, step: state.step + 1, tokensSeen: state.tokensSeen + tokens };
        const seconds = (performance.now() - stepStarted) / 1000;
        stepSeconds.push(seconds);
        lossWindow.push(loss);
        // 4) log, evaluate, snapshot, checkpoint
        if (state.step % t.log_interval === 0 || state.step === totalSteps) {
          const mean = lossWindow.reduce((a, b) => a + b, 0) / lossWindow.length;
          await log({ step: state.step, kind: 'train', loss: mean, lr, grad_norm: norm, tokens_per_s: tokens / seconds, epoch: state.epoch, wall_s: elapsed() });
          lastLogged = lossWindow;
          lossWindow = [];
        }
        if (state.step % t.eval_interval === 0 || state.step === totalSteps) last = await evaluate();
        if (state.step % t.mixer_interval === 0 || state.step === totalSteps) await snapshot();
        if (state.step % t.checkpoint_interval === 0 || state.step === totalSteps) await saveCheckpoint();
      }
      event('saving');
      await saveAdapter(`${folder.dir}/adapter`, weights, settings);
      await exportPeft(`${folder.dir}/peft`, weights, settings, config.model);
      return await finish('done', undefined, lastLogged, stepSeconds);
    } catch (error) {
      if (!isWasmHeapExhausted(error) && !isGpuError(error) && !isShardWorkerError(error) && !isFileError(error)) throw error;
      moduleAborted = isWasmAbort(error);
      const kept = (await folder.checkpointSteps()).at(-1);
      const keptText = kept === undefined ? 'No checkpoint had been saved.' : `The checkpoint of step ${kept} is kept in ${folder.dir}.`;
      const where = `${config.configPath}: training stopped at step ${state.step + 1}`;
      if (isShardWorkerError(error)) {
        throw new Error(`${where}: ${error.message}. training.workers: 1 trains in this thread alone. ${keptText}`, { cause: error });
      }
      if (isFileError(error)) {
        throw new Error(`${config.configPath}: training stopped after step ${state.step}: ${(error as Error).message}. ${keptText}`, { cause: error });
      }
      const toFit =
        `To fit: ${checkpointing.on ? '' : 'set training.gradient_checkpointing: true; or '}lower training.batch_size (raising training.gradient_accumulation keeps the effective batch) or data.max_length.`;
      if (isGpuError(error)) {
        throw new Error(
          `${where}: ${error.message} (backend ${backend.backend}, ${backend.device}). Nothing computed after the failure was saved. ` +
            `${error.outOfMemory ? `${toFit} ` : ''}${keptText}`,
          { cause: error },
        );
      }
      throw new Error(
        `${where}: the wasm backend ran out of its 4 GiB heap ` +
          `(training.batch_size ${t.batch_size} × data.max_length ${config.data.max_length}${checkpointing.on ? ', with gradient checkpointing' : ''}). ` +
          `${toFit} The memory warning on this config in the editor estimates the peak. ${keptText}`,
        { cause: error },
      );
    } finally {
      await workers?.close();
    }
  } catch (error) {
    // a fresh run that ends before its first step holds nothing but what this trainer wrote at its start
    if (run && !resumed && state.step === 0 && !moduleAborted) await run.discard();
    throw error;
  } finally {
    // After a wasm abort nothing in the module can be freed (or needs to be): the process ends.
    if (!moduleAborted) {
      optimizer?.dispose();
      if (adapters) disposeAdapters(adapters);
    }
    await run?.release();
  }
}

/**
 * The newest checkpoint of a run to resume; refused when there is none, or when the run is done
 * and the config asks for no more steps than it has trained.
 */
async function checkpointToResume(run: RunDirectory, totalSteps: number, config: ResolvedConfig): Promise<LoadedCheckpoint> {
  const checkpoint = await run.loadLatestCheckpoint();
  if (!checkpoint) throw new Error(`${run.dir}: no checkpoint to resume from (the run stopped before its first checkpoint); start it again in a new folder`);
  const { step } = checkpoint.state;
  if (step >= totalSteps && (await run.readSummary())?.state === 'done') {
    const more = config.training.max_steps === undefined ? `set training.max_steps (or raise training.epochs) in ${config.configPath}` : `raise training.max_steps in ${config.configPath}`;
    throw new Error(`${run.dir}: the run is done (${step} of ${totalSteps} steps trained); nothing to resume. To train it further, ${more} above ${step} and resume again`);
  }
  return checkpoint;
}

/**
 * The values a run of `config` trains on a model with these linear modules, from their shapes
 * alone (before any weight loads): what its memory estimate counts. A target matching nothing adds
 * none here; the trainer refuses it once the model has loaded.
 */
export function configTrainableValues(config: ResolvedConfig, linears: readonly LinearModule[]): number {
  return withConfigPath(config, () => trainableValues(selectModules(linears, config.target_modules).selected, adapterTemplate(config)));
}

/** The adapter every targeted module gets, as the config says. */
function adapterTemplate(config: ResolvedConfig): AdapterTemplate {
  return {
    method: config.method, r: config.r, alpha: config.alpha, useRslora: config.use_rslora,
    chainLength: config.chain_length, mixerInit: config.mixer_init, dropout: config.dropout, useDora: config.use_dora,
  };
}

/** Runs `make`, naming the config in an adapter spec's refusal (r too large for a module, …). */
function withConfigPath<T>(config: ResolvedConfig, make: () => T): T {
  try {
    return make();
  } catch (error) {
    if (error instanceof AdapterConfigError) throw new Error(`${config.configPath}: ${error.message}`, { cause: error });
    throw error;
  }
}

/**
 * The name of the first trainable weight holding a NaN or an infinity, or null when all are
 * finite. x·0 is 0 for every finite x and NaN otherwise, so one sum checks them all. The sums are
 * added two at a time: webgpu's AddN binds every input at once, past a device's storage-buffer limit.
 */
async function nonFiniteWeight(params: ReadonlyMap<string, tf.Variable>): Promise<string | null> {
  const poisoned = (tensors: tf.Tensor[]) => tf.tidy(() => tensors.map((x) => tf.sum(tf.mul(x, 0))).reduce((a, b) => tf.add(a, b)));
  if (Number.isFinite(await takeNumber(poisoned([...params.values()])))) return null;
  for (const [name, weight] of params) {
    if (!Number.isFinite(await takeNumber(poisoned([weight])))) return name;
  }
  return null;
}

/** A run folder name: the config's name and the start time, unless the config names it. */
export function defaultRunName(config: ResolvedConfig, now = new Date()): string {
  const stem = basename(config.configPath).replace(/\.moslora\.(ya?ml|json)$/, '').replace(/[^A-Za-z0-9._-]/g, '-');
  return config.output.run_name ?? `${stem}-${now.toISOString().replace(/[:T]/g, '-').slice(0, 19)}`;
}
