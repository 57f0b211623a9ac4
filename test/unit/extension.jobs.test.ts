// The extension's view of training jobs (extension/jobs.ts), without VS Code: server states in the
// panel's words, the tracker that follows a job to its run folder, progress and ETA, and the status
// bar's text.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { JobTracker, phaseOf, Progress, runStateOf, statusOf } from '../../extension/jobs';
import { RunIds } from '../../extension/runIds';
import type { JobInfo, JobUpdate } from '../../protocol/editor';
import { RUN_PHASES } from '../../protocol/webview';
import type { MetricRecord } from '../../protocol/records';

function job(patch: Partial<JobInfo> = {}): JobInfo {
  return { id: 1, request: { configPath: '/ws/tiny.moslora.yaml' }, state: 'queued', step: 0, totalSteps: 0, lastOutput: [], ...patch };
}
const update = (j: JobInfo, metrics: MetricRecord[] = []): JobUpdate => ({ job: j, metrics, mixers: [] });
const train = (step: number, loss: number, wall: number): MetricRecord => ({ step, kind: 'train', loss, wall_s: wall });

describe("job states in the webview's words", () => {
  it('maps every server state to a RunPhase; a cancelled job is one the user stopped', () => {
    const states: JobInfo['state'][] = ['queued', 'loading', 'training', 'saving', 'done', 'cancelled', 'failed'];
    assert.deepEqual(states.map(phaseOf), ['queued', 'loading', 'training', 'saving', 'done', 'stopped', 'failed']);
    for (const state of states) assert.ok((RUN_PHASES as readonly string[]).includes(phaseOf(state)));
  });
});

describe('JobTracker', () => {
  it('follows a job from queued (provisional id) to its run folder, with the backend the trainer started', () => {
    let now = 1000;
    const tracker = new JobTracker(new RunIds(), () => now);
    const queued = tracker.apply(update(job({ message: 'queued: 1 job(s) running' })), 'auto');
    assert.equal(queued.tracked.runId, 'job-1');
    assert.equal(queued.tracked.name, 'tiny');
    assert.equal(runStateOf(queued.tracked).phase, 'queued');
    assert.equal(runStateOf(queued.tracked).startedAt, null);
    assert.equal(runStateOf(queued.tracked).reason, 'queued: 1 job(s) running');

    now = 2000;
    const loading = tracker.apply(update(job({ state: 'loading', runDir: '/ws/runs/tiny-1', backend: 'wasm', device: 'CPU (WebAssembly, SIMD)' })));
    assert.equal(loading.runIdChanged, true);
    assert.equal(loading.tracked.runId, 'tiny-1');
    assert.equal(tracker.runIds.dirOf('tiny-1'), '/ws/runs/tiny-1');
    const state = runStateOf(loading.tracked);
    assert.deepEqual([state.name, state.phase, state.backend, state.device, state.startedAt], ['tiny-1', 'loading', 'wasm', 'CPU (WebAssembly, SIMD)', 2000]);
    assert.equal(tracker.byRunId('tiny-1'), loading.tracked);
  });

  it('reports the end once, the summary when it comes, and never goes back from a final state', () => {
    const tracker = new JobTracker();
    tracker.apply(update(job({ state: 'training', runDir: '/r/a', step: 5, totalSteps: 10 })));
    const done = tracker.apply(update(job({ state: 'done', runDir: '/r/a', step: 10, totalSteps: 10 })));
    assert.deepEqual([done.finished, done.summarized], [true, false]);
    const summary = { runDir: '/r/a', state: 'done', backend: 'cpu', device: 'CPU', threads: 1, method: 'moslora', steps: 10, totalSteps: 10, trainableParameters: 1, baseParameters: 2, finalLoss: 1, evalLoss: null, accuracy: null, medianStepSeconds: null, wallSeconds: 3 } as const;
    const summarized = tracker.apply(update(job({ state: 'done', runDir: '/r/a', step: 10, totalSteps: 10, summary })));
    assert.deepEqual([summarized.finished, summarized.summarized], [false, true]);
    assert.equal(runStateOf(summarized.tracked).backend, 'cpu');
    // the answer to startTraining arriving after the notifications
    const late = tracker.apply(update(job({ state: 'loading', runDir: '/r/a' })));
    assert.equal(late.tracked.job.state, 'done');
    assert.deepEqual(tracker.active(), []);
  });

  it("marks unfinished jobs failed when the server goes, and keeps the next server's job 1 apart", () => {
    const tracker = new JobTracker();
    const first = tracker.apply(update(job({ state: 'training', runDir: '/r/a' }))).tracked;
    const lost = tracker.serverGone('the server exited');
    assert.deepEqual(lost, [first]);
    assert.equal(first.job.state, 'failed');
    assert.equal(runStateOf(first).reason, 'the server exited');
    const next = tracker.apply(update(job({ id: 1, state: 'queued' }))).tracked;
    assert.notEqual(next, first);
    assert.equal(next.runId, 'job-2.1');
    assert.equal(tracker.current(), next);
    assert.equal(tracker.all().length, 2);
  });

  it('picks the running job over a queued one, and the newest finished one when nothing runs', () => {
    const tracker = new JobTracker();
    const a = tracker.apply(update(job({ id: 1, state: 'training', runDir: '/r/a' }))).tracked;
    const b = tracker.apply(update(job({ id: 2, state: 'queued' }))).tracked;
    assert.equal(tracker.current(), a);
    tracker.apply(update(job({ id: 1, state: 'failed', runDir: '/r/a', message: 'out of memory' })));
    tracker.apply(update(job({ id: 2, state: 'cancelled', message: 'cancelled before it started' })));
    assert.equal(tracker.current(), b);
  });
});

describe('Progress and the status bar', () => {
  it('estimates steps per second over a window of logged steps, and starts again after a resume', () => {
    const progress = new Progress(3);
    assert.equal(progress.rate, undefined);
    progress.add([train(10, 3, 5), train(20, 2.5, 10)]);
    assert.equal(progress.rate, 2);
    assert.equal(progress.eta(20, 100), 40);
    assert.equal(progress.lastLoss, 2.5);
    progress.add([train(30, 2, 12), train(40, 1.5, 14)]); // window of 3: 20→40 in 4 s
    assert.equal(progress.rate, 5);
    progress.add([{ step: 40, kind: 'eval', eval_loss: 9, wall_s: 15 }]);
    assert.equal(progress.lastLoss, 1.5, 'eval records do not move the train loss');
    progress.add([train(5, 4, 100)]); // resumed from an earlier checkpoint
    assert.equal(progress.rate, undefined);
  });

  it('shows step/total, loss and ETA while training; queued and failed stand out', () => {
    const tracker = new JobTracker();
    const queued = tracker.apply(update(job())).tracked;
    assert.deepEqual([statusOf(queued).text, statusOf(queued).severity], ['$(clock) MoSLoRA: queued', 'warning']);
    const training = tracker.apply(update(job({ state: 'training', runDir: '/r/t', step: 20, totalSteps: 1200 }), [train(10, 3.21, 5), train(20, 3.1234, 10)])).tracked;
    assert.equal(statusOf(training).text, '$(sync~spin) MoSLoRA 20/1,200 · loss 3.123 · ETA 9:50');
    const failed = tracker.apply(update(job({ state: 'failed', runDir: '/r/t', step: 20, totalSteps: 1200, message: 'the trainer was killed by SIGKILL at step 20' }))).tracked;
    const view = statusOf(failed);
    assert.deepEqual([view.text, view.severity], ['$(error) MoSLoRA failed', 'error']);
    assert.match(view.tooltip, /SIGKILL/);
  });
});
