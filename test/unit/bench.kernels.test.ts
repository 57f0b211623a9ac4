// The kernels bench's goal figure: the mean of a side's fastest tenth of steps.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fastestTenth } from '../../bench/kernels';

test('fastestTenth averages the fastest tenth of the steps, whatever their order, and leaves them as they were', () => {
  const times = [50, 21, 80, 19, 44, 45, 20, 61, 70, 33, 40, 41, 42, 43, 46, 47, 48, 49, 52, 53];
  const before = [...times];
  assert.equal(fastestTenth(times), (19 + 20) / 2);
  assert.deepEqual(times, before);
});

test('fastestTenth takes at least one step, and rounds a tenth to the nearest count', () => {
  assert.equal(fastestTenth([30, 10, 20]), 10);
  assert.equal(fastestTenth(Array.from({ length: 25 }, (_, i) => 100 - i)), (76 + 77 + 78) / 3);
});
