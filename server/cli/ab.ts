// `moslora ab CONFIG --methods lora,moslora --seeds N`: the config trained once per method and
// seed, then a report of the paired differences (server/ab/). Run it again to continue an A/B
// that was stopped; `--report-only` rebuilds the report from the runs on disk.
import { existsSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { InvalidArgumentError, Option, type Command } from 'commander';
import { loadConfigFile } from '../config/load';
import { MANIFEST_FILE } from '../ab/layout';
import { methodName, type AbReport } from '../ab/report';
import { abDirFor, runAb, type AbEvent, type AbOutcome, type AbRequest, type PlannedRun } from '../ab/run';
import { writeReport, type WrittenReport } from '../ab/write';
import { abProgressTracker, PROGRESS_PREFIX } from '../ab/progress';
import { describeChoice, startBackend } from '../runtime';
import { backendOption, integer } from './options';
import { AB_METHODS, type AbMethod } from '../../protocol/methods';

function methodList(value: string): AbMethod[] {
  const methods = value.split(',').map((part) => part.trim()).filter(Boolean);
  const unknown = methods.filter((m) => !(AB_METHODS as readonly string[]).includes(m));
  if (unknown.length) throw new InvalidArgumentError(`unknown method${unknown.length > 1 ? 's' : ''} ${unknown.map((m) => `"${m}"`).join(', ')}; allowed: ${AB_METHODS.join(', ')}`);
  if (new Set(methods).size !== methods.length) throw new InvalidArgumentError(`"${value}" names a method twice`);
  if (methods.length < 2) throw new InvalidArgumentError(`give two or more methods to compare, e.g. lora,moslora (got "${value}")`);
  return methods as AbMethod[];
}

function parallelOption(value: string): number | 'auto' {
  return value === 'auto' ? 'auto' : integer('--parallel', 1)(value);
}

const label = (run: { method: string; seed: number }) => `${run.method} seed ${run.seed}`;

function describePlan(run: PlannedRun): string {
  switch (run.action) {
    case 'done':
      return 'finished earlier: kept';
    case 'failed':
      return `failed earlier, not retried (the same seed fails the same way; delete its folder to try again): ${run.note}`;
    case 'resume':
      return `resumes from its checkpoint at ${run.note}`;
    case 'restart':
      return `starts again: ${run.note}`;
    default:
      return 'to train';
  }
}

/** Progress lines on stderr: the plan, then each run's start, its logged steps and evaluations, its end. */
function progressLines(write: (line: string) => void): (event: AbEvent) => void {
  const seenStates = new Map<string, Set<string>>();
  return (event) => {
    if (event.type === 'stopping') {
      write('stopping: each running run saves a checkpoint first (Ctrl-C again to quit at once; the runs still save theirs as they stop)');
      return;
    }
    if (event.type === 'plan') {
      const { manifest, schedule, runs } = event;
      const todo = runs.filter((run) => run.action === 'train' || run.action === 'resume' || run.action === 'restart').length;
      write(`A/B ${event.abDir}: ${manifest.methods.map(methodName).join(' vs ')}, seeds ${manifest.seeds.join(', ')}, on ${manifest.backend}`);
      for (const run of runs) write(`  ${label(run)}: ${describePlan(run)}`);
      if (todo) write(`training ${todo} run${todo > 1 ? 's' : ''}: ${schedule.reason}`);
      return;
    }
    const { run, update } = event;
    const { job } = update;
    // each state once: a run goes back and forth between training and saving at every checkpoint
    const seen = seenStates.get(run.runDir) ?? seenStates.set(run.runDir, new Set()).get(run.runDir)!;
    // a finished run's summary comes after its state
    const key = job.state === 'done' && job.summary ? 'summary' : job.state;
    if (!seen.has(key)) {
      seen.add(key);
      if (key === 'summary') {
        const s = job.summary!;
        write(`${label(run)}: done after ${s.steps} steps: train loss ${s.finalLoss?.toFixed(4) ?? '–'}, eval loss ${s.evalLoss?.toFixed(4) ?? '–'}${s.accuracy === null ? '' : `, accuracy ${(s.accuracy * 100).toFixed(1)}%`}`);
      } else if (job.state === 'training') {
        write(`${label(run)}: training from step ${job.step}/${job.totalSteps}${job.message ? ` — ${job.message}` : ''}`);
      } else if (job.state === 'failed' || job.state === 'cancelled') {
        write(`${label(run)}: ${job.state} at step ${job.step}${job.message ? ` — ${job.message}` : ''}`);
      }
    }
    for (const record of update.metrics) {
      if (record.kind === 'train') write(`${label(run)} step ${record.step}/${job.totalSteps} loss ${Number(record.loss).toFixed(4)}`);
      else write(`${label(run)} eval at step ${record.step}: loss ${Number(record.eval_loss).toFixed(4)}${typeof record.accuracy === 'number' ? ` accuracy ${(record.accuracy * 100).toFixed(1)}%` : ''}`);
    }
  };
}

/** The report's numbers as `--json` prints them: everything but the curves, which are in the runs' metrics.jsonl. */
function reportJson(report: AbReport): object {
  return { ...report, runs: report.runs.map(({ trainCurve: _t, evalCurve: _e, ...run }) => run) };
}

function printResult(written: WrittenReport, options: { json?: boolean }, extra: Partial<AbOutcome> = {}): void {
  if (options.json) {
    const { abDir, trained, unfinished, cancelled } = extra;
    console.log(JSON.stringify({
      ...(abDir ? { abDir } : {}), reportFile: written.reportFile, figures: written.figures,
      ...(trained === undefined ? {} : { trained, unfinished, cancelled }),
      sentences: written.report.comparisons.map((c) => c.sentence), report: reportJson(written.report),
    }));
    return;
  }
  for (const comparison of written.report.comparisons) console.log(comparison.sentence);
  console.log(`report: ${written.reportFile}`);
}

/** What the command line sets of an A/B request, and how the command reports. */
type AbOptions = Pick<AbRequest, 'methods' | 'seeds' | 'name' | 'runsDir' | 'backend' | 'parallel'> & {
  reportOnly?: boolean;
  json?: boolean;
  progressJson?: boolean;
};

/** The A/B's folder a --report-only names: the folder itself, or the config and --name / --runs-dir. */
async function abDirOf(target: string, options: AbOptions): Promise<string> {
  const path = resolve(target);
  if (existsSync(join(path, MANIFEST_FILE))) return path;
  if (statSync(path, { throwIfNoEntry: false })?.isDirectory()) throw new Error(`${path} has no ${MANIFEST_FILE}: not an A/B folder (moslora ab makes <runs dir>/ab-<name>/); give that folder or the A/B's config`);
  return abDirFor(await loadConfigFile(path), options.name, options.runsDir);
}

export function registerAbCommand(program: Command): void {
  program
    .command('ab')
    .description('A/B test: train a config once per method and seed, then report the paired differences with 95% intervals; run it again to continue a stopped A/B')
    .argument('<config>', 'the config every run trains (only method, use_dora, training.seed and training.workers change); with --report-only also an A/B folder (ab-<name>)')
    .addOption(new Option('--methods <list>', `methods to compare, the baseline first (${AB_METHODS.join(', ')}; dora is LoRA with use_dora, +dora turns it on for a method, the others train with it off)`).argParser(methodList).default(['lora', 'moslora'], 'lora,moslora'))
    .option('--seeds <n>', 'seeds per method: the config\'s training.seed and the ones after it', integer('--seeds', 2), 3)
    .option('--name <name>', 'the A/B\'s folder is <runs dir>/ab-<name> (default: the config\'s file name)')
    .option('--runs-dir <dir>', 'where the A/B\'s folder goes (default: the config\'s output.runs_dir)')
    .option('--backend <name>', 'override the config\'s backend (auto is resolved once: every run uses what it picks)', backendOption)
    .option('--parallel <n>', 'runs at once on the CPU backends, or auto (as measured fastest here)', parallelOption, 'auto')
    .option('--report-only', 'rebuild report.md and its figures from the runs on disk; train nothing')
    .option('--json', 'print JSON {abDir, reportFile, figures, trained, unfinished, cancelled, sentences, report} as the last line')
    .option('--progress-json', `also write each change of progress on stderr as "${PROGRESS_PREFIX.trim()} {done, total, current}" (for the editor)`)
    .action(async (target: string, options: AbOptions) => {
      if (options.reportOnly) {
        const abDir = await abDirOf(target, options);
        printResult(await writeReport(abDir, `moslora ab ${abDir} --report-only`), options);
        return;
      }
      const trainer = join(__dirname, 'trainer.js');
      if (!existsSync(trainer)) throw new Error(`cannot find the trainer process's entry ${trainer}: run the built CLI (npm run build, then node dist/cli.js)`);
      const controller = new AbortController();
      process.on('SIGINT', () => {
        if (controller.signal.aborted) process.exit(130);
        controller.abort();
      });
      const write = (line: string) => process.stderr.write(`${line}\n`);
      const lines = progressLines(write);
      const progress = options.progressJson ? abProgressTracker() : null;
      const outcome = await runAb({
        configPath: target,
        methods: options.methods,
        seeds: options.seeds,
        ...(options.name ? { name: options.name } : {}),
        ...(options.runsDir ? { runsDir: options.runsDir } : {}),
        ...(options.backend ? { backend: options.backend } : {}),
        parallel: options.parallel,
        resolveAuto: async () => {
          const choice = await startBackend('auto');
          write(describeChoice(choice));
          return choice.backend;
        },
        trainer: { module: trainer },
        signal: controller.signal,
        onEvent: (event) => {
          lines(event);
          const changed = progress?.(event);
          if (changed) write(`${PROGRESS_PREFIX}${JSON.stringify(changed)}`);
        },
      });
      for (const run of outcome.unfinished) write(`${label(run)}: ${run.state}${run.message ? ` — ${run.message}` : ''}`);
      if (outcome.cancelled) write(`stopped; the report covers the runs that finished. Run the same command again to continue.`);
      printResult(outcome, options, outcome);
      if (outcome.cancelled) process.exitCode = 130;
      else if (outcome.unfinished.length) process.exitCode = 1;
    });
}
