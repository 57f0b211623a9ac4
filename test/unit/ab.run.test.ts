// `moslora ab`'s runner (server/ab/run.ts, schedule.ts) with a fake trainer that records what it is
// asked: what it trains, what an interrupted A/B resumes, what it refuses, how it shares the cores.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { planRuns, runAb, type AbRequest } from '../../server/ab/run';
import { planSchedule } from '../../server/ab/schedule';
import { readManifest } from '../../server/ab/write';
import { plantManifest, plantRun } from '../helpers/ab-runs';
import type { TrainRequest } from '../../protocol/trainer';

const EXAMPLES = join(import.meta.dirname, '..', '..', 'examples');
const TRAINER = join(import.meta.dirname, '..', 'fixtures', 'trainers', 'ab-planting.mjs');
const GiB = 1024 ** 3;

let dir: string;
let config: string;
let log: string;

interface Logged {
  request: TrainRequest;
  existed: boolean;
}

const logged = async (): Promise<Logged[]> =>
  existsSync(log) ? (await readFile(log, 'utf8')).trim().split('\n').map((line) => JSON.parse(line) as Logged) : [];

function request(overrides: Partial<AbRequest> = {}): AbRequest {
  return {
    configPath: config, methods: ['lora', 'moslora'], seeds: 2, runsDir: join(dir, 'runs'), parallel: 'auto',
    resolveAuto: () => Promise.reject(new Error('the config names its backend: auto is not resolved')),
    trainer: { module: TRAINER }, ...overrides,
  };
}

const CONFIG_TEXT = [
  `model: ${join(EXAMPLES, 'tiny-model')}`, 'method: moslora', 'r: 4', 'alpha: 8', 'target_modules: [q_proj, v_proj]',
  'data:', `  train: ${join(EXAMPLES, 'tiny-task', 'train.jsonl')}`, '  max_length: 32',
  'training:', '  max_steps: 6', '  batch_size: 4', '  seed: 42', 'backend: wasm', '',
].join('\n');

