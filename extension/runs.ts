// Runs on disk, as the panel lists them: where a config writes its runs, a server's run listing
// in the webview's terms, the run a command shows when none is named, and a run's config.yaml
// (its method, model, config file and hyperparameters). Node only (no 'vscode'), unit-tested.
import { readdir, readFile, stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { parse } from 'yaml';
import type { Hyperparameter, RunListing, RunPhase, RunState } from '../protocol/webview';
import type { RunIds } from './runIds';
import type { RunFolder } from '../protocol/editor';

/** The folder a config writes its runs into: its `output.runs_dir` (default `runs`), relative to the config. */
export function runsDirOf(configText: string, configPath: string): string {
  let runsDir = 'runs';
  try {
    const parsed = parse(configText) as { output?: { runs_dir?: unknown } } | null;
    const value = parsed?.output?.runs_dir;
    if (typeof value === 'string' && value.trim()) runsDir = value;
  } catch {
    // a config being typed: its runs are where the default puts them
  }
  return resolve(dirname(configPath), runsDir);
}

/** Final state of a run that is not a live job, from its summary.json. */
export function finishedPhase(summary: Record<string, unknown> | null): RunPhase {
  switch (summary?.state) {
    case 'done':
      return 'done';
    case 'failed':
      return 'failed';
    default:
      // cancelled, or no summary: the run stopped without finishing (a crash leaves no summary)
      return 'stopped';
  }
}

/** A run folder from `moslora/listRuns` as the webview lists it (for a run that is not a live job). */
export function listingOf(run: RunFolder, runIds: RunIds, config?: RunConfig): RunListing {
  const runId = runIds.idOf(run.runDir);
  const s = run.summary;
  const text = (key: string) => (typeof s?.[key] === 'string' ? (s[key] as string) : undefined);
  const number = (key: string) => (typeof s?.[key] === 'number' && Number.isFinite(s[key]) ? (s[key] as number) : undefined);
  const state: RunState = {
    runId,
    name: run.name,
    phase: finishedPhase(s),
    step: number('steps') ?? run.lastStep,
    total: number('totalSteps') ?? run.lastStep,
    backend: text('backend') ?? '',
    device: text('device') ?? '',
    startedAt: null,
  };
  const reason = text('reason') ?? (s ? undefined : 'ended without a summary (stopped or crashed); resume continues from its last checkpoint');
  if (reason) state.reason = reason;
  const listing: RunListing = { runId, name: run.name, state };
  const m = text('method') ?? config?.method;
  if (m) listing.method = m;
  const finalLoss = number('finalLoss');
  if (finalLoss !== undefined) listing.finalLoss = finalLoss;
  if (state.phase !== 'done' && run.checkpoints.length > 0) listing.resumable = true;
  if (config) listing.hyperparameters = config.hyperparameters;
  if (run.ab) listing.ab = run.ab;
  return listing;
}

/**
 * Every run folder newest first, by when its config.yaml was written (when the run started), as
 * the server orders each runs folder: the server answers folder by folder, this orders them all.
 */
export async function newestFirst(runs: readonly RunFolder[]): Promise<RunFolder[]> {
  const started = await Promise.all(runs.map((run) => stat(join(run.runDir, 'config.yaml')).then((s) => s.mtimeMs, () => 0)));
  return runs.map((run, i) => ({ run, at: started[i]! })).sort((a, b) => b.at - a.at).map(({ run }) => run);
}

/** Why a command shows the run it shows, when the user did not name one. */
export interface ChosenRun {
  runId: string;
  /** Said to the user when the run is not simply the newest: which, and why. */
  note?: string;
}

/**
 * The run "Open Training Panel" shows: a live job's; else the newest that finished its steps,
 * saying so when a newer one stopped or failed; else the newest. `runs` newest first.
 */
export function chooseRun(runs: readonly RunListing[], liveRunId: string | undefined): ChosenRun | undefined {
  if (liveRunId) return { runId: liveRunId };
  const newest = runs[0];
  if (!newest) return undefined;
  const finished = runs.find((run) => run.state?.phase === 'done');
  if (!finished || finished === newest) return { runId: newest.runId };
  return { runId: finished.runId, note: `showing ${finished.name}, the newest finished run (${newest.name} ${newest.state?.phase ?? 'did not finish'}); the run list at the top of the panel has the others` };
}

/** Methods that learn no mixer: their runs log no mixer snapshots. */
const NO_MIXER = new Set(['lora']);

export function hasMixers(run: RunListing): boolean {
  return run.method === undefined || !NO_MIXER.has(run.method);
}

/**
 * The run "Show Mixer Heatmaps" shows: as chooseRun, but among runs that learn a mixer; when the
 * run chooseRun would pick is a LoRA run, it says so and shows the newest MoSLoRA run instead.
 */
export function chooseMixerRun(runs: readonly RunListing[], liveRunId: string | undefined): ChosenRun | undefined {
  const chosen = chooseRun(runs, liveRunId);
  const run = runs.find((r) => r.runId === chosen?.runId);
  if (!chosen || !run || hasMixers(run)) return chosen;
  const withMixers = runs.filter(hasMixers);
  const pick = withMixers.find((r) => r.state?.phase === 'done') ?? withMixers[0];
  const lora = `${run.name} is a ${run.method} run: it learns no mixer (M stays I) and logs no snapshots`;
  if (!pick) return { runId: chosen.runId, note: `${lora}, and no run here learns one: train a config with method: moslora` };
  return { runId: pick.runId, note: `${lora}; showing ${pick.name} (${pick.method ?? 'moslora'}), the newest run with mixers` };
}

/** What a run's config.yaml (the resolved config that ran) says, as far as the editor needs it. */
export interface RunConfig {
  /** The config file it was started from (absolute), for Resume. */
  configPath?: string;
  method?: string;
  /** The base model folder (absolute). */
  model?: string;
  hyperparameters: Record<string, Hyperparameter>;
}

/** Keys of config.yaml that say where things went, not how the run trained: left out of Compare. */
const NOT_HYPERPARAMETERS = new Set(['configPath', 'output.runs_dir', 'output.run_name']);

/** A run's config.yaml, or undefined when it cannot be read or parsed. */
export async function readRunConfig(runDir: string): Promise<RunConfig | undefined> {
  let config: unknown;
  try {
    config = parse(await readFile(join(runDir, 'config.yaml'), 'utf8'));
  } catch {
    return undefined;
  }
  if (typeof config !== 'object' || config === null || Array.isArray(config)) return undefined;
  const o = config as Record<string, unknown>;
  const text = (key: string) => (typeof o[key] === 'string' ? (o[key] as string) : undefined);
  const hyperparameters = flatten(o);
  for (const key of NOT_HYPERPARAMETERS) delete hyperparameters[key];
  const configPath = text('configPath');
  const method = text('method');
  const model = text('model');
  return {
    ...(configPath ? { configPath: resolve(runDir, configPath) } : {}),
    ...(method ? { method } : {}),
    ...(model ? { model: resolve(runDir, model) } : {}),
    hyperparameters,
  };
}

/**
 * A parsed YAML mapping as dotted keys (`training.learning_rate`); lists and anything else that
 * is not a scalar as their JSON text, so that two runs' values compare as strings.
 */
export function flatten(value: Record<string, unknown>, prefix = '', out: Record<string, Hyperparameter> = Object.create(null) as Record<string, Hyperparameter>): Record<string, Hyperparameter> {
  for (const [key, v] of Object.entries(value)) {
    const name = prefix ? `${prefix}.${key}` : key;
    if (v === null || typeof v === 'string' || typeof v === 'boolean') out[name] = v;
    else if (typeof v === 'number') out[name] = Number.isFinite(v) ? v : String(v);
    else if (typeof v === 'object' && !Array.isArray(v)) flatten(v as Record<string, unknown>, name, out);
    else out[name] = JSON.stringify(v) ?? String(v);
  }
  return out;
}

/** The steps of a run folder's complete checkpoints (checkpoints/step-N), ascending. */
export async function checkpointSteps(runDir: string): Promise<number[]> {
  const names = await readdir(join(runDir, 'checkpoints')).catch(() => [] as string[]);
  return names
    .map((name) => /^step-(\d+)$/.exec(name)?.[1])
    .filter((step) => step !== undefined)
    .map(Number)
    .sort((a, b) => a - b);
}
