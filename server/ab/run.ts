// `moslora ab`: trains one config once per method and seed, each run a trainer process of its own
// (server/jobs/manager.ts), as many at once as the schedule says; then writes the report. An A/B
// that was interrupted continues from what is on disk: finished runs are kept, a stopped run
// resumes from its newest checkpoint, a run that never saved one starts again.
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { availableParallelism, freemem } from 'node:os';
import { basename, join, resolve } from 'node:path';
import type { BackendName, BackendPreference } from '../../protocol/backends';
import { loadConfigFile, type ResolvedConfig } from '../config/load';
import { estimateMemory, resolveCheckpointing, memoryLimit, PROCESS_BYTES } from '../engine/memory';
import { RunDirectory } from '../engine/runs';
import { configTrainableValues } from '../engine/train';
import { JobManager } from '../jobs/manager';
import { readModelLayout } from '../models/modules';
import { expectedWasmProducts } from '../runtime';
import { abFolderName, AB_NAME, MANIFEST_FILE, MANIFEST_VERSION, parseManifest, runFolderName } from './layout';
import { planSchedule, type Schedule } from './schedule';
import { writeReport, type WrittenReport } from './write';
import { abMethodConfig, type AbMethod } from '../../protocol/methods';
import type { JobInfo, JobUpdate } from '../../protocol/editor';
import type { AbManifest } from '../../protocol/records';

export interface AbRequest {
  /** The config every run trains. */
  configPath: string;
  /** The first is the baseline. */
  methods: AbMethod[];
  /** Seeds per method: the config's training.seed and the ones after it. */
  seeds: number;
  /** The A/B's folder is <runs dir>/ab-<name>; default: the config's file name. */
  name?: string;
  /** Default: the config's output.runs_dir. */
  runsDir?: string;
  /** Default: the config's backend; `auto` is resolved once, when the A/B starts, and every run uses what it picked. */
  backend?: BackendPreference;
  /** Runs at once (CPU backends); auto: as schedule.ts decides. */
  parallel: number | 'auto';
  /** What `auto` picks here (started in this process only when the A/B is new and asks for auto). */
  resolveAuto: () => Promise<BackendName>;
  /** The trainer process's entry (dist/trainer.js) and its Node options. */
  trainer: { module: string; execArgv?: string[] };
  signal?: AbortSignal;
  onEvent?: (event: AbEvent) => void;
}

/** What happens to a run: train it from the start, resume it, or keep it as it ended. */
export type RunAction = 'train' | 'resume' | 'restart' | 'done' | 'failed';

export interface PlannedRun {
  method: AbMethod;
  seed: number;
  /** The run folder, absolute. */
  runDir: string;
  action: RunAction;
  /** For resume: the step of its newest checkpoint; for failed: why. */
  note?: string;
}

export type AbEvent =
  | { type: 'plan'; abDir: string; manifest: AbManifest; schedule: Schedule; runs: PlannedRun[] }
  | { type: 'run'; run: PlannedRun; update: JobUpdate }
  | { type: 'stopping' };

export interface AbOutcome extends WrittenReport {
  abDir: string;
  /** Runs this call trained to the end, resumed ones included. */
  trained: number;
  /** Runs that did not finish this time: cancelled, or their trainer failed (with its message). */
  unfinished: { method: string; seed: number; state: string; message?: string }[];
  cancelled: boolean;
}

/** <runs dir>/ab-<name>: the runs dir given, else the config's output.runs_dir; the name given, else the config's file name. */
export function abDirFor(config: ResolvedConfig, name: string | undefined, runsDir: string | undefined): string {
  const chosen = name ?? basename(config.configPath).replace(/\.moslora\.(ya?ml|json)$/, '').replace(/[^A-Za-z0-9._-]/g, '-');
  if (!AB_NAME.test(chosen)) throw new Error(`--name "${chosen}": letters, digits, ".", "_" and "-" only`);
  return join(resolve(runsDir ?? config.output.runs_dir), abFolderName(chosen));
}

/** The first `count` seeds of an A/B: the config's own seed and the ones after it. */
function seedList(config: ResolvedConfig, count: number): number[] {
  return Array.from({ length: count }, (_, i) => config.training.seed + i);
}

/**
 * The A/B's manifest: a new one, or the one on disk with the methods and seeds asked for added
 * (its runs stay). Refused when the config's text changed since the A/B started.
 */
