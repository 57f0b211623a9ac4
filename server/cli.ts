import { Command, InvalidArgumentError } from 'commander';
import { BACKEND_PREFERENCES, BACKENDS, type BackendPreference } from '../kernels/backend';
import { runKernelDemo } from './demo';
import type { EnvironmentReport } from './protocol';
import { describeChoice, startBackend } from './runtime';

function integer(name: string, min: number) {
  return (value: string): number => {
    const parsed = Number(value);
    if (!Number.isInteger(parsed) || parsed < min) throw new InvalidArgumentError(`${name} must be an integer ≥ ${min}, got "${value}"`);
    return parsed;
  };
}

function backendOption(value: string): BackendPreference {
  if (!(BACKEND_PREFERENCES as readonly string[]).includes(value)) {
    throw new InvalidArgumentError(`allowed: ${BACKEND_PREFERENCES.join(', ')}`);
  }
  return value as BackendPreference;
}

const program = new Command('moslora').description('MoSLoRA Studio: fine-tune language models with MoSLoRA').showHelpAfterError();

program
  .command('demo')
  .description('LoRA vs MoSLoRA on one adapted layer: train side by side, then merge and fold')
  .option('--backend <name>', `compute backend (${BACKEND_PREFERENCES.join(' | ')})`, backendOption, 'auto')
  .option('--steps <n>', 'Adam steps per method', integer('--steps', 1), 300)
  .option('--dim <n>', 'layer width', integer('--dim', 2), 256)
  .option('--rank <n>', 'adapter rank r', integer('--rank', 1), 8)
  .option('--seed <n>', 'random seed', integer('--seed', 0), 0)
  .action(async (options: { backend: BackendPreference; steps: number; dim: number; rank: number; seed: number }) => {
    const choice = await startBackend(options.backend);
    console.log(describeChoice(choice));
    await runKernelDemo({ ...options, log: (line) => console.log(line) });
  });

program
  .command('backends')
  .description("show which backend 'auto' picks here and why it skipped the others")
  .option('--json', 'print a JSON report (what the language server reads)')
  .action(async (options: { json?: boolean }) => {
    const auto = await startBackend('auto');
    if (!options.json) {
      console.log(describeChoice(auto));
      return;
    }
    const report: EnvironmentReport = { auto, backends: BACKENDS, node: process.version, platform: `${process.platform}-${process.arch}` };
    console.log(JSON.stringify(report));
  });

program.parseAsync().catch((error: unknown) => {
  console.error(`moslora: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
