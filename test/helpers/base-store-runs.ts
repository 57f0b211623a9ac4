// Short MoSLoRA runs of the shipped tiny model with its frozen base held one way or another
// (LoadModelOptions: store and formats), for the tests that compare the weight stores.
import { join } from 'node:path';
import { DEFAULT_GROUP_SIZE, type BaseFormats, type BasePrecision } from '../../kernels/base/quant';
import type { BackendChoice } from '../../protocol/backends';
import { resolveConfigPaths } from '../../server/config/load';
import { configSchema } from '../../server/config/schema';
import { RunDirectory } from '../../server/engine/runs';
import { train } from '../../server/engine/train';
import { CausalLM, type LoadModelOptions } from '../../server/models/model';
import type { ModelTokenizer } from '../../server/models/tokenizer';
import { TINY_MODEL } from './tiny-models';

/** One precision for the linear layers and the embedding, in groups of the default size. */
export function formatsAt(precision: BasePrecision): BaseFormats {
  const format = { precision, groupSize: DEFAULT_GROUP_SIZE };
  return { linear: format, embedding: format };
}

export interface BaseStoreRun {
  /** Where the run's config and run folder go. */
  dir: string;
  backend: BackendChoice;
  tokenizer: ModelTokenizer;
  name: string;
  load: LoadModelOptions;
  /** The training file (.jsonl). */
  train: string;
  steps: number;
  batch: number;
  learningRate: number;
  warmup: number;
}

/** The train losses of a MoSLoRA run (r 8 on q, v, up and down; no dropout; seed 5) of the tiny model loaded with `load`. */
export async function baseStoreTrainLosses(run: BaseStoreRun): Promise<number[]> {
  const config = resolveConfigPaths(
    configSchema.parse({
      model: TINY_MODEL, method: 'moslora', r: 8, alpha: 16, dropout: 0, target_modules: ['q_proj', 'v_proj', 'up_proj', 'down_proj'],
      data: { train: run.train, max_length: 32 },
      training: { max_steps: run.steps, batch_size: run.batch, gradient_accumulation: 1, learning_rate: run.learningRate, warmup_steps: run.warmup, log_interval: 1, eval_interval: 100, checkpoint_interval: 100, seed: 5 },
      output: { runs_dir: join(run.dir, 'runs'), run_name: run.name },
    }),
    join(run.dir, `${run.name}.moslora.yaml`),
  );
  const model = await CausalLM.load(TINY_MODEL, run.load);
  try {
    const runDir = join(run.dir, 'runs', run.name);
    await train({ config, model, tokenizer: run.tokenizer, backend: run.backend, runDir, resume: false });
    return (await new RunDirectory(runDir).readMetrics()).filter((m) => m.kind === 'train').map((m) => Number(m.loss));
  } finally {
    model.dispose();
  }
}
