// One training job from a config file: what `moslora train` and the trainer process both run.
import { existsSync } from 'node:fs';
import { freemem } from 'node:os';
import { join } from 'node:path';
import { loadConfigFile, type ResolvedConfig } from '../config/load';
import { CausalLM } from '../models/model';
import { baseStoreBytes, readModelLayout } from '../models/modules';
import { ModelTokenizer } from '../models/tokenizer';
import type { BackendName, BackendPreference } from '../../protocol/backends';
import { productEngine } from '../../kernels/backends/mlas-matmul';
import { startBackend } from '../runtime';
import { describeBaseFormats, type BaseFormats } from '../../kernels/base/quant';
import type { LoadProgress } from '../../kernels/base/native-load';
import { baseFormats } from '../config/schema';
import { defaultStore } from '../models/model';
import { formatBytes, machineRefusal } from './memory';
import { planWorkers, SHARD_WORKER_FILE } from './plan-workers';
import { configTrainableValues, defaultRunName, readDatasets, train } from './train';
import type { ConfigOverrides, TrainEvent } from '../../protocol/trainer';
import type { TrainSummary } from '../../protocol/records';

/** The backends whose memory is the machine's. */
const CPU_BACKENDS: readonly BackendName[] = ['wasm', 'cpu'];
/** Stored precisions of the base a refusal may suggest, the least change first. */
export const LOWER_PRECISIONS: { setting: string; config: Pick<ResolvedConfig, 'torch_dtype' | 'load_in_8bit' | 'load_in_4bit'> & Partial<Pick<ResolvedConfig, 'bnb_4bit_quant_type'>> }[] = [
  { setting: 'torch_dtype: bfloat16', config: { torch_dtype: 'bfloat16', load_in_8bit: false, load_in_4bit: false } },
  { setting: 'load_in_8bit: true', config: { torch_dtype: 'bfloat16', load_in_8bit: true, load_in_4bit: false } },
  { setting: 'load_in_4bit: true', config: { torch_dtype: 'bfloat16', load_in_8bit: false, load_in_4bit: true, bnb_4bit_quant_type: 'nf4' } },
];

export interface SessionOptions {
  /** Overrides the config's backend (CLI --backend, the editor's moslora.backend setting). */
  backend?: BackendPreference;
  /** Continue this run folder from its newest checkpoint. */
  resumeRunDir?: string;
  /** Start the run in this folder instead of <runs_dir>/<run name>. */
  runDir?: string;
  /** Overrides the config's `output.runs_dir` (the editor's `moslora.runsDirectory`). */
  runsDir?: string;
  /** What this run changes of the config (an A/B's method, seed and threads); the rest stays as written. */
  overrides?: ConfigOverrides;
  /** Cores this job may use (an A/B that trains several runs at once gives each its share); default: the machine's. */
  cores?: number;
  signal?: AbortSignal;
  onEvent?: (event: TrainEvent) => void;
}

function withOverrides(config: ResolvedConfig, overrides: ConfigOverrides): ResolvedConfig {
  return {
    ...config,
    ...(overrides.method ? { method: overrides.method } : {}),
    ...(overrides.useDora !== undefined ? { use_dora: overrides.useDora } : {}),
    training: {
      ...config.training,
      ...(overrides.seed !== undefined ? { seed: overrides.seed } : {}),
      ...(overrides.workers !== undefined ? { workers: overrides.workers } : {}),
    },
  };
}

/**
 * Runs one training job. What can be checked cheaply is checked before the model loads: the
 * datasets, the tokenizer, and whether the run fits the machine at all.
 */
export async function runTrainingJob(configPath: string, options: SessionOptions = {}): Promise<TrainSummary> {
  const config = withOverrides(await loadConfigFile(configPath), options.overrides ?? {});
  const runDir = options.resumeRunDir ?? options.runDir ?? join(options.runsDir ?? config.output.runs_dir, defaultRunName(config));
  const emit = options.onEvent ?? (() => {});
  emit({ type: 'state', state: 'loading', runDir, step: 0, totalSteps: 0, message: `loading ${config.model}` });
  const datasets = await readDatasets(config);
  const tokenizer = await ModelTokenizer.load(config.model);
  const backend = await startBackend(options.backend ?? config.backend);
  // the backend that started, for the status bar and the panel's header while the run is young
  emit({ type: 'state', state: 'loading', runDir, step: 0, totalSteps: 0, message: `loading ${config.model}`, backend: backend.backend, device: backend.device });
  const formats = baseFormats(config);
  // From config.json and the safetensors headers: a run that cannot fit this machine is refused before the weights load.
  const { config: shape, layout } = await readModelLayout(config.model);
  const t = config.training;
  const native = defaultStore(backend.backend) === 'native';
  const storeBytes = (f: BaseFormats) => (native ? { nativeBytes: baseStoreBytes(layout, f) } : {});
  const trainable = configTrainableValues(config, layout.linears);
  const memory = {
    hidden: shape.hiddenSize, layers: shape.numLayers, heads: shape.numHeads, vocab: shape.vocabSize,
    baseParameters: layout.parameters.reduce((n, p) => n + p.shape.reduce((a, b) => a * b, 1), 0), ...storeBytes(formats), products: productEngine(), trainable, maxLength: config.data.max_length,
  };
  const machine = options.cores === undefined ? undefined : { cores: options.cores, freeBytes: freemem(), bundled: existsSync(SHARD_WORKER_FILE) };
  const plan = planWorkers(t.workers, backend.backend, { batch: t.batch_size, checkpointing: t.gradient_checkpointing, memory }, machine);
  if (CPU_BACKENDS.includes(backend.backend)) {
    const lower = native ? LOWER_PRECISIONS.map(({ setting, config: keys }) => ({ setting, ...storeBytes(baseFormats({ ...config, ...keys })) })) : [];
    const refusal = machineRefusal({ ...memory, batch: t.batch_size, checkpointing: t.gradient_checkpointing, threads: plan.count }, undefined, lower);
    if (refusal) throw new Error(`${config.configPath}: ${refusal}`);
  }
  let reported = -1;
  const onProgress = ({ bytesRead, bytesTotal }: LoadProgress) => {
    const percent = Math.floor((100 * bytesRead) / bytesTotal);
    if (percent === reported) return;
    reported = percent;
    emit({ type: 'state', state: 'loading', runDir, step: 0, totalSteps: 0, message: `loading ${config.model}: ${percent}% of ${formatBytes(bytesTotal)} (${describeBaseFormats(formats)})`, backend: backend.backend, device: backend.device });
  };
  const model = await CausalLM.load(config.model, { formats, onProgress });
  try {
    return await train({
      config, model, tokenizer, backend, runDir, resume: options.resumeRunDir !== undefined, workers: { plan, modelDir: config.model, load: { formats, shared: model.sharedWeights() } }, datasets,
      ...(options.signal ? { signal: options.signal } : {}), onEvent: emit,
    });
  } finally {
    model.dispose();
  }
}
