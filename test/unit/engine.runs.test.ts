// Run folders (server/engine/runs.ts) in a temporary folder: the config, metrics and mixer records
// (a torn last line skipped), checkpoints that round-trip and are pruned, and what resume may pick.
import assert from 'node:assert/strict';
import { appendFile, mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '../../kernels/backends/backend';
import type { Adapter } from '../../kernels/adapter/linear';
import type { AdapterSettings } from '../../server/engine/adapter-files';
import { AdamW } from '../../server/engine/optim';
import { RunDirectory, type TrainerState } from '../../server/engine/runs';
import { trainedAdapters } from '../helpers/adapters';

const settings: AdapterSettings = {
  baseModel: 'm', method: 'moslora', r: 2, alpha: 4, dropout: 0, useRslora: false, mixerInit: 'kaiming', chainLength: 2, targetModules: ['q_proj'], fanInFanOut: false,
};

let root: string;

const adapters = (): Map<string, Adapter> => trainedAdapters([{ name: 'model.layers.0.self_attn.q_proj', dIn: 6, dOut: 5 }], { method: 'moslora', r: 2, alpha: 4 }, 3);

const state = (step: number): TrainerState => ({ step, epoch: 0, batchInEpoch: step, tokensSeen: 100 * step, elapsedSeconds: step / 10 });

describe('run directories', () => {
  before(async () => {
    await selectBackend('wasm');
    root = await mkdtemp(join(tmpdir(), 'moslora-runs-'));
  });
  after(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('writes the resolved config and appends metrics and mixer snapshots', async () => {
    const run = await RunDirectory.create(join(root, 'a'), { model: '/m', r: 16 });
    assert.match(await readFile(join(run.dir, 'config.yaml'), 'utf8'), /^model: \/m\nr: 16\n$/);
    await run.appendMetrics({ step: 1, kind: 'train', loss: 2.5 });
    await run.appendMetrics({ step: 2, kind: 'eval', eval_loss: 2.1 });
    await run.appendMixers([{ step: 2, module: 'q', r: 1, values: [1], distanceFromIdentity: 0, singularValues: [1] }]);
    assert.deepEqual((await run.readMetrics()).map((m) => m.step), [1, 2]);
    assert.equal((await run.readMixers())[0]!.module, 'q');
  });

  it('a torn last line (crash mid-write) is skipped; a broken middle line is an error with its line', async () => {
    const run = await RunDirectory.create(join(root, 'torn'), {});
    await run.appendMetrics({ step: 1, kind: 'train', loss: 1 });
    await appendFile(run.metricsFile, '{"step": 2, "ki');
    assert.deepEqual((await run.readMetrics()).map((m) => m.step), [1]);
    await appendFile(run.metricsFile, '\n{"step": 3, "kind": "train"}\n');
    await assert.rejects(run.readMetrics(), /metrics\.jsonl:2: not JSON/);
  });

  it('checkpoints round-trip adapter, optimizer and trainer state, and only the newest are kept', async () => {
    const run = await RunDirectory.create(join(root, 'ckpt'), {});
    const weights = adapters();
    const [[name, adapter]] = [...weights];
    const params = new Map([[`${name}.lora_A`, tf.variable(adapter!.weights.A)]]);
    const optimizer = new AdamW();
    optimizer.apply(params, tf.ones([adapter!.weights.A.size]) as tf.Tensor1D, 0.1);
    for (const step of [10, 20, 30]) await run.saveCheckpoint(weights, settings, await optimizer.getState(), state(step), 2);
    assert.deepEqual(await run.checkpointSteps(), [20, 30]);
    const loaded = await run.loadLatestCheckpoint();
    assert.ok(loaded);
    assert.deepEqual(loaded.state, state(30));
    assert.equal(loaded.optimizer.step, 1);
    assert.deepEqual(loaded.optimizer.moments[`${name}.lora_A`]!.m, (await optimizer.getState()).moments[`${name}.lora_A`]!.m);
    assert.deepEqual(loaded.adapters.get(name!)!.weights.mixers[0]!.dataSync(), adapter!.weights.mixers[0]!.dataSync());
  });

  it('a half-written checkpoint (temporary folder) is never picked for resume', async () => {
    const run = await RunDirectory.create(join(root, 'half'), {});
    await run.saveCheckpoint(adapters(), settings, await new AdamW().getState(), state(5), 3);
    await mkdir(join(run.dir, 'checkpoints', '.step-9.tmp-1234'), { recursive: true });
    assert.equal((await run.loadLatestCheckpoint())!.state.step, 5);
    assert.deepEqual(await readdir(join(run.dir, 'checkpoints')), ['.step-9.tmp-1234', 'step-5']);
  });

  it('truncateAfter drops what was logged after the checkpoint, so a resumed curve has no duplicates', async () => {
    const run = await RunDirectory.create(join(root, 'resume'), {});
    for (const step of [1, 2, 3, 4]) await run.appendMetrics({ step, kind: 'train', loss: 1 / step });
    await run.appendMixers([3, 4].map((step) => ({ step, module: 'q', r: 1, values: [1], distanceFromIdentity: 0, singularValues: [1] })));
    await run.truncateAfter(2);
    assert.deepEqual((await run.readMetrics()).map((m) => m.step), [1, 2]);
    assert.deepEqual(await run.readMixers(), []);
  });

  it('a new run never appends to an existing one', async () => {
    const run = await RunDirectory.create(join(root, 'taken'), {});
    await run.appendMetrics({ step: 1, kind: 'train', loss: 1 });
    await assert.rejects(RunDirectory.create(join(root, 'taken'), {}), /taken already holds a run; resume it \(--resume .*taken\) or choose another output\.run_name/);
  });

  it('an empty run has no checkpoint to resume from', async () => {
    assert.equal(await new RunDirectory(join(root, 'nothing')).loadLatestCheckpoint(), null);
  });
});
