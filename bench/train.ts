// A full training step (forward, backward, AdamW) of MoSLoRA r=16 on q, k, v, up, down, batch
// 4 × 256 tokens: ours against PyTorch on the same checkpoint, adapter and batch, in one run,
// alternating the two sides. Models: the tiny shipped model, and a ~100M-parameter Llama-shaped
// model with random weights.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { BackendChoice } from '../protocol/backends';
import { CausalLM } from '../server/models/model';
import { TARGETS, TrainingWorkload, withBenchModel, type WorkloadOptions } from './workload';
import { median } from '../server/engine/median';
import { inTurn } from './measure';

export interface TrainBenchResult {
  bench: 'train';
  backend: string;
  model: string;
  parameters: number;
  batch: number;
  tokens: number;
  rank: number;
  rounds: number;
  torch_threads: number;
  /** Threads sharing our side's batch (training.workers; 1 on a GPU backend). */
  ours_threads: number;
  /** What ran on the torch side: implementation, device, package versions, adapter size. */
  torch: TorchInfo;
  checkpointing: boolean;
  /** Trainable parameters on our side; the torch side's are in `torch.trainable`. */
  ours_trainable: number;
  ours_median_s: number;
  torch_median_s: number;
  ours_tokens_per_s: number;
  torch_tokens_per_s: number;
  ours_over_torch: number;
}

export interface TorchOptions {
  /** reference: scripts/reference's Llama (Debian's python3-torch); peft: transformers + PEFT. */
  impl: 'reference' | 'peft';
  python: string;
  device: string;
  threads: number;
}

interface TorchInfo {
  impl: string;
  device: string;
  trainable: number;
  torch: string;
  transformers?: string;
  peft?: string;
}

async function oursSteps(
  model: CausalLM,
  modelDir: string,
  options: WorkloadOptions & { steps: number; threads: number },
): Promise<{ trainable: number; seconds: number[] }> {
  const workload = new TrainingWorkload(model, options);
  if (options.threads > 1) await workload.shareWith(options.threads - 1, modelDir);
  await workload.step(0);
  const seconds = (await workload.timedSteps(1, options.steps)).ms.map((ms) => ms / 1000);
  const { trainable } = workload;
  await workload.dispose();
  return { trainable, seconds };
}

async function torchSteps(
  modelDir: string,
  torch: TorchOptions,
  options: WorkloadOptions & { steps: number },
): Promise<{ info: TorchInfo; seconds: number[] }> {
  const { stdout } = await promisify(execFile)(
    torch.python,
    [join(__dirname, '..', 'bench', 'torch_train.py'), '--model', modelDir, '--batch', String(options.batch), '--tokens', String(options.tokens),
      '--steps', String(options.steps), '--rank', String(options.rank), '--targets', TARGETS.join(','), '--threads', String(torch.threads),
      '--impl', torch.impl, '--device', torch.device, ...(options.checkpointing ? ['--checkpointing'] : [])],
    { maxBuffer: 1 << 20 },
  );
  const [first, ...steps] = stdout.trim().split('\n');
  return { info: JSON.parse(first!) as TorchInfo, seconds: steps.map((line) => (JSON.parse(line) as { seconds: number }).seconds) };
}

export async function benchTrain(
  choice: BackendChoice,
  options: WorkloadOptions & { model: 'tiny' | '100m'; rounds: number; steps: number; workers: number; torch: TorchOptions },
): Promise<TrainBenchResult> {
  const threads = ['wasm', 'cpu'].includes(choice.backend) ? Math.min(options.workers, options.batch) : 1;
  return withBenchModel(options.model === 'tiny' ? join(__dirname, '..', 'examples', 'tiny-model') : '100m', async (modelDir) => {
    const model = await CausalLM.load(modelDir);
    const tokens = Math.min(options.tokens, model.config.maxPositions);
    const ours: number[] = [];
    const torch: number[] = [];
    let torchInfo: TorchInfo | undefined;
    let oursTrainable = 0;
    for (let round = 0; round < options.rounds; round++) {
      for (const side of inTurn(['ours', 'torch'] as const, round)) {
        if (side === 'ours') {
          const run = await oursSteps(model, modelDir, { ...options, tokens, threads });
          ours.push(...run.seconds);
          oursTrainable = run.trainable;
        } else {
          const run = await torchSteps(modelDir, options.torch, { ...options, tokens });
          torch.push(...run.seconds);
          torchInfo = run.info;
        }
      }
    }
    const parameters = model.parameterCount;
    model.dispose();
    const [o, t] = [median(ours), median(torch)];
    const perStep = options.batch * tokens;
    return {
      bench: 'train', backend: choice.backend, model: options.model === 'tiny' ? 'examples/tiny-model' : 'random Llama ~100M', parameters,
      batch: options.batch, tokens, rank: options.rank, rounds: options.rounds, torch_threads: options.torch.threads, ours_threads: threads, torch: torchInfo!, checkpointing: options.checkpointing,
      ours_trainable: oursTrainable, ours_median_s: Number(o.toFixed(3)), torch_median_s: Number(t.toFixed(3)),
      ours_tokens_per_s: Math.round(perStep / o), torch_tokens_per_s: Math.round(perStep / t), ours_over_torch: Number((t / o).toFixed(3)),
    };
  });
}
