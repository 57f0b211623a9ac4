// report.md: the verdict first, then the numbers behind it, the figures, the runs, and how each
// number is computed. Pure: the text of a report (report.ts) and the figures' file names.
import { formatEstimate, methodName, METRIC_LABELS, METRICS, SEEDS_LIMIT, type AbReport, type Metric } from './report';
import type { MeanInterval } from './stats';

export interface FigureLink {
  /** Relative to the report. */
  file: string;
  caption: string;
}

const cell = (interval: MeanInterval | null, metric: Metric, signed = false) =>
  interval === null ? '–' : formatEstimate(interval.mean, interval.halfWidth, { percent: metric === 'accuracy', signed });

const single = (value: number, metric: Metric, precisionOf: number | null) => formatEstimate(value, null, { percent: metric === 'accuracy', signed: true, precisionOf });

function row(cells: (string | number)[]): string {
  return `| ${cells.join(' | ')} |`;
}

function milliseconds(seconds: number | null): string {
  return seconds === null ? '–' : `${(seconds * 1000).toFixed(0)} ms`;
}

export function renderMarkdown(report: AbReport, figures: FigureLink[], rebuild: string): string {
  const pct = Math.round(report.confidence * 100);
  const names = report.methods.map(methodName);
  const baseline = report.perMethod[0]!;
  const out: string[] = [`# A/B: ${names.join(' vs ')}`, ''];
  for (const comparison of report.comparisons) out.push(`**${comparison.sentence}**`, '');
  const { atOnce, coresPerRun } = report.schedule;
  out.push(
    `Config \`${report.config}\`: every run trains it as written but for \`method\`, \`training.seed\` and \`training.workers\` (1: the A/B shares the cores out itself; threads change only rounding). ` +
      `Seeds ${report.seeds.join(', ')}; backend ${report.backend}; ${atOnce} run${atOnce === 1 ? '' : 's'} at a time with ${coresPerRun} core${coresPerRun === 1 ? '' : 's'} each (step times depend on it). ` +
      `The verdict is on ${METRIC_LABELS[report.primary]}${report.primary === 'trainLoss' ? ' (not every run evaluated)' : ''}; lower is better.`,
    '',
    '## Per method',
    '',
    `Mean ± half-width of the ${pct}% t-interval over the seeds that finished.`,
    '',
    row(['method', 'seeds', ...METRICS.map((m) => METRIC_LABELS[m]), 'trainable parameters', 'median step', `step vs ${methodName(baseline.method)}`]),
    row(['---', ...Array(METRICS.length + 4).fill('---:')]),
  );
  for (const m of report.perMethod) {
    const ratio = m.medianStepSeconds !== null && baseline.medianStepSeconds ? `${(m.medianStepSeconds / baseline.medianStepSeconds).toFixed(2)}×` : '–';
    out.push(row([methodName(m.method), m.done, ...METRICS.map((metric) => cell(m.stats[metric], metric)), m.trainableParameters?.toLocaleString('en-US') ?? '–', milliseconds(m.medianStepSeconds), ratio]));
  }
  for (const c of report.comparisons) {
    const title = `${methodName(c.method)} − ${methodName(c.baseline)}`;
    const seeds = [...new Set(METRICS.flatMap((metric) => c.differences[metric]?.seeds ?? []))].sort((a, b) => a - b);
    out.push('', `## Paired differences: ${title}, same seed`, '');
    if (seeds.length === 0) {
      out.push('No seed has finished with both methods yet.');
      continue;
    }
    out.push(row(['seed', ...METRICS.map((m) => METRIC_LABELS[m])]), row(['---:', ...METRICS.map(() => '---:')]));
    for (const seed of seeds) {
      out.push(row([seed, ...METRICS.map((metric) => {
        const d = c.differences[metric];
        const k = d?.seeds.indexOf(seed) ?? -1;
        // a decimal more than the mean's: the seeds' values are not rounded to the interval's precision
        return k < 0 ? '–' : single(d!.differences[k]!, metric, d!.halfWidth === null ? null : d!.halfWidth / 10);
      })]));
    }
    out.push(row([`**mean ± ${pct}%**`, ...METRICS.map((metric) => cell(c.differences[metric], metric, true))]));
    out.push(row(['t (df), p', ...METRICS.map((metric) => {
      const d = c.differences[metric];
      return !d || d.t === null || d.p === null ? '–' : `${d.t.toFixed(2)} (${d.n - 1}), ${d.p < 0.001 ? d.p.toExponential(1) : d.p.toFixed(3)}`;
    })]));
    const d = c.differences[report.primary];
    if (d && c.detectable !== null && d.sd !== null) {
      const needed = c.seedsForObserved === null ? `more than ${SEEDS_LIMIT.toLocaleString('en-US')}` : `about ${c.seedsForObserved.toLocaleString('en-US')}`;
      out.push(
        '',
        `With ${d.n} paired seeds and the differences' standard deviation ${formatEstimate(d.sd, null)}, this experiment detects a true difference in ${METRIC_LABELS[report.primary]} of about ` +
          `±${formatEstimate(c.detectable, null, { precisionOf: d.halfWidth })} (paired t-test at ${100 - pct}% two-sided, ${Math.round(report.power * 100)}% power); a difference the size of the observed one (${formatEstimate(Math.abs(d.mean), null)}) would need ${needed} seeds.`,
      );
    }
  }
  if (figures.length) {
    out.push('', '## Figures', '');
    for (const figure of figures) out.push(`![${figure.caption}](${figure.file})`, '');
    out.pop();
  }
  out.push('', '## Runs', '', row(['method', 'seed', 'outcome', 'steps', 'folder']), row(['---', '---:', '---', '---:', '---']));
  for (const run of report.runs) {
    const outcome = run.outcome === 'failed' && run.reason ? `failed: ${run.reason}` : run.outcome;
    out.push(row([methodName(run.method), run.seed, outcome.replace(/\|/g, '\\|'), `${run.step}${run.totalSteps === null ? '' : `/${run.totalSteps}`}`, `\`${run.dir}/\``]));
  }
  out.push(
    '',
    '## How the numbers are computed',
    '',
    "- From each run's `metrics.jsonl`: final eval loss and accuracy are its last eval record's (at its last step), final train loss its last train record's (the mean over the steps since the record before). From its `summary.json`: how it ended, trainable parameters, the median of its step times. Only runs that finished count.",
    `- Per method: mean and sample standard deviation s (n − 1 in the denominator) over seeds; the ${pct}% interval is Student's t: mean ± t(${(1 - (1 - report.confidence) / 2).toFixed(3)}, n − 1) · s / √n.`,
    `- Paired difference: for each seed both methods finished, method − ${methodName(baseline.method)} (same seed: same data order, dropout masks and initial adapter draws where the methods share them); the mean of those differences with its t-interval, t = mean / (s / √n) with n − 1 degrees of freedom and its two-sided p: the paired t-test. A method differs when the interval excludes 0.`,
    `- Detectable difference with n seeds: δ(n) = (t(${(1 - (1 - report.confidence) / 2).toFixed(3)}, n − 1) + t(${report.power.toFixed(2)}, n − 1)) · s / √n, s the standard deviation of the paired differences (the usual sample-size formula for a paired t-test, with t quantiles); the seeds needed for a difference δ are the smallest n with δ(n) ≤ δ.`,
    '- Student-t quantiles and p-values: jstat. Median step time per method: the median over its runs.',
    `- Rebuild this report from the runs: \`${rebuild}\`.`,
    '',
  );
  return out.join('\n');
}
