// How numbers read in the panel (protocol/format.ts): an axis's ticks in one form.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatNumber, formatTicks } from '../../protocol/format';

describe('formatTicks', () => {
  it('writes a learning-rate axis in exponent form throughout, zero as 0', () => {
    assert.deepEqual(formatTicks([0, 5e-4, 1e-3, 1.5e-3, 2e-3]), ['0', '5.0e-4', '1.0e-3', '1.5e-3', '2.0e-3']);
  });

  it('adds digits until the ticks read apart', () => {
    assert.deepEqual(formatTicks([1e-4, 1.25e-4, 1.5e-4]), ['1.00e-4', '1.25e-4', '1.50e-4']);
  });

  it('leaves an axis formatNumber writes without exponents as it writes it', () => {
    const ticks = [2, 2.5, 3, 3.5];
    assert.deepEqual(formatTicks(ticks), ticks.map((v) => formatNumber(v)));
    assert.deepEqual(formatTicks([0.001, 0.002]), ['0.001', '0.002']);
  });
});
