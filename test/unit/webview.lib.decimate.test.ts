// The panel's M4 decimation (webview/lib/decimate.ts) on a long curve with spikes and a gap.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { lowerBound, m4 } from '../../webview/lib/decimate';

describe('M4 decimation', () => {
  it('keeps every point when there are few, and each column\'s extremes when many', () => {
    const xs = Array.from({ length: 10_000 }, (_, i) => i);
    const ys = xs.map((i) => Math.sin(i / 50) + (i === 4321 ? 10 : 0) + (i === 777 ? -10 : 0));
    assert.deepEqual(m4(xs, [ys], 0, 20, 100), Array.from({ length: 20 }, (_, i) => i));
    const picked = m4(xs, [ys], 0, xs.length, 100);
    assert.ok(picked.length <= 4 * 100 && picked.length >= 200, `${picked.length}`);
    assert.ok(picked.includes(4321) && picked.includes(777), 'spikes kept');
    assert.equal(picked[0], 0);
    assert.equal(picked.at(-1), 9999);
    assert.deepEqual(picked, [...picked].sort((a, b) => a - b));
    const withGap = ys.map((y, i) => (i === 5000 ? Number.NaN : y));
    assert.ok(m4(xs, [withGap], 0, xs.length, 100).includes(5000), 'a gap stays visible');
    assert.equal(lowerBound(xs, 2500.5), 2501);
  });
});
