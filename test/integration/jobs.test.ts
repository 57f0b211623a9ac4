// Training jobs through the built language server, as the extension drives them: a real job on
// the tiny shipped model streams its progress, cancel leaves a checkpoint that resume continues,
// and a trainer killed with SIGKILL becomes a failed job while the server keeps answering.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { CompletionRequest } from 'vscode-languageserver-protocol/node';
import {
  cancelTrainingRequest,
  combineAdaptersRequest,
  jobUpdateNotification,
  listRunsRequest,
  runDataRequest,
  startTrainingRequest,
  type JobUpdate,
} from '../../protocol/editor';
import { LspClient, SERVER } from '../helpers/lsp-client';

const EXAMPLES = join(import.meta.dirname, '..', '..', 'examples');
const TRAINER = join(import.meta.dirname, '..', '..', 'dist', 'trainer.js');

let dir: string;
let client: LspClient;
const updates: JobUpdate[] = [];
const waiters: { test: (u: JobUpdate) => boolean; resolve: (u: JobUpdate) => void }[] = [];

function until(test: (u: JobUpdate) => boolean, what: string): Promise<JobUpdate> {
  const seen = updates.find(test);
  if (seen) return Promise.resolve(seen);
  return new Promise((resolve, reject) => {
    const guard = setTimeout(() => reject(new Error(`no job update where ${what} within 120 s; last: ${JSON.stringify(updates.at(-1)?.job)}\n${client.stderr}`)), 120_000);
    waiters.push({ test, resolve: (u) => (clearTimeout(guard), resolve(u)) });
  });
}

async function config(name: string, steps: number): Promise<string> {
  const path = join(dir, `${name}.moslora.yaml`);
  await writeFile(path, [
    `model: ${join(EXAMPLES, 'tiny-model')}`, 'method: moslora', 'r: 4', 'alpha: 8', 'target_modules: [q_proj, v_proj]',
    'data:', `  train: ${join(EXAMPLES, 'tiny-task', 'train.jsonl')}`, '  max_length: 32',
    'training:', `  max_steps: ${steps}`, '  batch_size: 4', '  gradient_accumulation: 1', '  warmup_steps: 2',
    '  log_interval: 1', '  checkpoint_interval: 5', '  mixer_interval: 5',
    'output:', `  runs_dir: ${join(dir, 'runs')}`, `  run_name: ${name}`, 'backend: wasm',
  ].join('\n'));
  return pathToFileURL(path).href;
}

describe('training jobs through the language server', { skip: existsSync(SERVER) && existsSync(TRAINER) ? false : 'run `npm run build` first' }, () => {
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'moslora-jobs-'));
    client = await LspClient.start(dir);
    client.connection.onNotification(jobUpdateNotification, (update) => {
      updates.push(update);
      for (const waiter of [...waiters]) {
        if (waiter.test(update)) {
          waiters.splice(waiters.indexOf(waiter), 1);
          waiter.resolve(update);
        }
      }
    });
  });
  after(async () => {
    await client.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('a job on the tiny model streams every step, throttled, and its run is listed from disk', async () => {
    const job = await client.connection.sendRequest(startTrainingRequest, { configUri: await config('streamed', 12) });
    assert.ok(['loading', 'queued'].includes(job.state));
    const done = await until((u) => u.job.id === job.id && u.job.summary !== undefined, 'the job finished');
    assert.equal(done.job.state, 'done');
    const mine = updates.filter((u) => u.job.id === job.id);
    const steps = mine.flatMap((u) => u.metrics).filter((m) => m.kind === 'train').map((m) => m.step);
    assert.deepEqual(steps, Array.from({ length: 12 }, (_, i) => i + 1), 'every logged step arrives once, in order');
    assert.ok(mine.some((u) => u.mixers.length > 0), 'mixer snapshots stream too');
    const runs = await client.connection.sendRequest(listRunsRequest, { runsDirs: [join(dir, 'runs')] });
    assert.ok(runs.some((r) => r.name === 'streamed' && r.lastStep === 12));
    const data = await client.connection.sendRequest(runDataRequest, { runDir: done.job.runDir! });
    assert.equal(data.metrics.filter((m) => m.kind === 'train').length, 12);
    assert.equal(data.summary?.state, 'done');
  });

  it('combines adapters through the server (the CLI in a child process): cat adds the ranks exactly', async () => {
    const adapter = join(dir, 'runs', 'streamed', 'adapter');
    const result = await client.connection.sendRequest(combineAdaptersRequest, { adapterDirs: [adapter, adapter], method: 'cat', weights: [0.5, 0.5], outDir: join(dir, 'combined') });
    assert.deepEqual(result, { outDir: join(dir, 'combined'), modules: 8, rank: 8, relativeError: 0 });
    await assert.rejects(
      client.connection.sendRequest(combineAdaptersRequest, { adapterDirs: [adapter, join(dir, 'nowhere')], method: 'cat', outDir: join(dir, 'x') }),
      /nowhere\/adapter_config\.json: cannot read the adapter config/,
    );
  });

  it('cancel stops the job after saving a checkpoint; resume continues the same run to the end', async () => {
    const uri = await config('cancelled', 400);
    const job = await client.connection.sendRequest(startTrainingRequest, { configUri: uri });
    await until((u) => u.job.id === job.id && u.job.step >= 3, 'step 3 was reached');
    await client.connection.sendRequest(cancelTrainingRequest, { jobId: job.id });
    const cancelled = await until((u) => u.job.id === job.id && u.job.summary !== undefined, 'the job stopped');
    assert.equal(cancelled.job.state, 'cancelled');
    const checkpoints = await readdir(join(cancelled.job.runDir!, 'checkpoints'));
    assert.ok(checkpoints.includes(`step-${cancelled.job.summary!.steps}`), `a checkpoint at the step it stopped: ${checkpoints}`);
    const resumed = await client.connection.sendRequest(startTrainingRequest, { configUri: uri, resumeRunDir: cancelled.job.runDir! });
    await until((u) => u.job.id === resumed.id && u.job.step > cancelled.job.summary!.steps, 'the resumed job went past the checkpoint');
    await client.connection.sendRequest(cancelTrainingRequest, { jobId: resumed.id });
    await until((u) => u.job.id === resumed.id && u.job.state === 'cancelled', 'the resumed job stopped');
  });

  it('kill -9 of the trainer fails the job with its reason; the server keeps answering, also while a job trains', async () => {
    const uri = await config('killed', 400);
    const job = await client.connection.sendRequest(startTrainingRequest, { configUri: uri });
    const training = await until((u) => u.job.id === job.id && u.job.step >= 2 && u.job.pid !== undefined, 'the job trains');
    const completion = await client.connection.sendRequest(CompletionRequest.type, { textDocument: { uri }, position: { line: 0, character: 0 } });
    assert.ok(completion !== undefined, 'completion answers while a job trains');
    process.kill(training.job.pid!, 'SIGKILL');
    const failed = await until((u) => u.job.id === job.id && u.job.state === 'failed', 'the job failed');
    assert.match(failed.job.message!, /the trainer was killed by SIGKILL at step \d+/);
    const runs = await client.connection.sendRequest(listRunsRequest, { runsDirs: [join(dir, 'runs')] });
    assert.ok(runs.some((r) => r.name === 'killed'), 'the server still answers');
  });
});
