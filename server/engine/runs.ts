// A run's folder, as ../shared/ARCHITECTURE.md lays it out:
//   runs/<name>/config.yaml          the resolved config that ran
//               metrics.jsonl        one JSON object per logged step (train and eval)
//               mixers.jsonl         mixer snapshots over time, for the heatmap scrubber
//               checkpoints/step-N/  adapter + optimizer + trainer state; written to a temp folder, renamed
//               adapter/ peft/ merged/
//               summary.json         what ran, on which backend, how long, final metrics
// metrics.jsonl is the truth: anything streamed to a panel is also here, so nothing is lost.
import { appendFile, mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify } from 'yaml';
import type { AdamWState } from './optim';
import { loadAdapter, saveAdapter, type AdapterSettings } from './adapter-files';
import { SafetensorsFile, writeSafetensors } from '../formats/safetensors';
import { FileReadError, readSmallFile } from '../models/read-file';
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

export class RunDirectory {
  constructor(readonly dir: string) {}

  /** A new run folder; an existing non-empty one is refused (only resume continues a run). */
  static async create(dir: string, resolvedConfig: object): Promise<RunDirectory> {
    const existing = await readdir(dir).catch(() => []);
    if (existing.length > 0) {
      throw new Error(`${dir} already holds a run; resume it (--resume ${dir}) or choose another output.run_name`);
    }
    await mkdir(join(dir, CHECKPOINTS), { recursive: true });
    await writeFile(join(dir, 'config.yaml'), stringify(resolvedConfig));
    return new RunDirectory(dir);
  }

  get metricsFile(): string {
    return join(this.dir, 'metrics.jsonl');
  }

  get mixersFile(): string {
    return join(this.dir, 'mixers.jsonl');
  }

  async appendMetrics(record: MetricRecord): Promise<void> {
    await appendFile(this.metricsFile, `${JSON.stringify(record)}\n`);
  }

  async appendMixers(snapshots: MixerSnapshot[]): Promise<void> {
    if (snapshots.length) await appendFile(this.mixersFile, snapshots.map((s) => `${JSON.stringify(s)}\n`).join(''));
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
    await writeFile(this.metricsFile, metrics.map((r) => `${JSON.stringify(r)}\n`).join(''));
    const mixers = (await this.readMixers()).filter((record) => record.step <= step);
    await writeFile(this.mixersFile, mixers.map((r) => `${JSON.stringify(r)}\n`).join(''));
  }

  async writeSummary(summary: object): Promise<void> {
    await writeFile(join(this.dir, 'summary.json'), `${JSON.stringify(summary, null, 2)}\n`);
  }

  /** summary.json, or null while the run has not ended (or the file is unreadable). */
  async readSummary(): Promise<Record<string, unknown> | null> {
    return readSmallFile(join(this.dir, 'summary.json'), 1024 ** 2, "a run's summary.json", 'one is a few KB')
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
    text = await readSmallFile(file, MAX_RECORDS_BYTES, "a run's records", 'a long run logs some tens of MB');
  } catch (error) {
    if (error instanceof FileReadError && error.code === 'ENOENT') return [];
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
