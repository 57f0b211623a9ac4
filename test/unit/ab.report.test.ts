// The A/B report (server/ab/report.ts, results.ts) recomputed from planted runs' metrics.jsonl: its
// numbers, how one run's change moves the paired difference, and the runs it leaves out and says so.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { formatEstimate } from '../../server/ab/report';
import { tInterval } from '../../server/ab/stats';
import { writeReport } from '../../server/ab/write';
import { plantedRecords, plantManifest, plantRun, type PlantedRun } from '../helpers/ab-runs';

const SEEDS = [42, 43, 44, 45];
// Final values per seed; MoSLoRA a little lower, with seed-to-seed spread.
const LORA: PlantedRun[] = SEEDS.map((seed, i) => ({ method: 'lora', seed, trainLoss: 2.5 + 0.03 * i, evalLoss: [2.41, 2.47, 2.39, 2.44][i]!, accuracy: [0.3, 0.32, 0.28, 0.31][i]!, trainable: 65536, stepSeconds: 0.1 + 0.01 * i }));
const MOSLORA: PlantedRun[] = SEEDS.map((seed, i) => ({ method: 'moslora', seed, trainLoss: 2.48 + 0.02 * i, evalLoss: [2.38, 2.45, 2.37, 2.40][i]!, accuracy: [0.31, 0.35, 0.29, 0.3][i]!, trainable: 67328, stepSeconds: 0.105 + 0.01 * i }));

let dir: string;

async function plantAll(abDir: string, runs: PlantedRun[]) {
  await plantManifest(abDir, '/configs/planted.moslora.yaml', 'a'.repeat(64), ['lora', 'moslora'], SEEDS);
  for (const run of runs) await plantRun(abDir, run);
}

