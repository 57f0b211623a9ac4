// The commands that load a model: train, inspect, generate, merge.
import { resolve } from 'node:path';
import { Command } from 'commander';
import type { Adapter } from '../../kernels/adapter/linear';
import { checkFiniteAdapter } from '../engine/adapter-checks';
import { recordedBaseModelDir } from '../engine/adapter-files';
import { checkMerge, mergeIntoModel } from '../engine/merge';
import { runTrainingJob } from '../engine/session';
import { generateText } from '../models/generate';
import { formatInspection, inspectModel } from '../models/inspect';
import { CausalLM } from '../models/model';
import { readModelLayout } from '../models/modules';
import { ModelTokenizer } from '../models/tokenizer';
import { startBackend } from '../runtime';
import { loadAdapterWithNotes } from './load-adapter';
import { backendOption, integer } from './options';
import { progressReporter } from './progress';
import { printJson, printResult } from './result';
import type { BackendPreference } from '../../protocol/backends';
import { describeQuantisationCost } from '../../protocol/cli';

function number(name: string, min: number, max: number) {
  return (value: string): number => {
    const parsed = Number(value);
    if (!Number.isFinite(parsed) || parsed < min || parsed > max) throw new Error(`${name} must be a number in [${min}, ${max}], got "${value}"`);
    return parsed;
  };
}

/** The base model folder an adapter was trained on: --model, else its adapter_config.json. */
function baseModelOf(adapterDir: string, recorded: string, override: string | undefined): string {
  if (override) return resolve(override);
  if (!recorded) throw new Error(`${adapterDir}: the adapter does not record its base model; pass --model <dir>`);
  return recordedBaseModelDir(adapterDir, recorded);
}

