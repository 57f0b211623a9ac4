// The panel's run store (webview/lib/store.ts): a run's records as curves, a resumed run's
// repeated steps, the epoch, NaN as a gap; the run the pickers show, asked for once, and removed.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RunData, Store } from '../../webview/lib/store';
import type { RunState } from '../../protocol/webview';

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

describe('the runs the panel shows', () => {
  const state = (runId: string, phase: RunState['phase'] = 'training'): RunState => ({ runId, name: runId, phase, step: 1, total: 2, backend: 'wasm', device: 'CPU', startedAt: null });

  it('keeps the run picked while another reports its state; shows the newest when none is picked', () => {
    const store = new Store();
    store.setListing([{ runId: 'new', name: 'new' }, { runId: 'old', name: 'old' }]);
    assert.equal(store.currentRunId, 'new', 'nothing picked: the newest listed');
    store.currentRunId = 'old';
    store.setState(state('live'));
    assert.equal(store.currentRunId, 'old', "a live run's state does not take the picker away");
    assert.deepEqual(store.newestFirst().map((r) => r.runId), ['live', 'new', 'old'], 'a live run the list does not have yet comes first');
    assert.deepEqual(store.comparable().map((r) => r.runId), ['new', 'old', 'live']);
    const empty = new Store();
    empty.setState(state('first'));
    assert.equal(empty.currentRunId, 'first');
  });

  it('asks for a run once per page, and not for one the extension sent whole', () => {
    const store = new Store();
    assert.equal(store.needs('a'), true);
    assert.equal(store.needs('a'), false);
    store.addRecords('b', [{ step: 1, kind: 'train', loss: 1 }]);
    assert.equal(store.needs('b'), true, 'live records alone are not the whole run');
    store.addRecords('c', [{ step: 1, kind: 'train', loss: 1 }], true);
    assert.equal(store.needs('c'), false);
    store.setListing([{ runId: 'd', name: 'd', metrics: [] }]);
    assert.equal(store.needs('d'), false);
  });

  it('forgets a removed run, and shows the newest listed instead', () => {
    const store = new Store();
    store.setListing([{ runId: 'a', name: 'a', finalLoss: 2.5, resumable: true }, { runId: 'b', name: 'b' }]);
    assert.deepEqual([store.run('a').lastLoss(), store.run('a').resumable, store.run('b').resumable], [2.5, true, false]);
    store.currentRunId = 'b';
    store.remove('b');
    assert.deepEqual([store.currentRunId, store.listed, store.runs.has('b')], ['a', ['a'], false]);
    assert.equal(store.needs('b'), true, 'a run that comes back is asked for again');
  });

  it('the last logged loss is raw: the records first, then the summary', () => {
    const run = new RunData('r');
    run.finalLoss = 2.5;
    assert.equal(run.lastLoss(), 2.5);
    run.addRecords([{ step: 1, kind: 'train', loss: 3 }, { step: 2, kind: 'train', loss: 2.632 }]);
    assert.equal(run.lastLoss(), 2.632);
  });
});

describe('a restored page', () => {
  it('drops the runs of its saved state that the extension no longer lists, keeping a live one', () => {
    const store = new Store();
    store.setListing([{ runId: 'kept', name: 'kept' }, { runId: 'deleted', name: 'deleted' }, { runId: 'live', name: 'live' }]);
    store.currentRunId = 'deleted';
    store.markRestored();
    store.setState({ runId: 'live', name: 'live', phase: 'training', step: 1, total: 2, backend: 'wasm', device: 'CPU', startedAt: null });
    store.setListing([{ runId: 'kept', name: 'kept' }]);
    assert.deepEqual([...store.runs.keys()].sort(), ['kept', 'live']);
    assert.equal(store.currentRunId, 'kept', 'the run shown went: the newest listed instead');
    store.setListing([]);
    assert.ok(store.runs.has('kept'), 'only the first listing after the restore confirms: later ones keep what they do not list');
  });
});
