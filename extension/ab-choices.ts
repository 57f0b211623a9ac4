// What "MoSLoRA: A/B Test" asks and shows, free of the editor's API so the unit tests reach it:
// the methods to offer, the seeds' bounds, the progress line and the request it sends.
import type { AbProgress, AbTestParams } from '../protocol/editor';
import { AB_METHODS } from '../protocol/methods';

/** Picked at first: the comparison the A/B exists for. */
export const DEFAULT_METHODS: readonly string[] = ['lora', 'moslora'];
export const DEFAULT_SEEDS = 3;
export const MIN_SEEDS = 2;
export const MAX_SEEDS = 20;

/** The methods in AB_METHODS order (lora, the baseline of the default, first), the defaults picked. */
export function methodChoices(): { method: string; picked: boolean }[] {
  return AB_METHODS.map((method) => ({ method, picked: DEFAULT_METHODS.includes(method) }));
}

/** Why `text` is not a seed count, or undefined when it is one. */
export function seedsError(text: string): string | undefined {
  const value = text.trim();
  if (!/^\d+$/.test(value)) return `a whole number of seeds per method, ${MIN_SEEDS} to ${MAX_SEEDS}`;
  const n = Number(value);
  return n < MIN_SEEDS || n > MAX_SEEDS ? `${n} seeds: give ${MIN_SEEDS} to ${MAX_SEEDS} (a paired interval needs two; each seed trains every method once)` : undefined;
}

/** The request for the methods picked (in the order of the list, its first the baseline) and the seeds typed. */
export function abTestParams(configUri: string, picked: readonly string[], seedsText: string, runsDir: string | undefined, progressId: string): AbTestParams {
  const methods = AB_METHODS.filter((method) => picked.includes(method));
  const unknown = picked.filter((method) => !(AB_METHODS as readonly string[]).includes(method));
  if (unknown.length) throw new Error(`unknown A/B method ${unknown.join(', ')}; allowed: ${AB_METHODS.join(', ')}`);
  if (methods.length < 2) throw new Error(`pick two or more methods to compare (picked: ${methods.join(', ') || 'none'})`);
  const error = seedsError(seedsText);
  if (error) throw new Error(error);
  return { configUri, methods, seeds: Number(seedsText.trim()), ...(runsDir ? { runsDir } : {}), progressId };
}

/** The progress notification's line: runs ended of all, and where the last run that reported is. */
export function progressMessage(progress: AbProgress): string {
  const runs = `${progress.done}/${progress.total} runs done`;
  const c = progress.current;
  return c && progress.done < progress.total ? `${runs} · ${c.method} seed ${c.seed}: step ${c.step}/${c.totalSteps}` : runs;
}