async function openManifest(abDir: string, request: AbRequest, config: ResolvedConfig, configText: string): Promise<AbManifest> {
  const file = join(abDir, MANIFEST_FILE);
  const sha = createHash('sha256').update(configText).digest('hex');
  const seeds = seedList(config, request.seeds);
  let manifest: AbManifest;
  if (existsSync(file)) {
    const old = parseManifest(await readFile(file, 'utf8'), file);
    if (old.configSha256 !== sha) {
      throw new Error(
        `${file}: this A/B trained ${old.config} when its text was different (SHA-256 ${old.configSha256.slice(0, 12)}…, now ${sha.slice(0, 12)}…); ` +
          `runs of two texts do not compare. Restore the config, or give a new --name for a new A/B`,
      );
    }
    const backend = request.backend ?? config.backend;
    if (backend !== 'auto' && backend !== old.backend) {
      throw new Error(`${file}: this A/B's runs train on ${old.backend}, not ${backend}: one A/B, one backend. Leave out --backend, or give a new --name`);
    }
    manifest = {
      ...old,
      config: config.configPath,
      methods: [...request.methods, ...old.methods.filter((m) => !request.methods.includes(m))],
      seeds: [...new Set([...old.seeds, ...seeds])].sort((a, b) => a - b),
    };
  } else {
    const preference = request.backend ?? config.backend;
    manifest = {
      version: MANIFEST_VERSION,
      name: basename(abDir).replace(/^ab-/, ''),
      config: config.configPath,
      configSha256: sha,
      methods: request.methods,
      seeds,
      backend: preference === 'auto' ? await request.resolveAuto() : preference,
      schedule: { atOnce: 1, coresPerRun: 1 },
      runs: [],
      report: 'report.md',
      figures: [],
    };
  }
  const runs = manifest.methods.flatMap((method) => manifest.seeds.map((seed) => ({ method, seed, dir: runFolderName(method, seed) })));
  return { ...manifest, runs };
}

/** What each run of the manifest needs, from its folder: nothing (done, failed), a resume, a fresh start. */
export function planRuns(abDir: string, manifest: AbManifest): Promise<PlannedRun[]> {
  return Promise.all(manifest.runs.map((entry) => planRun(abDir, entry)));
}

async function planRun(abDir: string, entry: AbManifest['runs'][number]): Promise<PlannedRun> {
  const runDir = join(abDir, entry.dir);
  const base = { method: entry.method, seed: entry.seed, runDir };
  if (!existsSync(runDir)) return { ...base, action: 'train' };
  const run = new RunDirectory(runDir);
  const summary = await run.readSummary();
  if (summary?.state === 'done') return { ...base, action: 'done' };
  if (summary?.state === 'failed') {
    // a run stops as failed on a non-finite loss: the same seed fails the same way again
    return { ...base, action: 'failed', note: typeof summary.reason === 'string' ? summary.reason : 'failed' };
  }
  const step = (await run.checkpointSteps()).at(-1);
  return step === undefined ? { ...base, action: 'restart', note: 'it saved no checkpoint' } : { ...base, action: 'resume', note: `step ${step}` };
}

/** One run's estimated peak (engine/memory.ts) in its own process, computing its batch in one thread. */
async function runBytes(config: ResolvedConfig, backend: BackendName): Promise<number | null> {
  const { config: model, layout } = await readModelLayout(config.model).catch(() => ({ config: null, layout: null }));
  if (!model || !layout) return null;
  const run = {
    hidden: model.hiddenSize, layers: model.numLayers, heads: model.numHeads, vocab: model.vocabSize,
    baseParameters: layout.parameters.reduce((n, { shape }) => n + shape.reduce((a, b) => a * b, 1), 0),
    products: expectedWasmProducts(), trainable: configTrainableValues(config, layout.linears),
    batch: config.training.batch_size, maxLength: config.data.max_length,
  };
  const checkpointing = resolveCheckpointing(config.training.gradient_checkpointing, run, memoryLimit(backend)).on;
  return estimateMemory({ ...run, checkpointing }).total + PROCESS_BYTES;
}

/** Holds the A/B's folder for this process: a second `moslora ab` on it refuses to start. */
async function lock(abDir: string): Promise<() => Promise<void>> {
  const file = join(abDir, '.lock');
  const holder = Number(await readFile(file, 'utf8').catch(() => ''));
  if (Number.isInteger(holder) && holder > 0 && holder !== process.pid) {
    let alive = true;
    try {
      process.kill(holder, 0);
    } catch {
      alive = false;
    }
    if (alive) throw new Error(`${abDir}: another moslora ab (process ${holder}) is training this A/B; wait for it, or stop it with Ctrl-C`);
  }
  await writeFile(file, String(process.pid));
  return () => rm(file, { force: true });
}

