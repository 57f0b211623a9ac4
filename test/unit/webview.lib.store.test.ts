// The panel's run store (webview/lib/store.ts): a run's records as curves, a resumed run's
// repeated steps, the epoch, and NaN as a gap.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RunData } from '../../webview/lib/store';

describe('run store', () => {
  it('a resumed run replaces the steps it logs again', () => {
    const run = new RunData('r');
    run.addRecords([1, 2, 3, 4].map((step) => ({ step, kind: 'train', loss: 10 - step })));
    run.addRecords([{ step: 4, kind: 'eval', eval_loss: 5 }]);
    run.addRecords([3, 4, 5].map((step) => ({ step, kind: 'train', loss: 20 - step })));
    assert.deepEqual(run.column('train', 'loss')!.steps, [1, 2, 3, 4, 5]);
    assert.deepEqual(run.column('train', 'loss')!.values, [9, 8, 17, 16, 15]);
    assert.deepEqual(run.records.map((r) => `${r.kind}${r.step}`), ['train1', 'train2', 'eval4', 'train3', 'train4', 'train5']);
    assert.equal(run.best('train', 'loss', true), 8);
  });
  it('the epoch is progress, not a curve: no column, the newest one on request', () => {
    const run = new RunData('r');
    assert.equal(run.epoch(), undefined);
    run.addRecords([{ step: 1, kind: 'train', loss: 3, epoch: 0 }, { step: 2, kind: 'eval', eval_loss: 2 }, { step: 3, kind: 'train', loss: 2, epoch: 1 }]);
    assert.equal(run.column('train', 'epoch'), undefined);
    assert.deepEqual([...run.columns.keys()], ['train/loss', 'eval/eval_loss']);
    assert.equal(run.epoch(), 1);
  });
  it('null (a NaN on the wire) is a gap, not a zero', () => {
    const run = new RunData('r');
    run.addRecords([{ step: 1, kind: 'train', loss: null }]);
    assert.ok(Number.isNaN(run.column('train', 'loss')!.values[0]));
    assert.equal(run.last('train', 'loss'), undefined);
  });
});
