import { Command } from 'commander';
import { BACKEND_PREFERENCES, BACKENDS, type BackendPreference } from '../../protocol/backends';
import { registerAbCommand } from './ab';
import { registerAdapterCommands } from './adapters';
import { registerDemo } from './demo';
import { registerModelCommands } from './model';
import { backendOption, integer } from './options';
import { printResult } from './result';
import { runKernelDemo } from './kernel-demo';
import { describeChoice, startBackend } from '../runtime';
import type { EnvironmentReport } from '../../protocol/cli';

const program = new Command('moslora').description('MoSLoRA Studio: fine-tune language models with MoSLoRA').showHelpAfterError();

program
  .command('kernel-demo')
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
    printResult('backends', report);
  });

registerDemo(program);
registerModelCommands(program);
registerAdapterCommands(program);
registerAbCommand(program);

program.parseAsync().catch((error: unknown) => {
  console.error(`moslora: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
