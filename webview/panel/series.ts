// From a run's columns to chart line groups: x by step or by wall time, and the smoothed curve,
// kept incremental so a streaming run costs only its new points.
import { Ema } from '../lib/ema';
import type { Column } from '../lib/store';
import type { LineGroup, LineSpec, XMode } from './chart';

interface Smoothed {
  weight: number;
  version: number;
  ema: Ema;
}

const smoothedByColumn = new WeakMap<Column, Smoothed>();

/** The debiased EMA of `column` with `weight`, brought up to date with the column. */
export function smoothed(column: Column, weight: number): number[] {
  let s = smoothedByColumn.get(column);
  if (!s || s.weight !== weight || s.version !== column.version || s.ema.values.length > column.length) {
    s = { weight, version: column.version, ema: new Ema(weight) };
    smoothedByColumn.set(column, s);
  }
  for (let i = s.ema.values.length; i < column.length; i++) s.ema.push(column.values[i]!);
  return s.ema.values;
}

/**
 * A line group over `column`'s x (steps, or wall seconds where logged) with the given y arrays
 * (each as long as the column).
 */
export function group(column: Column, xMode: XMode, ys: ArrayLike<number>[], specs: LineSpec[]): LineGroup {
  if (xMode === 'step') return { x: column.steps, ys, specs };
  const keep: number[] = [];
  for (let i = 0; i < column.length; i++) if (Number.isFinite(column.walls[i])) keep.push(i);
  return {
    x: keep.map((i) => column.walls[i]!),
    ys: ys.map((y) => keep.map((i) => y[i]!)),
    specs,
  };
}

/**
 * The usual look of a noisy train metric: the raw line faint, the smoothed curve on top; only
 * the raw line (full strength) when smoothing is off.
 */
export function rawAndSmoothed(column: Column, xMode: XMode, weight: number, spec: Omit<LineSpec, 'faint'>): LineGroup {
  if (weight === 0) return group(column, xMode, [column.values], [spec]);
  return group(
    column,
    xMode,
    [column.values, smoothed(column, weight)],
    [
      { ...spec, label: `${spec.label} (raw)`, faint: true, hideInLegend: true },
      { ...spec, label: spec.label },
    ],
  );
}
