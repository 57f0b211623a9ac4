// Runs on disk, as the panel lists them: where a config writes its runs, and a server's run
// listing in the webview's terms. Node only (no 'vscode'), unit-tested.
import { readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { parse } from 'yaml';
import type { RunListing, RunPhase, RunState } from '../protocol/webview';
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
export function listingOf(run: RunFolder, runIds: RunIds, method: string | undefined): RunListing {
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
  const m = text('method') ?? method;
  if (m) listing.method = m;
  return listing;
}

/** The adapter method a run trained, from the resolved config.yaml it wrote first. */
export async function runMethod(runDir: string): Promise<string | undefined> {
  try {
    const config = parse(await readFile(join(runDir, 'config.yaml'), 'utf8')) as { method?: unknown } | null;
    return typeof config?.method === 'string' ? config.method : undefined;
  } catch {
    return undefined;
  }
}

/** The base model folder a run trained on (absolute: config.yaml is the resolved config). */
export async function runModel(runDir: string): Promise<string | undefined> {
  try {
    const config = parse(await readFile(join(runDir, 'config.yaml'), 'utf8')) as { model?: unknown } | null;
    return typeof config?.model === 'string' ? resolve(runDir, config.model) : undefined;
  } catch {
    return undefined;
  }
}
