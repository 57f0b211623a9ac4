// One training job from a config file: what `moslora train` and the trainer process both run.
import { existsSync } from 'node:fs';
import { freemem } from 'node:os';
import { join } from 'node:path';
import { loadConfigFile, type ResolvedConfig } from '../config/load';
import { CausalLM } from '../models/model';
import { ModelTokenizer } from '../models/tokenizer';
import type { BackendPreference } from '../../protocol/backends';
import { productEngine } from '../../kernels/backends/mlas-matmul';
import { startBackend } from '../runtime';
import { planWorkers, SHARD_WORKER_FILE } from './plan-workers';
import { defaultRunName, train } from './train';
import type { ConfigOverrides, TrainEvent } from '../../protocol/trainer';
import type { TrainSummary } from '../../protocol/records';

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
    training: {
      ...config.training,
      ...(overrides.seed !== undefined ? { seed: overrides.seed } : {}),
      ...(overrides.workers !== undefined ? { workers: overrides.workers } : {}),
    },
  };
}

export async function runTrainingJob(configPath: string, options: SessionOptions = {}): Promise<TrainSummary> {
  const config = withOverrides(await loadConfigFile(configPath), options.overrides ?? {});
  const runDir = options.resumeRunDir ?? options.runDir ?? join(options.runsDir ?? config.output.runs_dir, defaultRunName(config));
  const emit = options.onEvent ?? (() => {});
  emit({ type: 'state', state: 'loading', runDir, step: 0, totalSteps: 0, message: `loading ${config.model}` });
  const backend = await startBackend(options.backend ?? config.backend);
  // the backend that started, for the status bar and the panel's header while the run is young
  emit({ type: 'state', state: 'loading', runDir, step: 0, totalSteps: 0, message: `loading ${config.model}`, backend: backend.backend, device: backend.device });
  const [model, tokenizer] = await Promise.all([CausalLM.load(config.model), ModelTokenizer.load(config.model)]);
  const t = config.training;
  const plan = planWorkers(t.workers, backend.backend, {
    batch: t.batch_size,
    checkpointing: t.gradient_checkpointing,
    // the adapter's few MiB aside
    memory: { ...model.shape, baseParameters: model.parameterCount, products: productEngine(), trainable: 0, maxLength: config.data.max_length },
  }, options.cores === undefined ? undefined : { cores: options.cores, freeBytes: freemem(), bundled: existsSync(SHARD_WORKER_FILE) });
  try {
    return await train({
      config, model, tokenizer, backend, runDir, resume: options.resumeRunDir !== undefined, workers: { plan, modelDir: config.model },
      ...(options.signal ? { signal: options.signal } : {}), onEvent: emit,
    });
  } finally {
    model.dispose();
  }
}
