// A run's folder, as ../shared/ARCHITECTURE.md lays it out:
//   runs/<name>/config.yaml          the resolved config that ran
//               metrics.jsonl        one JSON object per logged step (train and eval)
//               mixers.jsonl         mixer snapshots over time, for the heatmap scrubber
//               checkpoints/step-N/  adapter + optimizer + trainer state; written to a temp folder, renamed
//               adapter/ peft/ merged/
//               summary.json         what ran, on which backend, how long, final metrics
//               trainer.lock         while a trainer writes the folder: its pid, host and start time
// metrics.jsonl is the truth: anything streamed to a panel is also here, so nothing is lost.
// One trainer writes a run folder at a time: creating the folder is one mkdir, which only one of
// two simultaneous starts wins, and trainer.lock, created exclusively, keeps a second trainer
// (a resume of a run still training) out until the first has finished.
import { appendFile, mkdir, open, readdir, readFile, rename, rm, rmdir, stat, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import { stringify } from 'yaml';
import type { AdamWState } from './optim';
import { loadAdapter, saveAdapter, type AdapterSettings } from './adapter-files';
import { FileReadError, makeFolders, readRegularFile, readTextFile } from '../formats/files';
import { SafetensorsFile, writeSafetensors } from '../formats/safetensors';
import type { RunFolder } from '../../protocol/editor';
import type { MetricRecord, MixerSnapshot } from '../../protocol/records';
import type { Adapter } from '../../kernels/adapter/linear';


/** Where in the data the run stands, enough to continue exactly. */
export interface TrainerState {
  step: number;
  epoch: number;
  /** Batches of this epoch already consumed. */
  batchInEpoch: number;
  tokensSeen: number;
  elapsedSeconds: number;
}

export interface LoadedCheckpoint {
  dir: string;
  state: TrainerState;
  optimizer: AdamWState;
  adapters: Map<string, Adapter>;
}

const CHECKPOINTS = 'checkpoints';
const STEP_DIR = /^step-(\d+)$/;
const TEMPORARY_STEP_DIR = /^\.step-\d+\.tmp-(\d+)$/;
export const LOCK_FILE = 'trainer.lock';
/** What a trainer writes into a run folder (besides checkpoints/), and all that discard removes. */
const RUN_FILES = ['config.yaml', 'metrics.jsonl', 'mixers.jsonl', 'summary.json'];
/** Names a new run may take when its default one is taken: NAME, NAME-2, … NAME-100. */
const MAX_NAME_TRIES = 100;

/** Who holds a run folder's lock. */
interface LockHolder {
  pid: number;
  host: string;
  started: string;
}

const FILE_PROBLEMS: Record<string, string> = {
  ENOSPC: 'the disk is full (ENOSPC)',
  EDQUOT: 'the disk quota is used up (EDQUOT)',
  EROFS: 'the file system is read-only (EROFS)',
  EACCES: 'permission denied (EACCES)',
  EPERM: 'not permitted (EPERM)',
  ENOENT: 'a folder on its path does not exist and cannot be made there (ENOENT)',
  ENOTDIR: 'a file stands where a folder on its path should be (ENOTDIR)',
};

/** A file operation on a run folder that failed, with the path and what was being done: Node's own message names neither for a failed write. */
export class RunFileError extends Error {
  constructor(action: string, path: string, error: unknown, fix?: string) {
    const { code, message } = error as NodeJS.ErrnoException;
    super(`cannot ${action} ${path}: ${(code && FILE_PROBLEMS[code]) ?? message}${fix ? `; ${fix}` : ''}`, { cause: error });
    this.name = 'RunFileError';
  }
}

function fileError(error: unknown, action: string, path: string, fix?: string): RunFileError {
  return new RunFileError(action, path, error, fix);
}

/** True for an error a file operation raised (an errno code and the system call), or a RunFileError. */
export function isFileError(error: unknown): boolean {
  return error instanceof RunFileError || (error instanceof Error && typeof (error as NodeJS.ErrnoException).syscall === 'string');
}

async function attempt<T>(action: string, path: string, operation: () => Promise<T>, fix?: string): Promise<T> {
  try {
    return await operation();
  } catch (error) {
    throw isFileError(error) ? fileError(error, action, path, fix) : error;
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export class RunDirectory {
  private lockHeld = false;
  private madeFolder = false;
  /** Set when this trainer took over the lock of one that is no longer running. */
  lockNote?: string;

  constructor(readonly dir: string) {}

  /**
   * A new run folder, made and locked by this trainer. An existing folder is taken only when it
   * is empty; with `unique` (a run name the config does not fix) a taken name gets a suffix,
   * NAME-2, NAME-3, …, so that runs started at once each get their own folder.
   */
  static async create(dir: string, resolvedConfig: object, options: { unique?: boolean } = {}): Promise<RunDirectory> {
    await attempt('create the runs folder', dirname(dir), () => makeFolders(dirname(dir)), 'choose a writable output.runs_dir');
    for (let n = 1; n <= (options.unique ? MAX_NAME_TRIES : 1); n++) {
      const run = new RunDirectory(n === 1 ? dir : `${dir}-${n}`);
      try {
        await mkdir(run.dir);
        run.madeFolder = true;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw fileError(error, 'create the run folder', run.dir, 'choose a writable output.runs_dir');
        if (options.unique) continue;
        if ((await attempt('read', run.dir, () => readdir(run.dir))).length > 0) throw await run.takenError();
      }
      if (!(await run.lock({ waitIfHeld: !options.unique }))) continue;
      const others = (await readdir(run.dir)).filter((name) => name !== LOCK_FILE);
      if (others.length > 0) {
        await run.release();
        throw await run.takenError();
      }
      await attempt('write', join(run.dir, 'config.yaml'), async () => {
        await mkdir(join(run.dir, CHECKPOINTS));
        await writeFile(join(run.dir, 'config.yaml'), stringify(resolvedConfig));
      });
      return run;
    }
    throw new Error(`${dir}: ${MAX_NAME_TRIES} runs of this name exist already; set output.run_name or clear ${dirname(dir)}`);
  }

  /** An existing run folder, locked by this trainer to continue it; temporary checkpoints left by a crashed trainer are removed. */
  static async open(dir: string): Promise<RunDirectory> {
    const info = await stat(dir).catch(() => null);
    if (!info?.isDirectory()) throw new Error(`${dir}: no run folder to resume there${info ? ' (it is a file)' : ''}`);
    const run = new RunDirectory(dir);
    await run.lock({ waitIfHeld: true });
    try {
      await run.removeTemporaries();
    } catch (error) {
      await run.release();
      throw error;
    }
    return run;
  }

  private get lockFile(): string {
    return join(this.dir, LOCK_FILE);
  }

  /**
   * Creates trainer.lock exclusively. A lock of a process that no longer runs on this host is
   * taken over, and said so in lockNote. A live holder: false, or with waitIfHeld an error naming it.
   */
  private async lock(options: { waitIfHeld: boolean }): Promise<boolean> {
    const mine: LockHolder = { pid: process.pid, host: hostname(), started: new Date().toISOString() };
    for (let tries = 0; tries < 3; tries++) {
      try {
        const handle = await open(this.lockFile, 'wx');
        try {
          await handle.writeFile(`${JSON.stringify(mine)}\n`);
        } finally {
          await handle.close();
        }
        this.lockHeld = true;
        return true;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw fileError(error, 'lock the run folder', this.lockFile);
      }
      const holder = await this.lockHolder();
      if (holder === 'gone') continue;
      if (holder !== null && holder.host === mine.host && !isAlive(holder.pid)) {
        await rm(this.lockFile, { force: true });
        this.lockNote = `took over ${this.lockFile} from trainer ${holder.pid} (started ${holder.started}), which is no longer running`;
        continue;
      }
      if (!options.waitIfHeld) return false;
      const who = holder === null ? 'a trainer whose lock cannot be read' : `trainer ${holder.pid} on ${holder.host}, started ${holder.started}`;
      throw new Error(`${this.dir} is being written by ${who}; wait for it to finish or stop it first (if no trainer runs any more, delete ${this.lockFile})`);
    }
    throw new Error(`${this.dir}: cannot take ${this.lockFile}; another trainer keeps taking it`);
  }

  private async lockHolder(): Promise<LockHolder | null | 'gone'> {
    let text: string;
    try {
      text = await readFile(this.lockFile, 'utf8');
    } catch {
      return 'gone';
    }
    try {
      const holder = JSON.parse(text) as Partial<LockHolder>;
      return Number.isInteger(holder.pid) && typeof holder.host === 'string' ? { pid: holder.pid!, host: holder.host, started: String(holder.started) } : null;
    } catch {
      return null;
    }
  }

  /** Removes this trainer's lock (nothing if it holds none). */
  async release(): Promise<void> {
    if (!this.lockHeld) return;
    this.lockHeld = false;
    const holder = await this.lockHolder();
    if (holder !== 'gone' && holder?.pid === process.pid) await rm(this.lockFile, { force: true });
  }

  /**
   * Removes what this trainer wrote into a new run that ended before its first step (a refusal
   * after the folder was made), so that the same run name can start again; the folder too when
   * this trainer made it.
   */
  async discard(): Promise<void> {
    await Promise.all([...RUN_FILES.map((name) => rm(join(this.dir, name), { force: true })), rm(join(this.dir, CHECKPOINTS), { recursive: true, force: true })]);
    await this.release();
    if (this.madeFolder) await rmdir(this.dir).catch(() => undefined);
  }

  /** Why a fresh run cannot start in this folder, and what to do. */
  private async takenError(): Promise<Error> {
    const checkpoints = await this.checkpointSteps();
    if (checkpoints.length > 0) return new Error(`${this.dir} already holds a run; resume it (--resume ${this.dir}) or choose another output.run_name`);
    const summary = await this.readSummary();
    const ended = summary ? ` (${String(summary.state)}${summary.reason ? `: ${String(summary.reason)}` : ''})` : '';
    return new Error(`${this.dir} already holds a run that stopped before its first checkpoint${ended}; delete the folder to start it again, or choose another output.run_name`);
  }

  /** Temporary checkpoint folders of other processes: left by a trainer killed mid-write (the lock says none writes here now). */
  private async removeTemporaries(): Promise<void> {
    const root = join(this.dir, CHECKPOINTS);
    const names = await readdir(root).catch(() => []);
    const stale = names.filter((name) => {
      const match = TEMPORARY_STEP_DIR.exec(name);
      return match !== null && Number(match[1]) !== process.pid;
    });
    await Promise.all(stale.map((name) => attempt('remove', join(root, name), () => rm(join(root, name), { recursive: true, force: true }))));
  }

  get metricsFile(): string {
    return join(this.dir, 'metrics.jsonl');
  }

  get mixersFile(): string {
    return join(this.dir, 'mixers.jsonl');
  }

  async appendMetrics(record: MetricRecord): Promise<void> {
    await attempt('append to', this.metricsFile, () => appendFile(this.metricsFile, `${JSON.stringify(record)}\n`));
  }

  async appendMixers(snapshots: MixerSnapshot[]): Promise<void> {
    if (snapshots.length) await attempt('append to', this.mixersFile, () => appendFile(this.mixersFile, snapshots.map((s) => `${JSON.stringify(s)}\n`).join('')));
  }

  /** Every metric record, skipping a torn last line (a crash mid-write). */
  async readMetrics(): Promise<MetricRecord[]> {
    return readJsonLines<MetricRecord>(this.metricsFile);
  }

  async readMixers(): Promise<MixerSnapshot[]> {
    return readJsonLines<MixerSnapshot>(this.mixersFile);
  }

  /**
   * Saves a checkpoint atomically: written under a temporary name, then renamed to step-N, so a
   * crash never leaves a half checkpoint that resume would pick. Keeps the newest `keep`.
   */
  async saveCheckpoint(
    adapters: ReadonlyMap<string, Adapter>,
    settings: AdapterSettings,
    optimizer: AdamWState,
    state: TrainerState,
    keep: number,
  ): Promise<string> {
    const root = join(this.dir, CHECKPOINTS);
    const final = join(root, `step-${state.step}`);
    const temporary = join(root, `.step-${state.step}.tmp-${process.pid}`);
    try {
      await rm(temporary, { recursive: true, force: true });
      await saveAdapter(temporary, adapters, settings);
      await writeSafetensors(
        join(temporary, 'optimizer.safetensors'),
        Object.entries(optimizer.moments).flatMap(([name, { m, v, shape }]) => [
          { name: `${name}.exp_avg`, dtype: 'F32' as const, shape, data: m },
          { name: `${name}.exp_avg_sq`, dtype: 'F32' as const, shape, data: v },
        ]),
        { step: String(optimizer.step) },
      );
      await writeFile(join(temporary, 'trainer_state.json'), `${JSON.stringify(state, null, 2)}\n`);
      await rm(final, { recursive: true, force: true });
      await rename(temporary, final);
    } catch (error) {
      await rm(temporary, { recursive: true, force: true }).catch(() => undefined);
      throw isFileError(error) ? fileError(error, 'write the checkpoint', final) : error;
    }
    const steps = await this.checkpointSteps();
    await Promise.all(steps.slice(0, Math.max(0, steps.length - keep)).map((step) => rm(join(root, `step-${step}`), { recursive: true, force: true })));
    return final;
  }

  /** Complete checkpoints' steps, oldest first. */
  async checkpointSteps(): Promise<number[]> {
    let names: string[];
    try {
      names = await readdir(join(this.dir, CHECKPOINTS));
    } catch {
      return [];
    }
    return names
      .map((name) => STEP_DIR.exec(name))
      .filter((match): match is RegExpExecArray => match !== null)
      .map((match) => Number(match[1]))
      .sort((a, b) => a - b);
  }

  /** The newest checkpoint, or null when the run has none. */
  async loadLatestCheckpoint(): Promise<LoadedCheckpoint | null> {
    const steps = await this.checkpointSteps();
    const step = steps.at(-1);
    if (step === undefined) return null;
    const dir = join(this.dir, CHECKPOINTS, `step-${step}`);
    const state = JSON.parse(await readFile(join(dir, 'trainer_state.json'), 'utf8')) as TrainerState;
    const { adapters } = await loadAdapter(dir);
    const file = await SafetensorsFile.open(join(dir, 'optimizer.safetensors'));
    try {
      const moments: AdamWState['moments'] = {};
      for (const [name, info] of file.tensors) {
        const match = /^(.*)\.(exp_avg|exp_avg_sq)$/.exec(name);
        if (!match) throw new Error(`${file.path}: unexpected tensor "${name}"`);
        const entry = (moments[match[1]!] ??= { m: new Float32Array(), v: new Float32Array(), shape: [...info.shape] });
        entry[match[2] === 'exp_avg' ? 'm' : 'v'] = await file.readFloat32(name);
      }
      return { dir, state, adapters, optimizer: { step: Number(file.metadata.step ?? state.step), moments } };
    } finally {
      await file.close();
    }
  }

  /**
   * Drops the metric and mixer records logged after `step`: on resume they will be logged
   * again, and the curve must not show them twice.
   */
  async truncateAfter(step: number): Promise<void> {
    const metrics = (await this.readMetrics()).filter((record) => record.step <= step);
    await attempt('write', this.metricsFile, () => writeFile(this.metricsFile, metrics.map((r) => `${JSON.stringify(r)}\n`).join('')));
    const mixers = (await this.readMixers()).filter((record) => record.step <= step);
    await attempt('write', this.mixersFile, () => writeFile(this.mixersFile, mixers.map((r) => `${JSON.stringify(r)}\n`).join('')));
  }

  async writeSummary(summary: object): Promise<void> {
    const file = join(this.dir, 'summary.json');
    await attempt('write', file, () => writeFile(file, `${JSON.stringify(summary, null, 2)}\n`));
  }

  /** summary.json, or null while the run has not ended (or the file is unreadable). */
  async readSummary(): Promise<Record<string, unknown> | null> {
    return readTextFile(join(this.dir, 'summary.json'), "a run's summary.json", 1024 ** 2)
      .then((text) => JSON.parse(text) as Record<string, unknown>)
      .catch(() => null);
  }
}

/** Every run folder (one holding config.yaml) directly under `runsDir`, newest first. */
export async function listRuns(runsDir: string): Promise<RunFolder[]> {
  let names: string[];
  try {
    names = await readdir(runsDir);
  } catch {
    return [];
  }
  const runs: (RunFolder & { modified: number })[] = [];
  for (const name of names) {
    const dir = join(runsDir, name);
    const config = await stat(join(dir, 'config.yaml')).catch(() => null);
    if (!config) continue;
    const run = new RunDirectory(dir);
    const summary = await run.readSummary();
    const metrics = await run.readMetrics().catch(() => []);
    runs.push({ runDir: dir, name, summary, checkpoints: await run.checkpointSteps(), lastStep: metrics.at(-1)?.step ?? 0, modified: config.mtimeMs });
  }
  return runs.sort((a, b) => b.modified - a.modified).map(({ modified: _, ...listing }) => listing);
}

/** The most of a run's records read back: a 100,000-step run logs some 20 MB of metrics. */
const MAX_RECORDS_BYTES = 256 * 1024 ** 2;

/** A run's records: none when the file does not exist; only a regular file within the limit is read. */
async function readJsonLines<T>(file: string): Promise<T[]> {
  let text: string;
  try {
    text = (await readRegularFile(file, "a run's records", MAX_RECORDS_BYTES)).toString('utf8');
  } catch (error) {
    if (error instanceof FileReadError && (error.cause as NodeJS.ErrnoException | undefined)?.code === 'ENOENT') return [];
    throw error;
  }
  const lines = text.split('\n').filter((line) => line.trim());
  return lines.flatMap((line, i) => {
    try {
      return [JSON.parse(line) as T];
    } catch (error) {
      // Only appends happen here, so only the last line can be torn (a crash mid-write).
      if (i === lines.length - 1) return [];
      throw new Error(`${file}:${i + 1}: not JSON (${(error as Error).message})`);
    }
  });
}
