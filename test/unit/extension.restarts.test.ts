// The cap on restarting a crashed server (extension/restarts.ts), on a clock the test moves.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RestartBudget } from '../../extension/restarts';

describe('RestartBudget', () => {
  it('restarts 4 crashes within 3 minutes, refuses the 5th, and forgets crashes that left the window', () => {
    let now = 0;
    const budget = new RestartBudget(5, 180_000, () => now);
    for (let i = 1; i <= 4; i++) {
      now += 1000;
      assert.deepEqual(budget.crashed(), { restart: true, count: i });
    }
    now += 1000;
    assert.deepEqual(budget.crashed(), { restart: false, count: 5 });
    now += 180_000;
    assert.deepEqual(budget.crashed(), { restart: true, count: 1 });
    budget.reset();
    assert.deepEqual(budget.crashed(), { restart: true, count: 1 });
    assert.equal(budget.describeWindow(), '3 minutes');
  });
});
