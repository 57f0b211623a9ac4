// Runs on disk as the extension lists them (extension/runs.ts): a config's runs folder from its
// text, and a run folder as the panel shows it, with or without its summary.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { stringify } from 'yaml';
import { checkpointSteps, chooseMixerRun, chooseRun, finishedPhase, flatten, listingOf, newestFirst, readRunConfig, runsDirOf } from '../../extension/runs';
import { RunIds } from '../../extension/runIds';
import type { RunFolder } from '../../protocol/editor';
import type { RunListing, RunPhase } from '../../protocol/webview';

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
    const crashed = listingOf({ runDir: '/ws/runs/b', name: 'b', summary: null, checkpoints: [30], lastStep: 42 }, ids, { method: 'lora', hyperparameters: { r: 8 } });
    assert.equal(crashed.method, 'lora');
    assert.equal(crashed.state?.phase, 'stopped');
    assert.equal(crashed.state?.step, 42);
    assert.match(crashed.state?.reason ?? '', /without a summary/);
    assert.equal(finishedPhase({ state: 'cancelled' }), 'stopped');
    assert.equal(finishedPhase({ state: 'failed' }), 'failed');
  });

  it('says which runs resume (stopped or failed, with a checkpoint), their final loss and settings', () => {
    const ids = new RunIds();
    const folder = (name: string, summary: Record<string, unknown> | null, checkpoints: number[]): RunFolder => ({ runDir: `/ws/runs/${name}`, name, summary, checkpoints, lastStep: 30 });
    const stopped = listingOf(folder('s', { state: 'cancelled', finalLoss: 2.632, steps: 30, totalSteps: 60 }, [30]), ids, { hyperparameters: { r: 8, 'training.learning_rate': 0.002 } });
    assert.deepEqual([stopped.resumable, stopped.finalLoss, stopped.hyperparameters], [true, 2.632, { r: 8, 'training.learning_rate': 0.002 }]);
    assert.equal(listingOf(folder('f', { state: 'failed' }, [20]), ids).resumable, true);
    assert.equal(listingOf(folder('n', { state: 'failed' }, []), ids).resumable, undefined, 'nothing to resume from');
    assert.equal(listingOf(folder('d', { state: 'done' }, [60]), ids).resumable, undefined, 'a finished run');
  });

  it('orders the runs of every runs folder newest first, by when each started', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'moslora-runs-'));
    try {
      const made = [
        ['a/runs/old', 1000],
        ['b/runs/newest', 3000],
        ['a/runs/middle', 2000],
      ] as const;
      const folders: RunFolder[] = made.map(([path, seconds]) => {
        mkdirSync(join(dir, path), { recursive: true });
        writeFileSync(join(dir, path, 'config.yaml'), 'method: lora\n');
        utimesSync(join(dir, path, 'config.yaml'), seconds, seconds);
        return { runDir: join(dir, path), name: path.split('/').at(-1)!, summary: null, checkpoints: [], lastStep: 0 };
      });
      assert.deepEqual((await newestFirst(folders)).map((r) => r.name), ['newest', 'middle', 'old']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('the run a command shows when none is named', () => {
  const run = (name: string, phase: RunPhase, method = 'moslora'): RunListing => ({
    runId: name,
    name,
    method,
    state: { runId: name, name, phase, step: 1, total: 1, backend: 'wasm', device: 'CPU', startedAt: null },
  });

  it("Open Training Panel: a live job's run; else the newest that finished, saying why when a newer one did not", () => {
    assert.deepEqual(chooseRun([run('b', 'done'), run('a', 'done')], undefined), { runId: 'b' });
    assert.deepEqual(chooseRun([run('b', 'done')], 'live'), { runId: 'live' });
    const chosen = chooseRun([run('c', 'stopped'), run('b', 'failed'), run('a', 'done')], undefined);
    assert.equal(chosen?.runId, 'a');
    assert.match(chosen?.note ?? '', /showing a, the newest finished run \(c stopped\)/);
    assert.deepEqual(chooseRun([run('b', 'stopped'), run('a', 'failed')], undefined), { runId: 'b' }, 'none finished: the newest');
    assert.equal(chooseRun([], undefined), undefined);
  });

  it('Show Mixer Heatmaps: after a LoRA run it says so and shows the newest run with mixers', () => {
    const chosen = chooseMixerRun([run('lora-2', 'done', 'lora'), run('mos-1', 'done'), run('mos-0', 'done')], undefined);
    assert.equal(chosen?.runId, 'mos-1');
    assert.match(chosen?.note ?? '', /lora-2 is a lora run: it learns no mixer.*showing mos-1 \(moslora\)/);
    assert.deepEqual(chooseMixerRun([run('mos-1', 'done'), run('lora-0', 'done', 'lora')], undefined), { runId: 'mos-1' });
    const none = chooseMixerRun([run('lora-1', 'done', 'lora')], undefined);
    assert.equal(none?.runId, 'lora-1');
    assert.match(none?.note ?? '', /no run here learns one/);
  });
});

describe("a run's config.yaml", () => {
  const dir = mkdtempSync(join(tmpdir(), 'moslora-runconfig-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('gives the config it came from, the method, the model and the hyperparameters as dotted keys', async () => {
    const runDir = join(dir, 'runs', 'a');
    mkdirSync(join(runDir, 'checkpoints', 'step-30'), { recursive: true });
    mkdirSync(join(runDir, 'checkpoints', '.step-40.tmp-123'));
    mkdirSync(join(runDir, 'checkpoints', 'step-10'));
    writeFileSync(
      join(runDir, 'config.yaml'),
      stringify({ model: '/ws/tiny-model', method: 'moslora', r: 8, target_modules: ['q_proj', 'v_proj'], data: { train: '/ws/t.jsonl', eval: null }, training: { learning_rate: 0.002, gradient_checkpointing: 'auto' }, output: { runs_dir: '/ws/runs' }, configPath: '/ws/tiny.moslora.yaml' }),
    );
    const config = await readRunConfig(runDir);
    assert.deepEqual({ ...config!, hyperparameters: { ...config!.hyperparameters } }, {
      configPath: '/ws/tiny.moslora.yaml',
      method: 'moslora',
      model: '/ws/tiny-model',
      hyperparameters: { model: '/ws/tiny-model', method: 'moslora', r: 8, target_modules: '["q_proj","v_proj"]', 'data.train': '/ws/t.jsonl', 'data.eval': null, 'training.learning_rate': 0.002, 'training.gradient_checkpointing': 'auto' },
    });
    assert.deepEqual(await checkpointSteps(runDir), [10, 30], 'complete checkpoints only, ascending');
    assert.deepEqual(await checkpointSteps(join(dir, 'nowhere')), []);
    assert.equal(await readRunConfig(join(dir, 'nowhere')), undefined);
    writeFileSync(join(runDir, 'config.yaml'), '- a list\n');
    assert.equal(await readRunConfig(runDir), undefined, 'not a mapping');
  });

  it('flattens nested keys, and a key named __proto__ stays a key', () => {
    const flat = flatten(JSON.parse('{"a": {"b": 1, "__proto__": {"c": 2}}, "d": [1, {"e": 2}]}') as Record<string, unknown>);
    assert.deepEqual(Object.entries(flat), [
      ['a.b', 1],
      ['a.__proto__.c', 2],
      ['d', '[1,{"e":2}]'],
    ]);
  });
});
