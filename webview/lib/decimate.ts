// Display decimation: at most a few points per pixel column, chosen so that the drawn line looks
// exactly like the full one (M4: the first, last, minimum and maximum of each column; Jugel et
// al., "M4: A Visualization-Oriented Time Series Data Aggregation", VLDB 2014). All data is kept;
// only what goes to the canvas is thinned, and again for the visible window on every zoom.

/** First index i in the sorted `xs` with xs[i] ≥ value (xs.length if none). */
export function lowerBound(xs: ArrayLike<number>, value: number): number {
  let lo = 0;
  let hi = xs.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (xs[mid]! < value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * Indices of xs[lo, hi) to draw on `columns` pixel columns, ascending. For every column and
 * every series in `ys` (which share `xs`): the first and last index of the column, the index of
 * each series' minimum and maximum, and its first non-finite value (so gaps stay visible).
 * Returns every index when there are not many more points than columns.
 */
export function m4(xs: ArrayLike<number>, ys: readonly ArrayLike<number>[], lo: number, hi: number, columns: number): number[] {
  const n = hi - lo;
  const out: number[] = [];
  if (n <= 0) return out;
  if (n <= 4 * Math.max(1, columns)) {
    for (let i = lo; i < hi; i++) out.push(i);
    return out;
  }
  const x0 = xs[lo]!;
  const span = xs[hi - 1]! - x0 || 1;
  const k = ys.length;
  const minAt = new Int32Array(k);
  const maxAt = new Int32Array(k);
  const gapAt = new Int32Array(k);
  let bucket = -1;
  let first = lo;
  let last = lo;
  const picked: number[] = [];
  const flush = (): void => {
    picked.length = 0;
    picked.push(first, last);
    for (let s = 0; s < k; s++) {
      if (minAt[s]! >= 0) picked.push(minAt[s]!, maxAt[s]!);
      if (gapAt[s]! >= 0) picked.push(gapAt[s]!);
    }
    picked.sort((a, b) => a - b);
    for (let j = 0; j < picked.length; j++) if (j === 0 || picked[j] !== picked[j - 1]) out.push(picked[j]!);
  };
  for (let i = lo; i < hi; i++) {
    const b = Math.min(columns - 1, Math.floor(((xs[i]! - x0) / span) * columns));
    if (b !== bucket) {
      if (bucket >= 0) flush();
      bucket = b;
      first = i;
      minAt.fill(-1);
      maxAt.fill(-1);
      gapAt.fill(-1);
    }
    last = i;
    for (let s = 0; s < k; s++) {
      const y = ys[s]![i]!;
      if (!Number.isFinite(y)) {
        if (gapAt[s] === -1) gapAt[s] = i;
      } else if (minAt[s] === -1) {
        minAt[s] = i;
        maxAt[s] = i;
      } else {
        if (y < ys[s]![minAt[s]!]!) minAt[s] = i;
        if (y > ys[s]![maxAt[s]!]!) maxAt[s] = i;
      }
    }
  }
  flush();
  return out;
}
