// What an A/B's report is computed from: each run's metrics.jsonl (the final eval and train
// records, the curves) and summary.json (how it ended, trainable parameters, step time).
import { join } from 'node:path';
import { RunDirectory } from '../engine/runs';
import type { MetricRecord, AbManifest } from '../../protocol/records';

/** done: finished its steps; unfinished: stopped or interrupted (resume continues it); failed: stopped on a non-finite loss; missing: never started. */
export type RunOutcome = 'done' | 'unfinished' | 'failed' | 'missing';

export interface CurvePoint {
  step: number;
  value: number;
}

export interface RunResult {
  method: string;
  seed: number;
  /** Relative to the A/B's folder. */
  dir: string;
  outcome: RunOutcome;
  /** Why it failed, as summary.json says. */
  reason?: string;
  /** The last logged step. */
  step: number;
  totalSteps: number | null;
  /** From the last eval record (the run's final step for a done run); null without evaluation. */
  evalLoss: number | null;
  accuracy: number | null;
  /** From the last train record: the mean loss over the steps since the one logged before. */
  trainLoss: number | null;
  trainableParameters: number | null;
  medianStepSeconds: number | null;
  trainCurve: CurvePoint[];
  evalCurve: CurvePoint[];
}

const finite = (value: MetricRecord[string] | undefined): number | null => (typeof value === 'number' && Number.isFinite(value) ? value : null);
const numberIn = (summary: Record<string, unknown> | null, key: string): number | null => {
  const value = summary?.[key];
  return typeof value === 'number' && Number.isFinite(value) ? value : null;
};

function curve(records: MetricRecord[], kind: MetricRecord['kind'], metric: string): CurvePoint[] {
  return records.flatMap((record) => {
    const value = record.kind === kind ? finite(record[metric]) : null;
    return value === null ? [] : [{ step: record.step, value }];
  });
}

export async function readRunResult(abDir: string, entry: { method: string; seed: number; dir: string }): Promise<RunResult> {
  const run = new RunDirectory(join(abDir, entry.dir));
  const [records, summary] = await Promise.all([run.readMetrics(), run.readSummary()]);
  const lastTrain = records.filter((record) => record.kind === 'train').at(-1);
  const lastEval = records.filter((record) => record.kind === 'eval').at(-1);
  const state = summary?.state;
  const outcome: RunOutcome = state === 'done' ? 'done' : state === 'failed' ? 'failed' : records.length > 0 || summary || (await run.checkpointSteps()).length ? 'unfinished' : 'missing';
  const reason = typeof summary?.reason === 'string' ? summary.reason : undefined;
  return {
    ...entry,
    outcome,
    ...(outcome === 'failed' && reason ? { reason } : {}),
    step: records.at(-1)?.step ?? 0,
    totalSteps: numberIn(summary, 'totalSteps'),
    evalLoss: finite(lastEval?.eval_loss),
    accuracy: finite(lastEval?.accuracy),
    trainLoss: finite(lastTrain?.loss),
    trainableParameters: numberIn(summary, 'trainableParameters'),
    medianStepSeconds: numberIn(summary, 'medianStepSeconds'),
    trainCurve: curve(records, 'train', 'loss'),
    evalCurve: curve(records, 'eval', 'eval_loss'),
  };
}

/** Every run the manifest lists, in its order. */
export function readRunResults(abDir: string, manifest: AbManifest): Promise<RunResult[]> {
  return Promise.all(manifest.runs.map((entry) => readRunResult(abDir, entry)));
}
