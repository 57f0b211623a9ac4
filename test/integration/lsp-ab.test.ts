// The built language server's A/B request (moslora/abTest) on the tiny shipped model, as the
// editor's "MoSLoRA: A/B Test" sends it: progress notifications while `moslora ab` trains,
// cancelling stops the runs at their checkpoints, the same request again finishes the A/B and
// answers with the report, and the run listing tags the A/B's runs.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { CancellationTokenSource } from 'vscode-languageserver-protocol/node';
import { abProgressNotification, abTestRequest, listRunsRequest, type AbProgress, type AbTestParams } from '../../protocol/editor';
import { LspClient, SERVER } from '../helpers/lsp-client';

const ROOT = join(import.meta.dirname, '..', '..');
const EXAMPLES = join(ROOT, 'examples');
const built = existsSync(SERVER) && existsSync(join(ROOT, 'dist', 'cli.js')) && existsSync(join(ROOT, 'dist', 'trainer.js'));

describe('the language server runs an A/B test', { skip: built ? false : 'run `npm run build` first' }, () => {
  let dir: string;
  let client: LspClient;
  let params: AbTestParams;
  const progress: AbProgress[] = [];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'moslora-lsp-ab-'));
    const evalFile = join(dir, 'eval-mc.jsonl');
    await writeFile(evalFile, (await readFile(join(EXAMPLES, 'tiny-task', 'eval-mc.jsonl'), 'utf8')).split('\n').slice(0, 8).join('\n'));
    const config = join(dir, 'tiny.moslora.yaml');
    await writeFile(config, [
      `model: ${join(EXAMPLES, 'tiny-model')}`, 'method: moslora', 'r: 4', 'alpha: 8', 'target_modules: [q_proj, v_proj]',
      'data:', `  train: ${join(EXAMPLES, 'tiny-task', 'train.jsonl')}`, `  eval: ${evalFile}`, '  max_length: 32',
      'training:', '  max_steps: 8', '  batch_size: 4', '  gradient_accumulation: 1', '  warmup_steps: 1', '  seed: 3',
      '  log_interval: 1', '  eval_interval: 8', '  checkpoint_interval: 2', '  mixer_interval: 8',
      'output:', '  runs_dir: runs', 'backend: wasm', '',
    ].join('\n'));
    params = { configUri: pathToFileURL(config).href, methods: ['lora', 'moslora'], seeds: 2, runsDir: join(dir, 'out'), progressId: 'test-ab' };
    client = await LspClient.start(dir);
    client.connection.onNotification(abProgressNotification, ({ progressId, progress: p }) => {
      if (progressId === params.progressId) progress.push(p);
    });
  });

  after(async () => {
    await client?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('cancelling stops the runs at a checkpoint; the same request again finishes the 2 × 2 A/B and answers with its report', async () => {
    const abDir = join(dir, 'out', 'ab-tiny');
    // stop once the first run has finished and another has trained a few steps
    const source = new CancellationTokenSource();
    const first = client.connection.sendRequest(abTestRequest, params, source.token);
    await new Promise<void>((resolve, reject) => {
      const timer = setInterval(() => {
        if (progress.some((p) => p.done >= 1 && p.current && p.current.step >= 3 && p.current.step < p.current.totalSteps)) {
          clearInterval(timer);
          resolve();
        }
      }, 50);
      first.then(() => reject(new Error(`the A/B ended before it could be cancelled: ${JSON.stringify(progress.at(-1))}`)), () => {});
    });
    source.cancel();
    await assert.rejects(first, /cancelled/);
    assert.equal(progress[0]!.total, 4);
    const ended = progress.at(-1)!.done;
    assert.ok(ended >= 1 && ended < 4, `runs ended before the cancel: ${ended}`);
    const states = await Promise.all(['lora-seed3', 'lora-seed4', 'moslora-seed3', 'moslora-seed4'].map((name) =>
      readFile(join(abDir, name, 'summary.json'), 'utf8').then((text) => (JSON.parse(text) as { state: string }).state, () => 'not started')));
    assert.ok(states.includes('done'), states.join(', '));
    const stopped = states.indexOf('cancelled');
    assert.ok(stopped >= 0, `a run was stopped by the cancel: ${states.join(', ')}`);
    const stoppedDir = join(abDir, ['lora-seed3', 'lora-seed4', 'moslora-seed3', 'moslora-seed4'][stopped]!);
    assert.ok((await readdir(join(stoppedDir, 'checkpoints'))).some((name) => /^step-\d+$/.test(name)), 'the stopped run kept a checkpoint');

    progress.length = 0;
    const result = await client.connection.sendRequest(abTestRequest, params);
    assert.equal(result.abDir, abDir);
    assert.equal(result.reportFile, join(abDir, 'report.md'));
    assert.equal(result.cancelled, false);
    assert.deepEqual(result.unfinished, []);
    assert.equal(result.trained, 4 - states.filter((s) => s === 'done').length, 'runs that had finished are kept, the rest trained');
    assert.equal(result.sentences.length, 1);
    assert.match(result.sentences[0]!, /MoSLoRA/);
    assert.match(await readFile(result.reportFile, 'utf8'), /moslora/i);
    assert.deepEqual({ done: progress.at(-1)!.done, total: progress.at(-1)!.total }, { done: 4, total: 4 });
    assert.equal(progress[0]!.done, states.filter((s) => s === 'done').length, 'the runs that had finished count as done from the start');

    const listed = await client.connection.sendRequest(listRunsRequest, { runsDirs: [join(dir, 'out')] });
    assert.deepEqual(listed.map((run) => run.ab && `${run.ab.name} ${run.ab.method} ${run.ab.seed}`).sort(), ['tiny lora 3', 'tiny lora 4', 'tiny moslora 3', 'tiny moslora 4']);
  });
});