export function registerModelCommands(program: Command): void {
  program
    .command('train')
    .description('train an adapter from a config (*.moslora.yaml / *.moslora.json); Ctrl-C saves a checkpoint and stops')
    .argument('<config>', 'the adapter config')
    .option('--resume <runDir>', 'continue this run folder from its newest checkpoint')
    .option('--backend <name>', 'override the config\'s backend', backendOption)
    .action(async (config: string, options: { resume?: string; backend?: BackendPreference }) => {
      const controller = new AbortController();
      process.on('SIGINT', () => {
        if (controller.signal.aborted) process.exit(130);
        console.error('\nstopping: saving a checkpoint (Ctrl-C again to quit without it)');
        controller.abort();
      });
      const summary = await runTrainingJob(resolve(config), {
        ...(options.resume ? { resumeRunDir: resolve(options.resume) } : {}),
        ...(options.backend ? { backend: options.backend } : {}),
        signal: controller.signal,
        onEvent: progressReporter({ isTTY: process.stderr.isTTY === true, write: (s) => process.stderr.write(s) }, 'moslora'),
      });
      console.log(`run: ${summary.runDir}`);
      console.log(
        `${summary.state} after ${summary.steps}/${summary.totalSteps} steps on ${summary.backend}: train loss ${summary.finalLoss?.toFixed(4) ?? '-'}` +
          `, eval loss ${summary.evalLoss?.toFixed(4) ?? '-'}${summary.accuracy === null ? '' : `, accuracy ${(summary.accuracy * 100).toFixed(1)}%`}`,
      );
      if (summary.state === 'failed') process.exitCode = 1;
    });

  program
    .command('inspect')
    .description('list a Hugging Face model folder\'s architecture, parameters, dtypes and linear modules (headers only)')
    .argument('<model>', 'model folder')
    .option('--json', 'print JSON')
    .action(async (model: string, options: { json?: boolean }) => {
      const inspection = await inspectModel(resolve(model));
      if (options.json) printJson(inspection);
      else console.log(formatInspection(inspection));
    });

  program
    .command('generate')
    .description('try a model, with or without an adapter, on a prompt')
    .argument('<model>', 'model folder')
    .requiredOption('--prompt <text>', 'the prompt')
    .option('--adapter <dir>', 'adapter folder (native or PEFT; safetensors or torch.save\'s .bin)')
    .option('--max-new-tokens <n>', 'tokens to generate at most', integer('--max-new-tokens', 1), 64)
    .option('--temperature <t>', '0 = greedy', number('--temperature', 0, 10), 0)
    .option('--top-p <p>', 'nucleus sampling', number('--top-p', 0, 1), 1)
    .option('--seed <n>', 'sampling seed', integer('--seed', 0), 0)
    .option('--chat', 'wrap the prompt in the model\'s chat template')
    .option('--backend <name>', 'compute backend', backendOption, 'auto')
    .option('--json', 'print JSON {text, tokens, tokenIds, stoppedBy}')
    .action(async (model: string, options: { prompt: string; adapter?: string; maxNewTokens: number; temperature: number; topP: number; seed: number; chat?: boolean; backend: BackendPreference; json?: boolean }) => {
      const dir = resolve(model);
      const tokenizer = await ModelTokenizer.load(dir);
      await startBackend(options.backend);
      const lm = await CausalLM.load(dir);
      const adapters: Map<string, Adapter> = options.adapter ? (await loadAdapterWithNotes(options.adapter)).adapters : new Map();
      if (options.adapter) await checkFiniteAdapter(resolve(options.adapter), adapters);
      const text = options.chat ? tokenizer.applyChatTemplate([{ role: 'user', content: options.prompt }], true) : options.prompt;
      const result = await generateText(lm, tokenizer, text, { maxNewTokens: options.maxNewTokens, temperature: options.temperature, topP: options.topP, seed: options.seed, adapters });
      if (options.json) printResult('generate', { text: result.text, tokens: result.tokens.length, tokenIds: result.tokens, stoppedBy: result.stoppedBy });
      else console.log(`${options.prompt}${result.text}`);
    });

  program
    .command('merge')
    .description('merge an adapter into its base model: a full model folder in the base\'s layout and dtype, then check it, and measure what a quantised base (load_in_4bit, …) cost')
    .argument('<adapter>', 'adapter folder, e.g. runs/NAME/adapter')
    .requiredOption('--out <dir>', 'output folder for the merged model')
    .option('--model <dir>', 'base model folder (default: the one the adapter records)')
    .option('--force', 'replace --out if it is a folder moslora wrote (an earlier merge)')
    .option('--backend <name>', 'compute backend', backendOption, 'auto')
    .option('--json', 'print JSON {outDir, mergedModules, maxAbsLogitDiff, quantisation}')
    .action(async (adapterDir: string, options: { out: string; model?: string; force?: boolean; backend: BackendPreference; json?: boolean }) => {
      await startBackend(options.backend);
      const { settings, adapters } = await loadAdapterWithNotes(adapterDir);
      await checkFiniteAdapter(resolve(adapterDir), adapters);
      const base = baseModelOf(adapterDir, settings.baseModel, options.model);
      const { layout } = await readModelLayout(base);
      const result = await mergeIntoModel(base, resolve(options.out), adapters, layout.linears, {
        ...(options.force ? { overwrite: true } : {}),
        inputs: [{ what: 'adapter', path: resolve(adapterDir) }],
        onProgress: (p) => console.error(`merge: shard ${p.shardIndex}/${p.shards} (${p.shard}), ${p.mergedModules} modules merged`),
      });
      const { maxAbsLogitDiff, quantisation } = await checkMerge(base, result.outDir, adapters, settings.basePrecision);
      const report = { outDir: result.outDir, mergedModules: result.mergedModules.length, maxAbsLogitDiff, quantisation };
      if (options.json) printResult('merge', report);
      else {
        console.log(`merged ${report.mergedModules} modules into ${report.outDir}; max |logit difference| vs base + adapter on a fixed batch: ${maxAbsLogitDiff.toExponential(2)}`);
        console.log(describeQuantisationCost(quantisation));
      }
    });
}
