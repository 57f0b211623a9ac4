// `moslora demo` (`npm run demo`): the main job on the embedded default. LoRA and MoSLoRA train on
// the tiny shipped model and task with the same seed, side by side in one process; then the
// MoSLoRA adapter is merged into the base model and the merge is checked. Everything goes under
// runs/demo-<time>/.
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { Command } from 'commander';
import type { BackendPreference } from '../../protocol/backends';
import { loadConfigFile } from '../config/load';
import { loadAdapter } from '../engine/adapter-files';
import { choiceExamples, readRecords } from '../engine/data';
import { mergedLogitDifference, mergeIntoModel } from '../engine/merge';
import { runTrainingJob } from '../engine/session';
import { localScorer } from '../engine/parallel';
import { choiceAccuracy } from '../engine/train';
import { CausalLM } from '../models/model';
import { readModelLayout } from '../models/modules';
import { ModelTokenizer } from '../models/tokenizer';
import { describeChoice, startBackend } from '../runtime';
import { backendOption } from './options';
import { progressReporter } from './progress';
import type { TrainSummary } from '../../protocol/records';

/** The repository's examples/ folder, found upwards from this file (source or bundle). */
function examplesDir(): string {
  for (let dir = __dirname; dir !== dirname(dir); dir = dirname(dir)) {
    if (existsSync(join(dir, 'examples', 'tiny-model', 'config.json'))) return join(dir, 'examples');
  }
  throw new Error('cannot find examples/tiny-model: run the demo from a checkout of MoSLoRA Studio');
}

const percent = (x: number | null) => (x === null ? '-' : `${(x * 100).toFixed(1)}%`);
const fixed = (x: number | null) => (x === null ? '-' : x.toFixed(4));

export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description('LoRA vs MoSLoRA on the tiny shipped model and task (same seed), then merge MoSLoRA and check it')
    .option('--backend <name>', 'compute backend', backendOption, 'auto')
    .option('--runs <dir>', 'where to write the runs', 'runs')
    .action(async (options: { backend: BackendPreference; runs: string }) => {
      const started = performance.now();
      const examples = examplesDir();
      const choice = await startBackend(options.backend);
      console.log(describeChoice(choice));
      const root = resolve(options.runs, `demo-${new Date().toISOString().replace(/[:T]/g, '-').slice(0, 19)}`);

      // The base model on the task, before any training: the number the adapters must beat.
      const config = await loadConfigFile(join(examples, 'tiny-moslora.moslora.yaml'));
      const evalFile = config.data.eval!;
      const choices = choiceExamples(evalFile, await readRecords(evalFile))!;
      const [model, tokenizer] = await Promise.all([CausalLM.load(config.model), ModelTokenizer.load(config.model)]);
      const baseAccuracy = await choiceAccuracy(localScorer(model, new Map()), choices, tokenizer, config.data.max_length, config.training.batch_size);
      model.dispose();
      console.log(`base model ${config.model}: ${percent(baseAccuracy)} on ${choices.length} multiple-choice questions (chance ${percent(1 / choices[0]!.choices.length)})`);

      const results: [string, TrainSummary][] = [];
      for (const method of ['lora', 'moslora'] as const) {
        const summary = await runTrainingJob(join(examples, `tiny-${method}.moslora.yaml`), {
          backend: options.backend,
          runDir: join(root, method),
          onEvent: progressReporter({ isTTY: process.stderr.isTTY === true, write: (s) => process.stderr.write(s) }, method.padEnd(7)),
        });
        if (summary.state !== 'done') throw new Error(`${method}: ${summary.state}: ${summary.reason ?? ''}`);
        results.push([method, summary]);
      }

      console.log('');
      console.log('method    trainable params   train loss   eval loss   accuracy   median step');
      for (const [method, s] of results) {
        console.log(
          `${method.padEnd(9)} ${String(s.trainableParameters).padStart(16)}   ${fixed(s.finalLoss).padStart(10)}   ${fixed(s.evalLoss).padStart(9)}   ${percent(s.accuracy).padStart(8)}   ${((s.medianStepSeconds ?? 0) * 1000).toFixed(0).padStart(8)} ms`,
        );
      }
      const [lora, moslora] = [results[0]![1], results[1]![1]];
      console.log(`MoSLoRA / LoRA: ${(moslora.trainableParameters / lora.trainableParameters).toFixed(4)}× the trainable parameters, ${((moslora.medianStepSeconds ?? 0) / (lora.medianStepSeconds ?? 1)).toFixed(3)}× the step time`);

      const adapterDir = join(moslora.runDir, 'adapter');
      const { adapters } = await loadAdapter(adapterDir);
      const { layout } = await readModelLayout(config.model);
      const merged = await mergeIntoModel(config.model, join(moslora.runDir, 'merged'), adapters, layout.linears);
      const diff = await mergedLogitDifference(config.model, merged.outDir, adapters);
      console.log(`merged the MoSLoRA adapter into ${merged.outDir} (${merged.mergedModules.length} modules): max |logit difference| vs base + adapter ${diff.toExponential(2)}`);
      console.log(`everything is under ${root} (${((performance.now() - started) / 1000).toFixed(0)} s)`);
    });
}
