// Hostile input through the built CLI, one behaviour per test: what a user's odd file or argument
// must get (a one-line refusal with the place and the reason), never a crash or lost data.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CLI_MISSING, envWithout, runCli } from '../helpers/cli';

const TINY_MODEL = join(__dirname, '..', '..', 'examples', 'tiny-model');
let dir: string;

describe('the CLI on hostile input', { skip: CLI_MISSING }, () => {
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'moslora-hostile-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('generate refuses a prompt past the context length with its token count, and onnxruntime leaves no telemetry files', async () => {
    const home = await mkdtemp(join(dir, 'home-'));
    // thousands of words on the command line: onnxruntime's telemetry overflowed the stack on them (exit 139)
    const prompt = 'hello world '.repeat(3400);
    const run = await runCli(['generate', TINY_MODEL, '--prompt', prompt, '--max-new-tokens', '4', '--backend', 'wasm'], { env: envWithout('ORT_DISABLE_TELEMETRY', { HOME: home }) });
    assert.equal(run.signal, null);
    assert.equal(run.code, 1, run.stderr);
    assert.match(run.stderr, /^moslora: generate: the prompt is \d{4,} tokens, and .*tiny-model reads at most 256 positions \(its context length, config\.json's max_position_embeddings\); shorten the prompt\n$/);
    assert.equal(existsSync(`/tmp/mat-debug-${run.pid}.log`), false, 'no /tmp/mat-debug-<pid>.log');
    assert.deepEqual(await readdir(home), [], 'nothing queued under ~/.cache/Microsoft');
  });
});
