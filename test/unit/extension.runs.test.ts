// Runs on disk as the extension lists them (extension/runs.ts): a config's runs folder from its
// text, and a run folder as the panel shows it, with or without its summary.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { finishedPhase, listingOf, runsDirOf } from '../../extension/runs';
import { RunIds } from '../../extension/runIds';

describe('runs on disk', () => {
  it("finds a config's runs folder from its output.runs_dir, relative to the config", () => {
    assert.equal(runsDirOf('model: m\n', '/ws/a/x.moslora.yaml'), '/ws/a/runs');
    assert.equal(runsDirOf('output:\n  runs_dir: ../out\n', '/ws/a/x.moslora.yaml'), '/ws/out');
    assert.equal(runsDirOf('{"output": {"runs_dir": "/abs"}}', '/ws/x.moslora.json'), '/abs');
    assert.equal(runsDirOf('output: [unclosed', '/ws/x.moslora.yaml'), '/ws/runs');
  });

  it('lists a finished run with its summary, and a run without one as stopped', () => {
    const ids = new RunIds();
    const done = listingOf(
      { runDir: '/ws/runs/a', name: 'a', summary: { state: 'done', backend: 'wasm', device: 'CPU', method: 'moslora', steps: 60, totalSteps: 60 }, checkpoints: [60], lastStep: 60 },
      ids,
      undefined,
    );
    assert.deepEqual(done, { runId: 'a', name: 'a', method: 'moslora', state: { runId: 'a', name: 'a', phase: 'done', step: 60, total: 60, backend: 'wasm', device: 'CPU', startedAt: null } });
    const crashed = listingOf({ runDir: '/ws/runs/b', name: 'b', summary: null, checkpoints: [30], lastStep: 42 }, ids, 'lora');
    assert.equal(crashed.method, 'lora');
    assert.equal(crashed.state?.phase, 'stopped');
    assert.equal(crashed.state?.step, 42);
    assert.match(crashed.state?.reason ?? '', /without a summary/);
    assert.equal(finishedPhase({ state: 'cancelled' }), 'stopped');
    assert.equal(finishedPhase({ state: 'failed' }), 'failed');
  });
});
