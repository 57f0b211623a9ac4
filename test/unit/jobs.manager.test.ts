// The queue of trainer processes (server/jobs/manager.ts), driving the fake trainers of
// test/fixtures/trainers/: records streamed and throttled, one job at a time, cancel, a native
// crash, kill -9, and a trainer that ignores cancel.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { JobManager } from '../../server/jobs/manager';
import type { JobUpdate } from '../../protocol/editor';

const fixture = (name: string) => join(import.meta.dirname, '..', 'fixtures', 'trainers', `${name}.mjs`);

function manager(trainer: string, options: { cancelGraceMs?: number; throttleMs?: number } = {}) {
  const updates: JobUpdate[] = [];
  const waiters: { test: (u: JobUpdate) => boolean; resolve: (u: JobUpdate) => void }[] = [];
  const jobs = new JobManager({
    trainerModule: fixture(trainer),
    ...options,
    onUpdate: (update) => {
      updates.push(update);
      for (const waiter of [...waiters]) {
        if (waiter.test(update)) {
          waiters.splice(waiters.indexOf(waiter), 1);
          waiter.resolve(update);
        }
      }
    },
  });
  const until = (test: (u: JobUpdate) => boolean) =>
    new Promise<JobUpdate>((resolve) => {
      const seen = updates.find(test);
      if (seen) resolve(seen);
      else waiters.push({ test, resolve });
    });
  return { jobs, updates, until };
}

describe('training jobs in their own processes', () => {
  it('streams every record, throttled to a few updates per second', async () => {
    const { jobs, updates, until } = manager('steady', { throttleMs: 200 });
    const job = jobs.start({ configPath: 'a.moslora.yaml' });
    const started = Date.now();
    const done = await until((u) => u.job.id === job.id && u.job.summary !== undefined);
    const seconds = (Date.now() - started) / 1000;
    const records = updates.flatMap((u) => u.metrics).map((m) => m.step);
    assert.deepEqual(records, Array.from({ length: 60 }, (_, i) => i + 1), 'no record lost, in order');
    const carrying = updates.filter((u) => u.metrics.length > 0).length;
    assert.ok(carrying <= Math.ceil(seconds / 0.2) + 3, `${carrying} metric updates in ${seconds.toFixed(2)} s`);
    assert.equal(done.job.summary?.steps, 60);
  });

  it('runs one job at a time: the next waits in the queue and says so; a queued job cancels at once', async () => {
    const { jobs, until } = manager('steady');
    const first = jobs.start({ configPath: 'first.moslora.yaml' });
    const second = jobs.start({ configPath: 'second.moslora.yaml' });
    const third = jobs.start({ configPath: 'third.moslora.yaml' });
    assert.equal(jobs.get(second.id)!.state, 'queued');
    assert.match(jobs.get(third.id)!.message!, /queued: 1 job\(s\) running, 1 ahead; one GPU job runs at a time/);
    jobs.cancel(third.id);
    assert.equal(jobs.get(third.id)!.state, 'cancelled');
    await until((u) => u.job.id === first.id && u.job.state === 'done');
    await until((u) => u.job.id === second.id && u.job.state === 'training');
    await until((u) => u.job.id === second.id && u.job.state === 'done');
  });

  it('cancel reaches the trainer, which saves and reports a cancel', async () => {
    process.env.STEADY_STEPS = '100000';
    const { jobs, until } = manager('steady');
    const job = jobs.start({ configPath: 'a.moslora.yaml' });
    await until((u) => u.job.id === job.id && u.job.step >= 55);
    jobs.cancel(job.id);
    const cancelled = await until((u) => u.job.state === 'cancelled');
    assert.equal(cancelled.job.message, 'cancelled by the user');
    delete process.env.STEADY_STEPS;
  });

  it('a native crash becomes a failed job with the trainer’s last output', async () => {
    const { jobs, until } = manager('crash');
    jobs.start({ configPath: 'a.moslora.yaml' });
    const failed = await until((u) => u.job.state === 'failed');
    assert.match(failed.job.message!, /the trainer was killed by SIGABRT at step 3; its last output:/);
    assert.match(failed.job.message!, /CUDA error: out of memory/);
  });

  it('kill -9 of the trainer fails the job, and the manager keeps serving new jobs', async () => {
    process.env.STEADY_STEPS = '100000';
    const { jobs, until } = manager('steady');
    const job = jobs.start({ configPath: 'a.moslora.yaml' });
    const running = await until((u) => u.job.id === job.id && u.job.lastOutput.some((l) => l.includes('pid')));
    const pid = Number(/pid (\d+)/.exec(running.job.lastOutput.join('\n'))![1]);
    process.kill(pid, 'SIGKILL');
    const failed = await until((u) => u.job.id === job.id && u.job.state === 'failed');
    assert.match(failed.job.message!, /the trainer was killed by SIGKILL at step \d+/);
    delete process.env.STEADY_STEPS;
    const next = jobs.start({ configPath: 'b.moslora.yaml' });
    await until((u) => u.job.id === next.id && u.job.state === 'done');
  });

  it('a trainer that ignores cancel is killed after the grace period, and says so', async () => {
    const { jobs, until } = manager('stubborn', { cancelGraceMs: 300 });
    const job = jobs.start({ configPath: 'a.moslora.yaml' });
    await until((u) => u.job.state === 'training');
    jobs.cancel(job.id);
    const cancelled = await until((u) => u.job.state === 'cancelled');
    assert.match(cancelled.job.message!, /did not stop in time and was killed at step 7; resume starts from its last checkpoint/);
  });
});