describe('moslora ab: what it trains', () => {
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'moslora-ab-run-'));
    log = join(dir, 'trainer.log');
    process.env.AB_TRAINER_LOG = log;
  });
  after(async () => {
    delete process.env.AB_TRAINER_LOG;
    await rm(dir, { recursive: true, force: true });
  });
  beforeEach(async () => {
    await rm(join(dir, 'runs'), { recursive: true, force: true });
    await rm(log, { force: true });
    config = join(dir, 'tiny.moslora.yaml');
    await writeFile(config, CONFIG_TEXT);
  });

  it("trains each method × seed as the config says but for method, training.seed and one worker, then writes the report", async () => {
    const outcome = await runAb(request());
    const abDir = join(dir, 'runs', 'ab-tiny');
    assert.equal(outcome.abDir, abDir);
    const requests = (await logged()).map((l) => l.request).sort((a, b) => a.runDir!.localeCompare(b.runDir!));
    assert.deepEqual(requests.map((r) => [r.runDir, r.overrides, r.backend, r.configPath]), [
      [join(abDir, 'lora-seed42'), { method: 'lora', seed: 42, workers: 1 }, 'wasm', config],
      [join(abDir, 'lora-seed43'), { method: 'lora', seed: 43, workers: 1 }, 'wasm', config],
      [join(abDir, 'moslora-seed42'), { method: 'moslora', seed: 42, workers: 1 }, 'wasm', config],
      [join(abDir, 'moslora-seed43'), { method: 'moslora', seed: 43, workers: 1 }, 'wasm', config],
    ]);
    assert.ok(requests.every((r) => r.cores === outcome.manifest.schedule.coresPerRun));
    assert.equal(outcome.trained, 4);
    assert.deepEqual(outcome.unfinished, []);
    assert.equal(outcome.manifest.configSha256, createHash('sha256').update(CONFIG_TEXT).digest('hex'));
    assert.deepEqual(outcome.manifest.seeds, [42, 43]);
    // the fake's eval losses: MoSLoRA 0.02 lower on every seed
    assert.equal(outcome.report.comparisons[0]!.verdict, 'lower');
    assert.ok(Math.abs(outcome.report.comparisons[0]!.differences.evalLoss!.mean + 0.02) < 1e-12);
    assert.match(await readFile(outcome.reportFile, 'utf8'), /^# A\/B: LoRA vs MoSLoRA/);
    assert.ok(!existsSync(join(abDir, '.lock')), 'the lock is released');
  });

  it('an interrupted A/B trains only what it lacks: finished runs untouched, a stopped run resumed, one without a checkpoint started again', async () => {
    const abDir = join(dir, 'runs', 'ab-tiny');
    const sha = createHash('sha256').update(CONFIG_TEXT).digest('hex');
    await plantManifest(abDir, config, sha, ['lora', 'moslora'], [42, 43]);
    const values = { trainLoss: 2.5, evalLoss: 2.4, accuracy: 0.3, stepSeconds: 0.1 };
    const finished = await plantRun(abDir, { method: 'lora', seed: 42, trainable: 100, ...values });
    await plantRun(abDir, { method: 'lora', seed: 43, trainable: 100, ...values, state: 'cancelled' });
    await plantRun(abDir, { method: 'moslora', seed: 43, trainable: 104, ...values, state: 'failed' });
    // started, but stopped before its first checkpoint
    await mkdir(join(abDir, 'moslora-seed42'), { recursive: true });
    await writeFile(join(abDir, 'moslora-seed42', 'metrics.jsonl'), '{"step":1,"kind":"train","loss":9}\n');
    const files = ['metrics.jsonl', 'summary.json', 'config.yaml'];
    const before = await Promise.all(files.map(async (f) => ({ text: await readFile(join(finished, f), 'utf8'), mtime: (await stat(join(finished, f))).mtimeMs })));

    assert.deepEqual((await planRuns(abDir, await readManifest(abDir))).map((r) => [r.method, r.seed, r.action]), [
      ['lora', 42, 'done'], ['lora', 43, 'resume'], ['moslora', 42, 'restart'], ['moslora', 43, 'failed'],
    ]);
    const outcome = await runAb(request({ seeds: 3 }));
    const requests = (await logged()).sort((a, b) => (a.request.resumeRunDir ?? a.request.runDir)!.localeCompare((b.request.resumeRunDir ?? b.request.runDir)!));
    assert.deepEqual(requests.map((l) => [l.request.resumeRunDir ?? null, l.request.runDir ?? null, l.request.overrides?.seed, l.existed]), [
      [join(abDir, 'lora-seed43'), null, 43, true],
      [null, join(abDir, 'lora-seed44'), 44, false],
      [null, join(abDir, 'moslora-seed42'), 42, false],
      [null, join(abDir, 'moslora-seed44'), 44, false],
    ]);
    const after = await Promise.all(files.map(async (f) => ({ text: await readFile(join(finished, f), 'utf8'), mtime: (await stat(join(finished, f))).mtimeMs })));
    assert.deepEqual(after, before, 'the finished run is not touched');
    assert.deepEqual(outcome.manifest.seeds, [42, 43, 44], 'a third seed joins the two');
    assert.equal(outcome.report.runs.find((r) => r.method === 'moslora' && r.seed === 43)!.outcome, 'failed');
  });

  it('refuses to mix runs of two texts of the config', async () => {
    await runAb(request());
    await writeFile(config, CONFIG_TEXT.replace('r: 4', 'r: 8'));
    await assert.rejects(runAb(request()), /ab\.json: this A\/B trained .*tiny\.moslora\.yaml when its text was different .*Restore the config, or give a new --name for a new A\/B$/);
  });

  it('refuses to start while another moslora ab holds the A/B', async () => {
    const abDir = join(dir, 'runs', 'ab-tiny');
    await mkdir(abDir, { recursive: true });
    await writeFile(join(abDir, '.lock'), String(process.ppid));
    await assert.rejects(runAb(request()), new RegExp(`another moslora ab \\(process ${process.ppid}\\) is training this A/B`));
    assert.deepEqual(await logged(), []);
  });

  it('a cancel stops the runs with their checkpoints, and the next call resumes them', { timeout: 60_000 }, async () => {
    process.env.AB_TRAINER_WAIT = '1';
    const controller = new AbortController();
    const running = runAb(request({
      parallel: 2, signal: controller.signal,
      onEvent: (event) => {
        if (event.type === 'run' && event.update.job.state === 'training') controller.abort();
      },
    }));
    const outcome = await running.finally(() => delete process.env.AB_TRAINER_WAIT);
    assert.equal(outcome.cancelled, true);
    assert.equal(outcome.trained, 0);
    assert.equal(outcome.unfinished.length, 4);
    assert.ok(outcome.unfinished.every((run) => run.state === 'cancelled'));
    await rm(log);
    const resumed = await runAb(request());
    assert.equal(resumed.trained, 4);
    const requests = await logged();
    // the two that had started resume from their checkpoints; the two still queued start afresh
    assert.equal(requests.filter((l) => l.request.resumeRunDir).length, 2);
    assert.equal(requests.filter((l) => l.request.runDir).length, 2);
  });
});

describe('moslora ab: how it shares the machine', () => {
  const machine = { cores: 2, freeBytes: 16 * GiB, runBytes: 1 * GiB };

  it('one run at a time where the products use the cores (wasm on MLAS), with all of them', () => {
    assert.deepEqual(planSchedule({ ...machine, setting: 'auto', runs: 6, backend: 'wasm', mlas: true }), {
      atOnce: 1, coresPerRun: 2, reason: 'one run at a time, its products on 2 cores (MLAS): faster here than runs side by side',
    });
  });

  it('one run per core where each run is single-threaded, as many as memory holds', () => {
    assert.equal(planSchedule({ ...machine, cores: 8, setting: 'auto', runs: 6, backend: 'wasm', mlas: false }).atOnce, 6);
    const tight = planSchedule({ ...machine, cores: 8, freeBytes: 4 * GiB, setting: 'auto', runs: 6, backend: 'cpu', mlas: false });
    assert.deepEqual([tight.atOnce, tight.coresPerRun], [3, 2]);
    assert.match(tight.reason, /3 runs at a time, one core each, as memory allows \(each needs an estimated 1\.0 GiB; 75% of the 4\.0 GiB free holds 3\)/);
  });

  it('--parallel is taken as asked, memory permitting; a GPU backend trains one run at a time', () => {
    assert.deepEqual(planSchedule({ ...machine, setting: 2, runs: 6, backend: 'wasm', mlas: true }), { atOnce: 2, coresPerRun: 1, reason: '2 runs at a time (--parallel 2)' });
    assert.equal(planSchedule({ ...machine, freeBytes: 2 * GiB, setting: 2, runs: 6, backend: 'wasm', mlas: true }).atOnce, 1);
    assert.equal(planSchedule({ ...machine, setting: 4, runs: 6, backend: 'webgpu', mlas: false }).atOnce, 1);
  });
});
