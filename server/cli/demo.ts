// `moslora demo` (`npm run demo`): the main job on the embedded default. The tiny shipped model is
// scored on the tiny task's held-out questions; LoRA and MoSLoRA train on the task with the same
// seed, side by side in one process, and are scored on them again; the base model and each adapter
// answer the first held-out questions as `moslora generate` does; then the MoSLoRA adapter is merged
// into the base model and the merge is checked. Everything goes under runs/demo-<time>/.
import { existsSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import type { Command } from 'commander';
import type { Adapter } from '../../kernels/adapter/linear';
import type { BackendPreference } from '../../protocol/backends';
import { describeQuantisationCost } from '../../protocol/cli';
import type { ResolvedConfig } from '../config/load';
import { loadConfigFile } from '../config/load';
import { loadAdapter } from '../engine/adapter-files';
import { choiceExamples, readRecords, type ChoiceExample } from '../engine/data';
import { checkMerge, mergeIntoModel } from '../engine/merge';
import { runTrainingJob } from '../engine/session';
import { localScorer } from '../engine/parallel';
import { choiceAccuracy } from '../engine/train';
import { generateText } from '../models/generate';
import { CausalLM } from '../models/model';
import { readModelLayout } from '../models/modules';
import { ModelTokenizer } from '../models/tokenizer';
import { describeChoice, startBackend } from '../runtime';
import { backendOption } from './options';
import { progressReporter } from './progress';
import type { TrainSummary } from '../../protocol/records';

/** The held-out questions the demo has the base model and each adapter answer in words. */
export const DEMO_QUESTIONS = 3;
/** Enough new tokens for any answer of the tiny task and its end-of-text token. */
const ANSWER_TOKENS = 8;

/** The repository's examples/ folder, found upwards from this file (source or bundle). */
export function examplesDir(): string {
  for (let dir = __dirname; dir !== dirname(dir); dir = dirname(dir)) {
    if (existsSync(join(dir, 'examples', 'tiny-model', 'config.json'))) return join(dir, 'examples');
  }
  throw new Error('cannot find examples/tiny-model: run the demo from a checkout of MoSLoRA Studio');
}

/** The config's multiple-choice eval set: what its accuracy is measured on. */
export async function heldOutQuestions(config: ResolvedConfig): Promise<ChoiceExample[]> {
  const file = config.data.eval;
  const choices = file === undefined ? null : choiceExamples(file, await readRecords(file));
  if (!choices) throw new Error(`${config.configPath}: data.eval must be a multiple-choice file ({"prompt", "choices", "answer"} lines) for the demo to measure accuracy`);
  return choices;
}

/** The base model's multiple-choice accuracy on the config's eval set, as training measures an adapter's. */
export async function baseAccuracy(config: ResolvedConfig, questions: ChoiceExample[]): Promise<number> {
  const [model, tokenizer] = await Promise.all([CausalLM.load(config.model), ModelTokenizer.load(config.model)]);
  try {
    return await choiceAccuracy(localScorer(model, new Map()), questions, tokenizer, config.data.max_length, config.training.batch_size);
  } finally {
    model.dispose();
  }
}

export interface Answer {
  text: string;
  /** The right choice, and nothing after it but the end of the text. */
  right: boolean;
}

/** Greedy answers to the questions, as `moslora generate MODEL [--adapter DIR] --prompt …` gives them. */
export async function greedyAnswers(modelDir: string, questions: ChoiceExample[], adapterDir?: string): Promise<Answer[]> {
  const [model, tokenizer] = await Promise.all([CausalLM.load(modelDir), ModelTokenizer.load(modelDir)]);
  try {
    const adapters: Map<string, Adapter> = adapterDir ? (await loadAdapter(adapterDir)).adapters : new Map();
    const answers: Answer[] = [];
    for (const q of questions) {
      const g = await generateText(model, tokenizer, q.prompt, { maxNewTokens: ANSWER_TOKENS, adapters });
      answers.push({ text: g.text, right: g.stoppedBy === 'eos' && g.text === q.choices[q.answer] });
    }
    return answers;
  } finally {
    model.dispose();
  }
}

const percent = (x: number | null) => (x === null ? '-' : `${(x * 100).toFixed(1)}%`);
const fixed = (x: number | null) => (x === null ? '-' : x.toFixed(4));
const shown = (a: Answer) => `${JSON.stringify(a.text)} ${a.right ? '✓' : '✗'}`;

export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description('LoRA vs MoSLoRA on the tiny shipped model and task (same seed), accuracy before and after, then merge MoSLoRA and check it')
    .option('--backend <name>', 'compute backend', backendOption, 'auto')
    .option('--runs <dir>', 'where to write the runs', 'runs')
    .action(async (options: { backend: BackendPreference; runs: string }) => {
      const started = performance.now();
      const examples = examplesDir();
      const choice = await startBackend(options.backend);
      console.log(describeChoice(choice));
      const root = resolve(options.runs, `demo-${new Date().toISOString().replace(/[:T]/g, '-').slice(0, 19)}`);

      // The base model on the task, before any training: the number the adapters must beat.
      const configPath = join(examples, 'tiny-moslora.moslora.yaml');
      const config = await loadConfigFile(configPath);
      const questions = await heldOutQuestions(config);
      const before = await baseAccuracy(config, questions);
      const chance = 1 / questions[0]!.choices.length;
      console.log(`base model ${config.model}: ${percent(before)} on ${questions.length} held-out multiple-choice questions (chance ${percent(chance)})`);
      const asked = questions.slice(0, DEMO_QUESTIONS);
      const baseAnswers = await greedyAnswers(config.model, asked);

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
      console.log(`accuracy on the ${questions.length} held-out questions: ${percent(before)} before training, ${results.map(([m, s]) => `${percent(s.accuracy)} with ${m}`).join(', ')} after ${lora.steps} steps (chance ${percent(chance)})`);
      console.log(`MoSLoRA / LoRA: ${(moslora.trainableParameters / lora.trainableParameters).toFixed(4)}× the trainable parameters, ${((moslora.medianStepSeconds ?? 0) / (lora.medianStepSeconds ?? 1)).toFixed(3)}× the step time`);

      // The first held-out questions in words: greedy, as `moslora generate` and Try Adapter answer them.
      const columns = [baseAnswers, ...(await Promise.all(results.map(([, s]) => greedyAnswers(config.model, asked, join(s.runDir, 'adapter')))))];
      const prompts = asked.map((q) => JSON.stringify(q.prompt));
      const widths = [Math.max(...prompts.map((p) => p.length)), ...columns.map((answers, i) => Math.max(i === 0 ? 'base model'.length : results[i - 1]![0].length, ...answers.map((a) => shown(a).length)))];
      console.log('');
      console.log(['held-out prompt'.padEnd(widths[0]!), 'base model'.padEnd(widths[1]!), ...results.map(([m], i) => m.padEnd(widths[i + 2]!))].join('   ').trimEnd());
      asked.forEach((_, row) => console.log([prompts[row]!.padEnd(widths[0]!), ...columns.map((answers, i) => shown(answers[row]!).padEnd(widths[i + 1]!))].join('   ').trimEnd()));
      console.log('');

      const adapterDir = join(moslora.runDir, 'adapter');
      const { adapters, settings } = await loadAdapter(adapterDir);
      const { layout } = await readModelLayout(config.model);
      const merged = await mergeIntoModel(config.model, join(moslora.runDir, 'merged'), adapters, layout.linears);
      const { maxAbsLogitDiff, quantisation } = await checkMerge(config.model, merged.outDir, adapters, settings.basePrecision);
      console.log(`merged the MoSLoRA adapter into ${merged.outDir} (${merged.mergedModules.length} modules): max |logit difference| vs base + adapter ${maxAbsLogitDiff.toExponential(2)}`);
      // the shipped configs train on a float32 base; one edited to load_in_4bit says what that cost
      if (quantisation.status === 'measured') console.log(describeQuantisationCost(quantisation));
      console.log(`everything is under ${root} (${((performance.now() - started) / 1000).toFixed(0)} s)`);
      console.log(`LoRA vs MoSLoRA from one seed each is an anecdote; for a comparison with intervals: moslora ab ${relative(process.cwd(), configPath) || configPath} --methods lora,moslora --seeds 5`);
    });
}
