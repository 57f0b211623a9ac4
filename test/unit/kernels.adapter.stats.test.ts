// Mixer statistics (kernels/adapter/stats.ts) on matrices whose singular values and distance from
// the identity are known.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { mixerStats } from '../../kernels/adapter/stats';

describe('mixer statistics', () => {
  it('the identity is at distance 0 from itself, with all singular values 1', () => {
    const stats = mixerStats([1, 0, 0, 0, 1, 0, 0, 0, 1], 3);
    assert.equal(stats.distanceFromIdentity, 0);
    stats.singularValues.forEach((s) => assert.ok(Math.abs(s - 1) < 1e-12));
  });

  it('singular values of a rotated diagonal matrix, largest first; ‖M − I‖_F', () => {
    // M = Rθ · diag(3, 1): singular values 3 and 1 whatever θ is.
    const c = Math.cos(0.7);
    const s = Math.sin(0.7);
    const m = [c * 3, -s * 1, s * 3, c * 1];
    const stats = mixerStats(m, 2);
    assert.ok(Math.abs(stats.singularValues[0]! - 3) < 1e-9);
    assert.ok(Math.abs(stats.singularValues[1]! - 1) < 1e-9);
    const expected = Math.hypot(m[0]! - 1, m[1]!, m[2]!, m[3]! - 1);
    assert.ok(Math.abs(stats.distanceFromIdentity - expected) < 1e-12);
  });

  it('rejects a value count that is not r²', () => {
    assert.throws(() => mixerStats([1, 2, 3], 2), /expected 2×2 = 4 values, got 3/);
  });
});
