// How numbers and durations read in the panel, the status bar and the notifications: short, and
// the same everywhere.

/** 75 → "1:15", 3725 → "1:02:05". */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '–';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}

/** Four significant digits; exponent form for learning rates and the like. */
export function formatNumber(value: number | null | undefined): string {
  if (value === null || value === undefined) return '–';
  if (!Number.isFinite(value)) return String(value);
  const a = Math.abs(value);
  if (a !== 0 && (a < 1e-3 || a >= 1e6)) return value.toExponential(2);
  return Number(value.toPrecision(4)).toString();
}

/**
 * An axis's tick labels in one form: where formatNumber would write any of them in exponent form,
 * all in exponent form with the digits that write each tick exactly (at most four), so a
 * learning-rate axis reads 5.0e-4, 1.0e-3, 1.5e-3, not 5.00e-4, 0.001, 1.50e-3; else each as
 * formatNumber writes it. Zero is "0".
 */
export function formatTicks(values: readonly number[]): string[] {
  const exponent = values.some((v) => Number.isFinite(v) && formatNumber(v).includes('e'));
  if (!exponent) return values.map((v) => formatNumber(v));
  const finite = values.filter((v) => Number.isFinite(v) && v !== 0);
  let digits = 1;
  while (digits < 4 && finite.some((v) => Math.abs(Number(v.toExponential(digits)) - v) > 1e-9 * Math.abs(v))) digits++;
  return values.map((v) => (v === 0 ? '0' : Number.isFinite(v) ? v.toExponential(digits) : String(v)));
}

/** 12345 → "12,345". */
export function formatCount(value: number): string {
  return Math.round(value).toLocaleString('en-US');
}