export async function runAb(request: AbRequest): Promise<AbOutcome> {
  const configPath = resolve(request.configPath);
  const configText = await readFile(configPath, 'utf8').catch((error: NodeJS.ErrnoException) => {
    throw new Error(`${configPath}: cannot read the config (${error.code ?? String(error)})`);
  });
  const config = await loadConfigFile(configPath);
  const abDir = abDirFor(config, request.name, request.runsDir);
  await mkdir(abDir, { recursive: true });
  const unlock = await lock(abDir);
  try {
    let manifest = await openManifest(abDir, request, config, configText);
    const runs = await planRuns(abDir, manifest);
    const todo = runs.filter((run) => run.action === 'train' || run.action === 'resume' || run.action === 'restart');
    const schedule = planSchedule({
      setting: request.parallel, runs: todo.length, backend: manifest.backend, mlas: expectedWasmProducts() === 'mlas',
      cores: availableParallelism(), freeBytes: freemem(), runBytes: await runBytes(config, manifest.backend),
    });
    if (todo.length > 0) manifest = { ...manifest, schedule: { atOnce: schedule.atOnce, coresPerRun: schedule.coresPerRun } };
    await writeFile(join(abDir, MANIFEST_FILE), `${JSON.stringify(manifest, null, 2)}\n`);
    const emit = request.onEvent ?? (() => {});
    emit({ type: 'plan', abDir, manifest, schedule, runs });
    const finished = await train(todo, manifest, schedule, request, emit);
    const written = await writeReport(abDir, `moslora ab ${abDir} --report-only`);
    return { abDir, ...written, ...finished };
  } finally {
    await unlock();
  }
}

async function train(todo: PlannedRun[], manifest: AbManifest, schedule: Schedule, request: AbRequest, emit: (event: AbEvent) => void): Promise<Pick<AbOutcome, 'trained' | 'unfinished' | 'cancelled'>> {
  const signal = request.signal;
  if (todo.length === 0 || signal?.aborted) return { trained: 0, unfinished: [], cancelled: signal?.aborted ?? false };
  for (const run of todo.filter((r) => r.action === 'restart')) await rm(run.runDir, { recursive: true, force: true });
  const byDir = new Map(todo.map((run) => [run.runDir, run]));
  const runOf = (job: JobInfo) => byDir.get(job.request.resumeRunDir ?? job.request.runDir ?? '');
  const ended = new Map<number, JobInfo>();
  return new Promise((resolveAll) => {
    const finish = () => {
      signal?.removeEventListener('abort', stop);
      const states = [...ended.values()];
      resolveAll({
        trained: states.filter((job) => job.state === 'done').length,
        unfinished: states
          .filter((job) => job.state !== 'done')
          .map((job) => ({ method: runOf(job)!.method, seed: runOf(job)!.seed, state: job.state, ...(job.message ? { message: job.message } : {}) })),
        cancelled: signal?.aborted ?? false,
      });
    };
    const jobs = new JobManager({
      trainerModule: request.trainer.module,
      ...(request.trainer.execArgv ? { execArgv: request.trainer.execArgv } : {}),
      maxRunning: schedule.atOnce,
      onUpdate: (update) => {
        const run = runOf(update.job);
        if (!run) return;
        emit({ type: 'run', run, update });
        const { state } = update.job;
        if ((state === 'done' || state === 'failed' || state === 'cancelled') && !ended.has(update.job.id)) {
          ended.set(update.job.id, update.job);
          if (ended.size === todo.length) finish();
        }
      },
    });
    const stop = () => {
      emit({ type: 'stopping' });
      for (const job of jobs.list()) if (!ended.has(job.id)) jobs.cancel(job.id);
    };
    signal?.addEventListener('abort', stop, { once: true });
    for (const run of todo) {
      jobs.start({
        configPath: manifest.config,
        ...(run.action === 'resume' ? { resumeRunDir: run.runDir } : { runDir: run.runDir }),
        backend: manifest.backend,
        overrides: { ...abMethodConfig(run.method), seed: run.seed, workers: 1 },
        cores: schedule.coresPerRun,
      });
    }
  });
}
