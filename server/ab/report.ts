// The numbers of an A/B report and its verdict, computed from the runs' results (results.ts).
// Pure: no files, so the tests plant results and the panel can recompute what it shows.
import type { RunResult } from './results';
import { CONFIDENCE, detectableDifference, pairedDifference, POWER, seedsToDetect, tInterval, type MeanInterval, type PairedDifference } from './stats';
import type { AdapterMethod } from '../../protocol/methods';
import type { AbManifest } from '../../protocol/records';

export const METRICS = ['evalLoss', 'accuracy', 'trainLoss'] as const;
export type Metric = (typeof METRICS)[number];

export const METRIC_LABELS: Record<Metric, string> = { evalLoss: 'final eval loss', accuracy: 'accuracy', trainLoss: 'final train loss' };

/** More seeds than this are reported as "more than": a difference that small is not worth the runs. */
export const SEEDS_LIMIT = 100_000;

const METHOD_NAMES: Record<AdapterMethod, string> = { lora: 'LoRA', moslora: 'MoSLoRA', 'moslora-fixed': 'MoSLoRA-fixed', linchain: 'LinChain' };

export function methodName(method: string): string {
  return METHOD_NAMES[method as AdapterMethod] ?? method;
}

export interface MethodSummary {
  method: string;
  /** Runs of this method that finished (the ones its statistics are over). */
  done: number;
  /** Over the finished runs that have the metric; null where none has it. */
  stats: Record<Metric, MeanInterval | null>;
  trainableParameters: number | null;
  /** The median over its finished runs of each run's median step time. */
  medianStepSeconds: number | null;
}

export type Verdict = 'lower' | 'higher' | 'same' | 'undetected' | 'one-seed' | 'no-pairs';

export interface Comparison {
  baseline: string;
  method: string;
  /** method − baseline per seed both finished, with its paired t-interval; null where no seed has both. */
  differences: Record<Metric, PairedDifference | null>;
  /** δ(n) of the primary metric at the seeds paired (stats.ts); null under two pairs. */
  detectable: number | null;
  /** Seeds that would detect the observed difference of the primary metric; null: none or more than SEEDS_LIMIT. */
  seedsForObserved: number | null;
  verdict: Verdict;
  /** The result in one sentence. */
  sentence: string;
}

export interface AbReport {
  name: string;
  config: string;
  backend: string;
  schedule: AbManifest['schedule'];
  methods: string[];
  seeds: number[];
  /** The metric the verdict is on: eval loss where every finished run has one, else train loss. */
  primary: Metric;
  confidence: number;
  power: number;
  perMethod: MethodSummary[];
  comparisons: Comparison[];
  runs: RunResult[];
}

function median(values: number[]): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

function valuesOf(runs: RunResult[], metric: Metric): number[] {
  return runs.flatMap((run) => (run[metric] === null ? [] : [run[metric]]));
}

function bySeed(runs: RunResult[], metric: Metric): Map<number, number> {
  return new Map(runs.flatMap((run) => (run[metric] === null ? [] : [[run.seed, run[metric]] as const])));
}

/** Two significant digits of the interval's half-width, and the mean to the same decimals. */
function decimals(halfWidth: number | null, mean: number): number {
  const scale = halfWidth !== null && halfWidth > 0 ? halfWidth : Math.abs(mean);
  return scale > 0 ? Math.max(0, Math.min(8, 1 - Math.floor(Math.log10(scale)))) : 4;
}

export interface FormatOptions {
  /** A fraction shown in percent (accuracy). */
  percent?: boolean;
  /** "+" before a positive value. */
  signed?: boolean;
  /** Decimals as for an interval of this half-width (a seed's value beside the interval of the mean). */
  precisionOf?: number | null;
}

/** "0.031 ± 0.012"; accuracy in percent ("31.3 ± 4.2%"); signed: "+0.004 ± 0.020". */
export function formatEstimate(mean: number, halfWidth: number | null, options: FormatOptions = {}): string {
  const scale = options.percent ? 100 : 1;
  const precision = halfWidth ?? options.precisionOf ?? null;
  const d = decimals(precision === null ? null : precision * scale, mean * scale);
  // a mean that rounds to zero is shown as 0, without a sign
  const rounded = Math.abs(mean * scale) < 0.5 * 10 ** -d ? 0 : mean * scale;
  const sign = options.signed && rounded > 0 ? '+' : '';
  const body = `${sign}${rounded.toFixed(d)}${halfWidth === null ? '' : ` ± ${(halfWidth * scale).toFixed(d)}`}`;
  return options.percent ? `${body}${options.signed ? ' points' : '%'}` : body;
}

function plural(n: number, word: string): string {
  return `${n.toLocaleString('en-US')} ${word}${n === 1 ? '' : 's'}`;
}

