// The editor's A/B task (server/tasks/ab.ts): the CLI arguments it builds, the progress lines it
// reads back (server/ab/progress.ts), and the run listing that tags an A/B's runs.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { abProgressTracker, parseProgressLine, PROGRESS_PREFIX } from '../../server/ab/progress';
import type { AbEvent, PlannedRun } from '../../server/ab/run';
import { abCliArgs, listRunsWithAb } from '../../server/tasks/ab';
import type { JobInfo } from '../../protocol/editor';
import { plantManifest, plantRun } from '../helpers/ab-runs';

describe('abCliArgs', () => {
  it('names the config, the methods in order, the seeds, the runs folder and both JSON outputs', () => {
    assert.deepEqual(abCliArgs('/w/tiny.moslora.yaml', { methods: ['lora', 'moslora', 'dora'], seeds: 4, runsDir: '/w/out' }), [
      'ab', '/w/tiny.moslora.yaml', '--methods', 'lora,moslora,dora', '--seeds', '4', '--runs-dir', '/w/out', '--json', '--progress-json',
    ]);
  });

  it('leaves the runs folder to the config when the editor names none', () => {
    assert.deepEqual(abCliArgs('/w/c.moslora.yaml', { methods: ['moslora', 'moslora+dora'], seeds: 2 }), [
      'ab', '/w/c.moslora.yaml', '--methods', 'moslora,moslora+dora', '--seeds', '2', '--json', '--progress-json',
    ]);
  });
});

describe('A/B progress', () => {
  const planned = (method: 'lora' | 'moslora', seed: number, action: PlannedRun['action']): PlannedRun => ({ method, seed, runDir: `/ab/${method}-seed${seed}`, action });
  const update = (run: PlannedRun, state: JobInfo['state'], step: number): AbEvent => ({
    type: 'run', run, update: { job: { id: 1, request: { configPath: 'c' }, state, step, totalSteps: 10, lastOutput: [] }, metrics: [], mixers: [] },
  });

  it('counts runs finished earlier as done, each run that finishes once (a cancelled one not), and reports the step of the run that reported', () => {
    const runs = [planned('lora', 0, 'done'), planned('lora', 1, 'train'), planned('moslora', 0, 'resume'), planned('moslora', 1, 'train')];
    const track = abProgressTracker();
    const plan = { type: 'plan', abDir: '/ab', manifest: {} as never, schedule: {} as never, runs } as AbEvent;
    assert.deepEqual(track(plan), { done: 1, total: 4 });
    assert.deepEqual(track(update(runs[1]!, 'training', 3)), { done: 1, total: 4, current: { method: 'lora', seed: 1, step: 3, totalSteps: 10 } });
    assert.equal(track(update(runs[1]!, 'training', 3)), null, 'an update that changes nothing shown is not sent');
    assert.deepEqual(track(update(runs[1]!, 'done', 10))?.done, 2);
    assert.deepEqual(track(update(runs[1]!, 'done', 10)), null, 'a run that ended counts once');
    assert.deepEqual(track(update(runs[2]!, 'cancelled', 6))?.done, 2, 'a cancelled run resumes next time: not done');
    assert.deepEqual(track(update(runs[3]!, 'failed', 2))?.done, 3);
    assert.equal(track({ type: 'stopping' }), null);
  });

  it('reads back exactly the lines the CLI writes, and nothing else', () => {
    const progress = { done: 2, total: 4, current: { method: 'moslora', seed: 1, step: 5, totalSteps: 10 } };
    assert.deepEqual(parseProgressLine(`${PROGRESS_PREFIX}${JSON.stringify(progress)}`), progress);
    assert.equal(parseProgressLine('lora seed 0 step 3/10 loss 2.1000'), null);
    assert.equal(parseProgressLine(`${PROGRESS_PREFIX}{"done":`), null);
    assert.equal(parseProgressLine(`${PROGRESS_PREFIX}{"step":3}`), null);
  });
});

describe('listRunsWithAb', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'moslora-ab-list-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it("lists the runs folder's own runs and each A/B's, tagged with the A/B's name, method and seed", async () => {
    const runs = join(dir, 'runs');
    await mkdir(join(runs, 'plain'), { recursive: true });
    await writeFile(join(runs, 'plain', 'config.yaml'), 'method: lora\n');
    const abDir = join(runs, 'ab-planted');
    await plantManifest(abDir, '/w/c.moslora.yaml', '0'.repeat(64), ['lora', 'moslora'], [0, 1]);
    for (const method of ['lora', 'moslora'] as const) for (const seed of [0, 1]) await plantRun(abDir, { method, seed, trainLoss: 1, evalLoss: 1, accuracy: 0.5, trainable: 10, stepSeconds: 1 });
    const listed = await listRunsWithAb(runs);
    assert.deepEqual(listed.map((r) => [r.name, r.ab ?? null]).sort((a, b) => String(a[0]).localeCompare(String(b[0]))), [
      ['lora-seed0', { name: 'planted', method: 'lora', seed: 0 }],
      ['lora-seed1', { name: 'planted', method: 'lora', seed: 1 }],
      ['moslora-seed0', { name: 'planted', method: 'moslora', seed: 0 }],
      ['moslora-seed1', { name: 'planted', method: 'moslora', seed: 1 }],
      ['plain', null],
    ]);
  });

  it('lists the runs of an A/B whose ab.json does not parse, untagged, and says why', async () => {
    const runs = join(dir, 'broken');
    const abDir = join(runs, 'ab-broken');
    await plantRun(abDir, { method: 'lora', seed: 0, trainLoss: 1, evalLoss: 1, accuracy: 0.5, trainable: 10, stepSeconds: 1 });
    await writeFile(join(abDir, 'ab.json'), '{"version": 1');
    const warnings: string[] = [];
    const listed = await listRunsWithAb(runs, (w) => warnings.push(w));
    assert.deepEqual(listed.map((r) => [r.name, r.ab ?? null]), [['lora-seed0', null]]);
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]!, /ab-broken\/ab\.json: not JSON.*listed without their A\/B/);
  });

  it('says so and goes on when ab.json is not a regular file (a FIFO would stall every read of the server)', async () => {
    const runs = join(dir, 'fifo');
    const abDir = join(runs, 'ab-fifo');
    await plantRun(abDir, { method: 'lora', seed: 0, trainLoss: 1, evalLoss: 1, accuracy: 0.5, trainable: 10, stepSeconds: 1 });
    execFileSync('mkfifo', [join(abDir, 'ab.json')]);
    const warnings: string[] = [];
    assert.deepEqual(await listRunsWithAb(runs, (w) => warnings.push(w)), []);
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]!, /ab-fifo\/ab\.json: is a FIFO \(named pipe\), not a regular file.*its runs are not listed/);
  });
});
