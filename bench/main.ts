// `npm run bench -- <name>`: each benchmark prints one JSON line and a readable summary, and
// appends its JSON line (with date, host and command) to bench/results/<name>.jsonl.
import { appendFileSync, mkdirSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { BACKEND_PREFERENCES, type BackendPreference } from '../kernels/backend';
import { describeChoice, startBackend } from '../server/runtime';
import { benchKernels } from './kernels';
import { benchMerge } from './merge';
import { integer } from '../server/commands/options';

function record(name: string, result: object): void {
  const dir = join(process.cwd(), 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const line = {
    ...result,
    date: new Date().toISOString(),
    host: `${cpus().length}× ${cpus()[0]?.model ?? 'unknown CPU'}`,
    command: `npm run bench -- ${process.argv.slice(2).join(' ')}`,
  };
  appendFileSync(join(dir, `${name}.jsonl`), `${JSON.stringify(line)}\n`);
}

const program = new Command('bench').showHelpAfterError();

program
  .command('kernels')
  .description('forward+backward of one adapted layer: MoSLoRA vs LoRA step time (goal: ratio ≤ 1.03)')
  .option('--backend <name>', BACKEND_PREFERENCES.join(' | '), 'auto')
  .option('--dim <n>', 'layer width', integer('--dim', 1), 1024)
  .option('--rank <n>', 'adapter rank', integer('--rank', 1), 16)
  .option('--tokens <n>', 'tokens per step', integer('--tokens', 1), 512)
  .option('--rounds <n>', 'timed rounds per method', integer('--rounds', 1), 40)
  .option('--warmup <n>', 'untimed rounds first', integer('--warmup', 0), 5)
  .action(async (options: { backend: string; dim: number; rank: number; tokens: number; rounds: number; warmup: number }) => {
    const choice = await startBackend(options.backend as BackendPreference);
    console.error(describeChoice(choice));
    const result = await benchKernels(choice, options);
    console.log(JSON.stringify(result));
    console.error(
      `lora ${result.lora_median_ms} ms · moslora ${result.moslora_median_ms} ms · moslora/lora ${result.moslora_over_lora} (median of ${result.rounds}, alternating)`,
    );
    record('kernels', result);
  });

program
  .command('merge')
  .description('merge an adapter into a ~100M Llama-shaped model vs only reading and writing its files')
  .option('--backend <name>', BACKEND_PREFERENCES.join(' | '), 'auto')
  .option('--rounds <n>', 'timed rounds of each', integer('--rounds', 1), 3)
  .option('--rank <n>', 'adapter rank', integer('--rank', 1), 16)
  .option('--dtype <dtype>', 'checkpoint dtype: BF16 | F16 | F32', 'BF16')
  .action(async (options: { backend: string; rounds: number; rank: number; dtype: string }) => {
    if (!['BF16', 'F16', 'F32'].includes(options.dtype)) throw new Error(`--dtype must be BF16, F16 or F32, got ${options.dtype}`);
    const choice = await startBackend(options.backend as BackendPreference);
    console.error(describeChoice(choice));
    const result = await benchMerge(choice, { rounds: options.rounds, rank: options.rank, dtype: options.dtype as 'BF16' | 'F16' | 'F32' });
    console.log(JSON.stringify(result));
    console.error(`${(result.parameters / 1e6).toFixed(0)}M parameters, ${result.dtype}: read+write ${result.copy_median_s} s · merge ${result.merge_median_s} s · merge/copy ${result.merge_over_copy} (median of ${result.rounds}, alternating)`);
    record('merge', result);
  });

program.parseAsync().catch((error: unknown) => {
  console.error(`bench: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