function sentenceFor(c: Omit<Comparison, 'sentence'>, primary: Metric): string {
  const a = methodName(c.baseline);
  const b = methodName(c.method);
  const what = primary === 'evalLoss' ? 'eval loss' : 'final train loss';
  const d = c.differences[primary];
  if (!d) return `No seed has finished with both ${a} and ${b} yet: nothing to compare.`;
  const pct = Math.round(CONFIDENCE * 100);
  const observed = `${b} − ${a} = ${formatEstimate(d.mean, d.halfWidth, { signed: true })}`;
  switch (c.verdict) {
    case 'one-seed':
      return `One seed cannot tell ${b} from ${a}: ${observed} in ${what} at seed ${d.seeds[0]}, and seed-to-seed variation is unknown; run 3 or more seeds.`;
    case 'same':
      return `${b} and ${a} end at the same ${what} on every seed (${plural(d.n, 'seed')}).`;
    case 'lower':
    case 'higher':
      return `${b} ${c.verdict === 'lower' ? 'lowers' : 'raises'} ${what} by ${formatEstimate(Math.abs(d.mean), d.halfWidth)} against ${a} (${pct}%, ${plural(d.n, 'seed')}, paired).`;
    default: {
      const needed = c.seedsForObserved === null ? `more than ${SEEDS_LIMIT.toLocaleString('en-US')} seeds` : `about ${plural(c.seedsForObserved, 'seed')}`;
      return (
        `No difference in ${what} between ${b} and ${a} that this experiment can detect: ${observed} (${pct}%, ${plural(d.n, 'seed')}, paired); ` +
        `${plural(d.n, 'seed')} detect about ±${formatEstimate(c.detectable!, null, { precisionOf: d.halfWidth })} (${Math.round(POWER * 100)}% power), and a difference the size of the observed one (${formatEstimate(Math.abs(d.mean), null)}) would need ${needed}.`
      );
    }
  }
}

function compare(baseline: string, method: string, done: RunResult[], primary: Metric): Comparison {
  const of = (m: string) => done.filter((run) => run.method === m);
  const differences = Object.fromEntries(METRICS.map((metric) => [metric, pairedDifference(bySeed(of(baseline), metric), bySeed(of(method), metric))])) as Record<Metric, PairedDifference | null>;
  const d = differences[primary];
  const detectable = d && d.sd !== null ? detectableDifference(d.sd, d.n) : null;
  const seedsForObserved = d && d.sd !== null ? seedsToDetect(d.sd, d.mean, { limit: SEEDS_LIMIT }) : null;
  const verdict: Verdict =
    d === null ? 'no-pairs'
    : d.halfWidth === null ? 'one-seed'
    : d.sd === 0 && d.mean === 0 ? 'same'
    : Math.abs(d.mean) > d.halfWidth ? (d.mean < 0 ? 'lower' : 'higher')
    : 'undetected';
  const comparison = { baseline, method, differences, detectable, seedsForObserved, verdict };
  return { ...comparison, sentence: sentenceFor(comparison, primary) };
}

/** The report of an A/B: statistics over the finished runs the manifest lists; the first method is the baseline. */
export function computeReport(manifest: AbManifest, runs: RunResult[]): AbReport {
  const done = runs.filter((run) => run.outcome === 'done');
  const primary: Metric = done.length > 0 && done.every((run) => run.evalLoss !== null) ? 'evalLoss' : 'trainLoss';
  const perMethod = manifest.methods.map((method): MethodSummary => {
    const own = done.filter((run) => run.method === method);
    const stats = Object.fromEntries(METRICS.map((metric) => {
      const values = valuesOf(own, metric);
      return [metric, values.length ? tInterval(values) : null];
    })) as Record<Metric, MeanInterval | null>;
    const parameters = [...new Set(own.flatMap((run) => (run.trainableParameters === null ? [] : [run.trainableParameters])))];
    if (parameters.length > 1) throw new Error(`${method}: its runs report different trainable parameter counts (${parameters.join(', ')}): they did not train the same config`);
    return { method, done: own.length, stats, trainableParameters: parameters[0] ?? null, medianStepSeconds: median(own.flatMap((run) => (run.medianStepSeconds === null ? [] : [run.medianStepSeconds]))) };
  });
  const [baseline, ...others] = manifest.methods;
  return {
    name: manifest.name,
    config: manifest.config,
    backend: manifest.backend,
    schedule: manifest.schedule,
    methods: manifest.methods,
    seeds: manifest.seeds,
    primary,
    confidence: CONFIDENCE,
    power: POWER,
    perMethod,
    comparisons: others.map((method) => compare(baseline!, method, done, primary)),
    runs,
  };
}
