// The runs of one A/B as Compare draws them (as the A/B report's figures do): per method, the
// mean over its seeds at each step and a band from the lowest to the highest seed.

export interface Curve {
  steps: ArrayLike<number>;
  values: ArrayLike<number>;
}

/** A run as far as grouping goes: the A/B it is a seed of, and its method. */
export interface AbMember {
  ab: string | undefined;
  method: string | undefined;
}

export interface Band {
  steps: number[];
  mean: number[];
  lo: number[];
  hi: number[];
}

/**
 * Mean, lowest and highest over the curves at each step where every curve has a finite value
 * (a seed that logged less, or diverged, does not skew the others' mean). Empty without curves.
 */
export function band(curves: readonly Curve[]): Band {
  const out: Band = { steps: [], mean: [], lo: [], hi: [] };
  if (curves.length === 0) return out;
  const byStep = curves.map((curve) => {
    const m = new Map<number, number>();
    for (let i = 0; i < curve.steps.length; i++) if (Number.isFinite(curve.values[i])) m.set(curve.steps[i]!, curve.values[i]!);
    return m;
  });
  const steps = [...byStep[0]!.keys()].filter((step) => byStep.every((m) => m.has(step))).sort((a, b) => a - b);
  for (const step of steps) {
    const values = byStep.map((m) => m.get(step)!);
    out.steps.push(step);
    out.mean.push(values.reduce((a, v) => a + v, 0) / values.length);
    out.lo.push(Math.min(...values));
    out.hi.push(Math.max(...values));
  }
  return out;
}

/**
 * The runs Compare draws one by one, and the runs of an A/B it draws together: per A/B and
 * method, its seeds among the runs shown (two or more; a lone seed is drawn as a run).
 */
export function abGroups<R extends AbMember>(runs: readonly R[]): { single: R[]; grouped: { ab: string; method: string; runs: R[] }[] } {
  const byKey = new Map<string, { ab: string; method: string; runs: R[] }>();
  for (const run of runs) {
    if (!run.ab) continue;
    const method = run.method ?? '?';
    const key = `${run.ab}\u0000${method}`;
    let entry = byKey.get(key);
    if (!entry) byKey.set(key, (entry = { ab: run.ab, method, runs: [] }));
    entry.runs.push(run);
  }
  const grouped = [...byKey.values()].filter((g) => g.runs.length > 1);
  const inGroup = new Set(grouped.flatMap((g) => g.runs));
  return { single: runs.filter((run) => !inGroup.has(run)), grouped };
}
