// The A/B report's SVG figures (server/ab/figures.ts): learning curves as a mean line with a band
// per method, paired differences as a dot per seed, and round axis ticks.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { band, curvesFigure, pairedFigure, ticks } from '../../server/ab/figures';
import { computeReport } from '../../server/ab/report';
import type { RunResult } from '../../server/ab/results';
import type { AbManifest } from '../../protocol/records';

function run(method: 'lora' | 'moslora', seed: number, losses: number[], evalLoss: number): RunResult {
  return {
    method, seed, dir: `${method}-seed${seed}`, outcome: 'done', step: losses.length * 10, totalSteps: losses.length * 10,
    evalLoss, accuracy: 0.3, trainLoss: losses.at(-1)!, trainableParameters: method === 'lora' ? 10 : 12, medianStepSeconds: 0.1,
    trainCurve: losses.map((value, i) => ({ step: (i + 1) * 10, value })), evalCurve: [{ step: losses.length * 10, value: evalLoss }],
  };
}

const manifest: AbManifest = {
  version: 1, name: 'f', config: '/c.moslora.yaml', configSha256: 'd'.repeat(64), methods: ['lora', 'moslora'], seeds: [1, 2],
  backend: 'wasm', schedule: { atOnce: 1, coresPerRun: 2 }, runs: [], report: 'report.md', figures: [],
};

describe('A/B figures', () => {
  it('the band at each step: the mean over the seeds that logged it, their lowest and highest', () => {
    const points = band([
      [{ step: 10, value: 3 }, { step: 20, value: 2 }],
      [{ step: 10, value: 5 }, { step: 20, value: 1 }, { step: 30, value: 0.5 }],
    ]);
    assert.deepEqual(points, [
      { step: 10, mean: 4, low: 3, high: 5, n: 2 },
      { step: 20, mean: 1.5, low: 1, high: 2, n: 2 },
      { step: 30, mean: 0.5, low: 0.5, high: 0.5, n: 1 },
    ]);
  });

  it('ticks are round numbers 1, 2 or 5 × 10^k apart that cover the range', () => {
    assert.deepEqual(ticks(0, 150), [0, 50, 100, 150]);
    assert.deepEqual(ticks(3.71, 4.02), [3.8, 3.9, 4]);
    assert.deepEqual(ticks(0.2, 0.35), [0.2, 0.25, 0.3, 0.35]);
    assert.deepEqual(ticks(-0.031, 0.012), [-0.03, -0.02, -0.01, 0, 0.01]);
  });

  it('learning curves: a mean line and a band per method, in the report order; paired differences: a dot per seed', () => {
    const report = computeReport(manifest, [run('lora', 1, [4, 3, 2], 2.5), run('lora', 2, [4.2, 3.1, 2.2], 2.6), run('moslora', 1, [4, 2.9, 1.9], 2.4), run('moslora', 2, [4.1, 3, 2], 2.5)]);
    const svg = curvesFigure(report, 'train')!;
    assert.equal(svg.match(/<polyline /g)?.length, 2, 'one mean line per method');
    assert.equal(svg.match(/<polygon /g)?.length, 2, 'one band per method');
    assert.ok(svg.indexOf('LoRA (2 seeds)') < svg.indexOf('MoSLoRA (2 seeds)'));
    // the band's outline: the highest values forward, the lowest back
    const outline = /<polygon points="([^"]+)"/.exec(svg)![1]!.split(' ');
    assert.equal(outline.length, 6);
    const paired = pairedFigure(report, 'evalLoss')!;
    assert.equal(paired.match(/<circle /g)?.length, 2, 'a dot per seed');
    assert.match(paired, /<title>seed 1: -0\.1\d*<\/title>/);
    assert.match(paired, /MoSLoRA − LoRA/);
  });

  it('no finished run: no figure', () => {
    assert.equal(curvesFigure(computeReport(manifest, [{ ...run('lora', 1, [1], 1), outcome: 'unfinished' }]), 'train'), null);
    assert.equal(pairedFigure(computeReport(manifest, []), 'evalLoss'), null);
  });
});
