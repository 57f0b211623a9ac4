// An A/B's runs in Compare (tagged by the extension's listing with their A/B, method and seed):
// per A/B and method the mean over its seeds and the band from the lowest to the highest seed, at
// the steps every seed of the method has logged.
import type { Column, RunData } from './store';

export interface AbMethodSeries {
  /** The A/B's name (its folder is ab-<name>). */
  ab: string;
  method: string;
  runs: RunData[];
  steps: number[];
  /** Mean wall time at each step, for the wall-time axis. */
  walls: number[];
  mean: number[];
  min: number[];
  max: number[];
}

/** `name\0method`: one key per line Compare draws for an A/B. */
export function abKey(run: RunData): string | undefined {
  return run.ab ? `${run.ab.name}\u0000${run.ab.method}` : undefined;
}

/** The A/B names among `runs`, in the order they first appear, each with its first run (for openAbReport). */
export function abNames(runs: readonly RunData[]): { name: string; runId: string }[] {
  const seen = new Map<string, string>();
  for (const run of runs) if (run.ab && !seen.has(run.ab.name)) seen.set(run.ab.name, run.runId);
  return [...seen].map(([name, runId]) => ({ name, runId }));
}

/** The runs of one A/B and method. */
export interface AbGroup {
  ab: string;
  method: string;
  runs: RunData[];
}

/** The runs of each A/B and method among `runs`, in the order each group's first run appears; runs of no A/B left out. */
export function abGroups(runs: readonly RunData[]): AbGroup[] {
  const byKey = new Map<string, AbGroup>();
  for (const run of runs) {
    const key = abKey(run);
    if (!key) continue;
    const group = byKey.get(key) ?? byKey.set(key, { ab: run.ab!.name, method: run.ab!.method, runs: [] }).get(key)!;
    group.runs.push(run);
  }
  return [...byKey.values()];
}

/** Mean, lowest and highest of the finite numbers among `values`, and how many there were; undefined when none. */
export function spread(values: readonly (number | null | undefined)[]): { mean: number; min: number; max: number; n: number } | undefined {
  const numbers = values.filter((v): v is number => typeof v === 'number' && Number.isFinite(v));
  if (!numbers.length) return undefined;
  return { mean: numbers.reduce((a, b) => a + b, 0) / numbers.length, min: Math.min(...numbers), max: Math.max(...numbers), n: numbers.length };
}

/**
 * Mean, lowest and highest over the runs of each A/B and method for one metric (`train/loss`, …),
 * at the steps all of the method's runs with that metric have logged; `valuesOf` gives a run's
 * values (its column's own, or smoothed). Runs without an A/B, or without the metric, are left out.
 */
export function abSeries(runs: readonly RunData[], metric: string, valuesOf: (column: Column) => readonly number[] = (column) => column.values): AbMethodSeries[] {
  return abGroups(runs).flatMap((group) => {
    const members = group.runs.flatMap((run) => {
      const column = run.columns.get(metric);
      return column && column.length > 0 ? [{ run, column }] : [];
    });
    if (!members.length) return [];
    const values = members.map(({ column }) => valuesOf(column));
    const index = members.map(({ column }) => new Map(column.steps.map((step, i) => [step, i])));
    const steps = members[0]!.column.steps.filter((step) => index.every((at) => at.has(step)));
    const series: AbMethodSeries = { ab: group.ab, method: group.method, runs: members.map((m) => m.run), steps, walls: [], mean: [], min: [], max: [] };
    for (const step of steps) {
      const ys = members.map((_, k) => values[k]![index[k]!.get(step)!]!);
      const walls = members.map(({ column }, k) => column.walls[index[k]!.get(step)!]!);
      series.mean.push(ys.reduce((a, b) => a + b, 0) / ys.length);
      series.min.push(Math.min(...ys));
      series.max.push(Math.max(...ys));
      series.walls.push(walls.reduce((a, b) => a + b, 0) / walls.length);
    }
    return [series];
  });
}
