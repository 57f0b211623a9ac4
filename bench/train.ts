// A full training step (forward, backward, AdamW) of MoSLoRA r=16 on q, k, v, up, down, batch
// 4 × 256 tokens: ours against PyTorch on the same checkpoint, adapter and batch, in one run,
// alternating the two sides. Models: the tiny shipped model, and a ~100M-parameter Llama-shaped
// model with random weights.
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { BackendChoice } from '../kernels/backend';
import { CausalLM } from '../server/models/model';
import { TARGETS, TrainingWorkload } from './workload';
import { LLAMA_100M, writeRandomLlama } from './random-llama';
import { median } from '../server/engine/median';

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
  checkpointing: boolean;
  ours_median_s: number;
  torch_median_s: number;
  ours_tokens_per_s: number;
  torch_tokens_per_s: number;
  ours_over_torch: number;
}

async function oursSteps(model: CausalLM, options: { batch: number; tokens: number; rank: number; steps: number; checkpointing: boolean }): Promise<number[]> {
  const workload = new TrainingWorkload(model, options);
  const times: number[] = [];
  for (let step = 0; step <= options.steps; step++) {
    const started = performance.now();
    await workload.step(step);
    if (step > 0) times.push((performance.now() - started) / 1000);
  }
  workload.dispose();
  return times;
}

async function torchSteps(modelDir: string, options: { batch: number; tokens: number; rank: number; steps: number; threads: number; checkpointing: boolean }): Promise<number[]> {
  const { stdout } = await promisify(execFile)(
    '/usr/bin/python3',
    [join(__dirname, '..', 'bench', 'torch_train.py'), '--model', modelDir, '--batch', String(options.batch), '--tokens', String(options.tokens),
      '--steps', String(options.steps), '--rank', String(options.rank), '--targets', TARGETS.join(','), '--threads', String(options.threads),
      ...(options.checkpointing ? ['--checkpointing'] : [])],
    { maxBuffer: 1 << 20 },
  );
  return stdout.trim().split('\n').map((line) => (JSON.parse(line) as { seconds: number }).seconds);
}

export async function benchTrain(
  choice: BackendChoice,
  options: { model: 'tiny' | '100m'; rounds: number; steps: number; batch: number; tokens: number; rank: number; threads: number; checkpointing: boolean },
): Promise<TrainBenchResult> {
  const scratch = await mkdtemp(join(tmpdir(), 'moslora-bench-train-'));
  try {
    const modelDir = options.model === 'tiny' ? join(__dirname, '..', 'examples', 'tiny-model') : join(scratch, 'llama-100m');
    if (options.model === '100m') await writeRandomLlama(modelDir, LLAMA_100M, 'F32');
    const model = await CausalLM.load(modelDir);
    const tokens = Math.min(options.tokens, model.config.maxPositions);
    const ours: number[] = [];
    const torch: number[] = [];
    for (let round = 0; round < options.rounds; round++) {
      const sides = round % 2 ? ['torch', 'ours'] : ['ours', 'torch'];
      for (const side of sides) {
        if (side === 'ours') ours.push(...(await oursSteps(model, { ...options, tokens })));
        else torch.push(...(await torchSteps(modelDir, { ...options, tokens })));
      }
    }
    const parameters = model.parameterCount;
    model.dispose();
    const [o, t] = [median(ours), median(torch)];
    const perStep = options.batch * tokens;
    return {
      bench: 'train', backend: choice.backend, model: options.model === 'tiny' ? 'examples/tiny-model' : 'random Llama ~100M', parameters,
      batch: options.batch, tokens, rank: options.rank, rounds: options.rounds, torch_threads: options.threads, checkpointing: options.checkpointing,
      ours_median_s: Number(o.toFixed(3)), torch_median_s: Number(t.toFixed(3)),
      ours_tokens_per_s: Math.round(perStep / o), torch_tokens_per_s: Math.round(perStep / t), ours_over_torch: Number((t / o).toFixed(3)),
    };
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}