describe('the A/B report from runs on disk', () => {
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'moslora-ab-report-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("agrees with the numbers recomputed from the runs' final records", async () => {
    const abDir = join(dir, 'ab-agree');
    await plantAll(abDir, [...LORA, ...MOSLORA]);
    const { report, reportFile, figures } = await writeReport(abDir, 'moslora ab planted --report-only');
    for (const [method, runs] of [['lora', LORA], ['moslora', MOSLORA]] as const) {
      const summary = report.perMethod.find((m) => m.method === method)!;
      assert.equal(summary.done, 4);
      assert.deepEqual(summary.stats.evalLoss, tInterval(runs.map((r) => r.evalLoss)));
      assert.deepEqual(summary.stats.accuracy, tInterval(runs.map((r) => r.accuracy)));
      assert.deepEqual(summary.stats.trainLoss, tInterval(runs.map((r) => r.trainLoss)));
      assert.equal(summary.trainableParameters, runs[0]!.trainable);
      // median of four: the mean of the middle two
      const steps = runs.map((r) => r.stepSeconds).sort((a, b) => a - b);
      assert.ok(Math.abs(summary.medianStepSeconds! - (steps[1]! + steps[2]!) / 2) < 1e-12);
    }
    const [comparison] = report.comparisons;
    const differences = SEEDS.map((_, i) => MOSLORA[i]!.evalLoss - LORA[i]!.evalLoss);
    const expected = tInterval(differences);
    const d = comparison!.differences.evalLoss!;
    assert.deepEqual(d.seeds, SEEDS);
    assert.deepEqual(d.differences, differences);
    assert.equal(d.mean, expected.mean);
    assert.equal(d.halfWidth, expected.halfWidth);
    // −0.0275 ± 0.0153 (t_{0.975,3} = 3.182, s = 0.00957): the interval excludes 0
    assert.equal(comparison!.verdict, 'lower');
    assert.equal(comparison!.sentence, `MoSLoRA lowers eval loss by ${formatEstimate(-expected.mean, expected.halfWidth)} against LoRA (95%, 4 seeds, paired).`);

    const markdown = await readFile(reportFile, 'utf8');
    assert.ok(markdown.includes(comparison!.sentence), 'the sentence is in the report');
    const lora = report.perMethod[0]!.stats;
    assert.ok(markdown.includes(`| LoRA | 4 | ${formatEstimate(lora.evalLoss!.mean, lora.evalLoss!.halfWidth)} | ${formatEstimate(lora.accuracy!.mean, lora.accuracy!.halfWidth, { percent: true })} |`), markdown);
    // step times: medians of 0.105–0.135 s and 0.10–0.13 s
    assert.ok(markdown.includes('| 65,536 | 115 ms | 1.00× |') && markdown.includes('| 67,328 | 120 ms | 1.04× |'));
    assert.ok(markdown.includes(`| **mean ± 95%** | ${formatEstimate(d.mean, d.halfWidth, { signed: true })} |`));
    assert.ok(markdown.includes("Student's t") && markdown.includes('paired t-test') && markdown.includes('δ(n) = (t(0.975, n − 1) + t(0.80, n − 1)) · s / √n'), 'names its statistics');
    assert.equal(figures.length, 3);
    for (const figure of figures) assert.match(await readFile(figure, 'utf8'), /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"[^]*<\/svg>\n$/);
  });

  it("a planted change of one run's final eval loss moves the paired difference by exactly delta / N", async () => {
    const abDir = join(dir, 'ab-delta');
    await plantAll(abDir, [...LORA, ...MOSLORA]);
    const before = (await writeReport(abDir, 'x')).report;
    const delta = 0.06;
    const changed = { ...MOSLORA[2]!, evalLoss: MOSLORA[2]!.evalLoss + delta };
    // only metrics.jsonl changes: summary.json keeps the old final loss, and the report must not read it
    await writeFile(join(abDir, 'moslora-seed44', 'metrics.jsonl'), plantedRecords(changed).map((r) => `${JSON.stringify(r)}\n`).join(''));
    const after = (await writeReport(abDir, 'x')).report;
    const moved = after.comparisons[0]!.differences.evalLoss!.mean - before.comparisons[0]!.differences.evalLoss!.mean;
    assert.ok(Math.abs(moved - delta / SEEDS.length) < 1e-12, `moved ${moved}, expected ${delta / SEEDS.length}`);
    assert.equal(after.perMethod[0]!.stats.evalLoss!.mean, before.perMethod[0]!.stats.evalLoss!.mean, 'the baseline is untouched');
    assert.equal(after.comparisons[0]!.differences.trainLoss!.mean, before.comparisons[0]!.differences.trainLoss!.mean, 'train loss is untouched');
    assert.equal(after.comparisons[0]!.verdict, 'undetected', '−0.0125 ± 0.05: no longer detected');
    assert.match(after.comparisons[0]!.sentence, /^No difference in eval loss between MoSLoRA and LoRA that this experiment can detect: MoSLoRA − LoRA = -0\.01\d ± 0\.0\d+ \(95%, 4 seeds, paired\); 4 seeds detect about ±0\.0\d+ \(80% power\), and a difference the size of the observed one \(0\.01\d\) would need about \d+ seeds\.$/);
  });

  it('counts only finished runs; pairs only seeds both methods finished, and says which runs did not', async () => {
    const abDir = join(dir, 'ab-partial');
    await plantAll(abDir, [...LORA, ...MOSLORA.slice(0, 2), { ...MOSLORA[2]!, state: 'cancelled' }, { ...MOSLORA[3]!, state: 'failed' }]);
    const { report, reportFile } = await writeReport(abDir, 'x');
    assert.equal(report.perMethod[1]!.done, 2);
    assert.deepEqual(report.comparisons[0]!.differences.evalLoss!.seeds, [42, 43]);
    const markdown = await readFile(reportFile, 'utf8');
    assert.match(markdown, /\| MoSLoRA \| 44 \| unfinished \| 6\/6 \|/);
    assert.match(markdown, /\| MoSLoRA \| 45 \| failed: the loss became NaN at step 7 \| 6\/6 \|/);
  });

  it('one seed: no interval, and the sentence says so', async () => {
    const abDir = join(dir, 'ab-one');
    await plantManifest(abDir, '/c.moslora.yaml', 'b'.repeat(64), ['lora', 'moslora'], [42]);
    await plantRun(abDir, LORA[0]!);
    await plantRun(abDir, MOSLORA[0]!);
    const { report } = await writeReport(abDir, 'x');
    assert.equal(report.comparisons[0]!.verdict, 'one-seed');
    assert.match(report.comparisons[0]!.sentence, /^One seed cannot tell MoSLoRA from LoRA: MoSLoRA − LoRA = -0\.030 in eval loss at seed 42/);
  });

  it('numbers to two significant digits of the interval; a mean that rounds to zero has no sign', () => {
    assert.equal(formatEstimate(-0.0312, 0.0121), '-0.031 ± 0.012');
    assert.equal(formatEstimate(0.004, 0.0201, { signed: true }), '+0.004 ± 0.020');
    assert.equal(formatEstimate(-0.0046, 0.14, { signed: true }), '0.00 ± 0.14');
    assert.equal(formatEstimate(0.3125, 0.042, { percent: true }), '31.3 ± 4.2%');
    assert.equal(formatEstimate(-0.02, 0.13, { percent: true, signed: true }), '-2 ± 13 points');
  });

  it('refuses runs of one method that trained different parameter counts', async () => {
    const abDir = join(dir, 'ab-mixed');
    await plantAll(abDir, [...LORA.slice(0, 3), { ...LORA[3]!, trainable: 1 }, ...MOSLORA]);
    await assert.rejects(writeReport(abDir, 'x'), /lora: its runs report different trainable parameter counts \(65536, 1\)/);
  });

  it('a manifest that is not one names the file and the key', async () => {
    const abDir = join(dir, 'ab-bad');
    await plantManifest(abDir, '/c.moslora.yaml', 'c'.repeat(64), ['lora', 'moslora'], [1]);
    const file = join(abDir, 'ab.json');
    await writeFile(file, (await readFile(file, 'utf8')).replace('"lora"', '"dora"'));
    await assert.rejects(writeReport(abDir, 'x'), (error: Error) => error.message.startsWith(`${file}: not an A/B manifest of version 1: methods.0:`));
  });
});
