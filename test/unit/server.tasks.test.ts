// The server's editor tasks: Estimate on the shipped example (from headers and line counts), and
// the CLI runner behind merge / export / generate: the last stdout line as JSON, stderr as the
// error, and a cancelled request kills its child.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, describe, it } from 'node:test';
import { CancellationTokenSource, LSPErrorCodes, ResponseError } from 'vscode-languageserver';
import { configTemplate, examplePaths } from '../../extension/template';
import { FactCache } from '../../server/lsp/facts';
import { runCliJson } from '../../server/tasks/cli-task';
import { estimateConfig } from '../../server/tasks/estimate';

const ROOT = resolve(import.meta.dirname, '..', '..');
const FAKE_CLI = join(ROOT, 'test', 'fixtures', 'cli', 'fake-cli.mjs');
const temp = mkdtempSync(join(tmpdir(), 'moslora-tasks-'));
after(() => rmSync(temp, { recursive: true, force: true }));

describe('estimateConfig', () => {
  const facts = new FactCache(() => {});
  after(() => facts.dispose());
  const write = (name: string, text: string) => {
    writeFileSync(join(temp, name), text);
    return { temp: join(temp, name) };
  };

  it("counts LoRA and MoSLoRA parameters of the tiny Llama and the run's steps", async () => {
    // the "New Adapter Config" template, written in a folder beside the repository's examples
    const { temp: file } = write('estimate.moslora.yaml', configTemplate(examplePaths(temp, join(ROOT, 'examples')), true));
    const e = await estimateConfig(file, facts);
    // per layer at r = 8: q 8·(128+128), k and v 8·(128+64), up and down 8·(128+256); 4 layers
    const lora = 4 * 8 * (256 + 192 + 192 + 384 + 384);
    assert.deepEqual(
      [e.architecture, e.method, e.r, e.modules, e.baseParameters, e.lora, e.moslora, e.trainable, e.trainExamples, e.totalSteps],
      ['LlamaForCausalLM', 'moslora', 8, 20, 722_048, lora, lora + 20 * 8 * 8, lora + 20 * 8 * 8, 1500, 60],
    );
  });

  it('computes steps from epochs as the trainer does, after an eval split', async () => {
    const model = join(ROOT, 'examples', 'tiny-model');
    const train = join(ROOT, 'examples', 'tiny-task', 'train.jsonl');
    const { temp: file } = write(
      'epochs.moslora.yaml',
      `model: ${model}\nmethod: lora\nr: 4\ndata:\n  train: ${train}\n  eval_split: 0.1\n  packing: true\ntraining:\n  epochs: 2\n  batch_size: 16\n  gradient_accumulation: 2\n`,
    );
    const e = await estimateConfig(file, facts);
    // 1500 − round(150) = 1350 examples; ceil(1350/16) = 85 batches; 2 epochs / 2 accumulation
    assert.equal(e.trainExamples, 1350);
    assert.equal(e.totalSteps, 85);
    assert.equal(e.trainable, e.lora);
    assert.match(e.note ?? '', /packing/);
  });

  it('says what is wrong with a config it cannot estimate', async () => {
    const { temp: file } = write('bad.moslora.yaml', `model: ${temp}/nowhere\ndata:\n  train: x.jsonl\n`);
    await assert.rejects(estimateConfig(file, facts), /model: folder not found/);
  });

  const model = join(ROOT, 'examples', 'tiny-model');
  const secret = 'canary-b51f-never-shown';

  it('refuses in one line: the first problem of a config and how many more', async () => {
    const { temp: file } = write('many.moslora.yaml', `model: ${model}\nr: -1\nalpha: 0\ndata:\n  train: x.jsonl\n`);
    await assert.rejects(estimateConfig(file, facts), { message: `${file}:2:4: error: r: needs a value > 0, got number -1 (and 1 more; the Problems panel lists them)` });
  });

  it('names a bad dataset line without quoting it, and opens only a regular file', async () => {
    const data = join(temp, 'secret.jsonl');
    writeFileSync(data, `{"prompt": "a", "completion": "b"}\n${secret}\n"${secret}"\n`);
    const { temp: file } = write('secret.moslora.yaml', `model: ${model}\ndata:\n  train: ${data}\n`);
    await assert.rejects(estimateConfig(file, facts), { message: `${file}: data.train: ${data} line 2: invalid JSON (and 1 more)` });
    const fifo = join(temp, 'fifo.jsonl');
    execFileSync('mkfifo', [fifo]);
    const { temp: piped } = write('fifo.moslora.yaml', `model: ${model}\ndata:\n  train: ${fifo}\n`);
    await assert.rejects(estimateConfig(piped, facts), { message: `${piped}: data.train: ${fifo}: is a FIFO (named pipe), not a dataset file` });
  });

  it('counts the lines of a dataset too large to read in the editor, and says so', async () => {
    const data = join(temp, 'large.jsonl');
    const line = `{"prompt": "${'p'.repeat(1000)}", "completion": "c"}\n`;
    writeFileSync(data, `${line.repeat(70_000)}\n  \n`);
    const { temp: file } = write('large.moslora.yaml', `model: ${model}\ndata:\n  train: ${data}\ntraining:\n  max_steps: 10\n`);
    const e = await estimateConfig(file, facts);
    assert.equal(e.trainExamples, 70_000);
    assert.equal(e.note, `${data} is 69.0 MiB: its non-empty lines are counted as examples, unchecked`);
  });
});

describe('runCliJson', () => {
  const options = { cli: FAKE_CLI };

  it('resolves with the last stdout line as JSON and passes stderr lines to the log', async () => {
    const logged: string[] = [];
    const result = await runCliJson<{ modules: number; args: string[] }>(['ok', '--out', 'x y'], { ...options, onStderr: (line) => logged.push(line) });
    assert.equal(result.modules, 20);
    assert.deepEqual(result.args, ['--out', 'x y']);
    assert.deepEqual(logged, ['a warning on stderr']);
  });

  it("rejects with the child's stderr when it exits non-zero, and with the output when it is not JSON", async () => {
    await assert.rejects(runCliJson(['fail'], options), /adapter_config\.json: no such file/);
    await assert.rejects(runCliJson(['garbage'], options), /expected one JSON object as the last line.*not as JSON/);
  });

  it('kills the child when the request is cancelled, and says the request was cancelled', async () => {
    const pidFile = join(temp, 'pid');
    const source = new CancellationTokenSource();
    const running = runCliJson(['hang', pidFile], { ...options, token: source.token, killGraceMs: 500 });
    const pid = await waitFor(() => (existsSync(pidFile) ? Number(readFileSync(pidFile, 'utf8')) : undefined));
    assert.ok(alive(pid));
    source.cancel();
    await assert.rejects(running, (error: unknown) => error instanceof ResponseError && error.code === LSPErrorCodes.RequestCancelled);
    assert.equal(alive(pid), false, `the child ${pid} is gone`);
  });
});

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function waitFor<T>(probe: () => T | undefined, timeoutMs = 10_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined && !Number.isNaN(value)) return value;
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
