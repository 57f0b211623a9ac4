// Run ids for the panel (extension/runIds.ts): one per run folder, two folders of the same name
// told apart, and only ids it handed out lead back to a folder.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RunIds } from '../../extension/runIds';

describe('RunIds', () => {
  it('names runs by folder, tells two runs folders apart, and knows only the ids it handed out', () => {
    const ids = new RunIds();
    assert.equal(ids.idOf('/a/runs/tiny-1'), 'tiny-1');
    assert.equal(ids.idOf('/b/runs/tiny-1'), 'tiny-1~2');
    assert.equal(ids.idOf('/a/runs/tiny-1'), 'tiny-1');
    assert.equal(ids.dirOf('tiny-1~2'), '/b/runs/tiny-1');
    assert.equal(ids.dirOf('../../etc'), undefined);
    assert.equal(ids.dirOf('job-1'), undefined);
  });
});
