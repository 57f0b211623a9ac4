// The files a config names, as a hostile workspace writes them: a FIFO or a device as a dataset,
// a first record longer than the head the editor reads, a config.json that claims ten million
// layers, integer weights, a broken tokenizer. Each is answered at once, in one line that says
// which file and why, and none quotes what a file holds.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { writeSafetensors } from '../../server/formats/safetensors';
import { readDatasetHead, readModelFacts } from '../../server/lsp/facts';
import { parseModelConfig } from '../../server/models/config';
import { expectedTensors, readModelLayout } from '../../server/models/modules';
import { ModelTokenizer } from '../../server/models/tokenizer';
import { TINY_LLAMA_CONFIG } from '../helpers/tiny-models';

const FIXTURES = join(import.meta.dirname, '..', 'fixtures', 'models');
const SECRET = 'canary-3f9a1c-never-shown';

describe('dataset heads of hostile files', () => {
  let dir: string;
  before(async () => (dir = await mkdtemp(join(tmpdir(), 'moslora-hostile-head-'))));
  after(() => rm(dir, { recursive: true, force: true }));

  it('refuses a FIFO and a device at once instead of waiting on them', async () => {
    const fifo = join(dir, 'fifo.jsonl');
    execFileSync('mkfifo', [fifo]);
    assert.deepEqual(await readDatasetHead(fifo), { ok: false, problem: 'is a FIFO (named pipe), not a regular file; the dataset must be a file' });
    assert.deepEqual(await readDatasetHead('/dev/zero'), { ok: false, problem: 'is a character device, not a regular file; the dataset must be a file' });
    assert.deepEqual(await readDatasetHead(dir), { ok: false, problem: `${dir} is a folder, not a dataset file` });
  });

  it('a first record of megabytes is not "no examples": it is read as training reads it', async () => {
    const file = join(dir, 'long.jsonl');
    await writeFile(file, `{"text": "${'x'.repeat(2 << 20)}"}\n{"text": "b"}\n`);
    const head = await readDatasetHead(file);
    assert.ok(head.ok && head.checked);
    assert.deepEqual([head.records.map((record) => record.line), head.problems], [[1, 2], []]);
  });

  it('says what is wrong with a line without quoting it', async () => {
    const file = join(dir, 'secret.jsonl');
    await writeFile(file, `${SECRET}\n"${SECRET}"\n{"text": "${SECRET}",}\n`);
    const head = await readDatasetHead(file);
    assert.ok(head.ok);
    assert.deepEqual(head.problems, ["line 1: invalid JSON (unexpected token 'c' at column 1)", 'line 2: expected a JSON object, got a string', 'line 3: invalid JSON (expected double-quoted property name at column 38)']);
    const array = join(dir, 'secret.json');
    await writeFile(array, `[{"text": "a"}, ${SECRET}]`);
    const parsed = await readDatasetHead(array);
    assert.ok(!parsed.ok && !parsed.problem.includes(SECRET), JSON.stringify(parsed));
  });
});

describe('model folders checked against their weights before anything is built from config.json', () => {
  let dir: string;
  before(async () => (dir = await mkdtemp(join(tmpdir(), 'moslora-hostile-model-'))));
  after(() => rm(dir, { recursive: true, force: true }));

  /** A tiny Llama's weights (zeros, F32) beside `config` as its config.json. */
  async function llamaWith(name: string, config: Record<string, unknown>): Promise<string> {
    const folder = join(dir, name);
    await mkdir(folder);
    const tensors = expectedTensors(parseModelConfig(TINY_LLAMA_CONFIG, 'config.json')).map(({ name: tensor, shape }) => ({
      name: tensor,
      dtype: 'F32' as const,
      shape,
      data: new Float32Array(shape.reduce((a, b) => a * b, 1)),
    }));
    await writeSafetensors(join(folder, 'model.safetensors'), tensors);
    await writeFile(join(folder, 'config.json'), JSON.stringify(config));
    return folder;
  }

  it('refuses a config.json that claims more layers than the weights hold, at once and without the memory', async () => {
    const folder = await llamaWith('ten-million', { ...TINY_LLAMA_CONFIG, num_hidden_layers: 10_000_000 });
    const before = process.memoryUsage().heapUsed;
    const started = Date.now();
    await assert.rejects(readModelLayout(folder), {
      message: `${folder}: config.json's "num_hidden_layers" is 10000000, but the weights hold 2 layers; the config and the weights are from different models`,
    });
    assert.ok(Date.now() - started < 10_000);
    assert.ok(process.memoryUsage().heapUsed - before < 256 * 1024 ** 2);
    const facts = await readModelFacts(folder);
    assert.ok(!facts.ok && facts.problem.includes('"num_hidden_layers" is 10000000'));
  });

  it('names the key of a value nested past the stack, instead of the engine\'s RangeError', async () => {
    const folder = await llamaWith('nested', TINY_LLAMA_CONFIG);
    const deep = `${'['.repeat(100_000)}${']'.repeat(100_000)}`;
    await writeFile(join(folder, 'config.json'), JSON.stringify({ ...TINY_LLAMA_CONFIG, rope_scaling: 0 }).replace('"rope_scaling":0', `"rope_scaling":${deep}`));
    const facts = await readModelFacts(folder);
    assert.deepEqual(facts, { ok: false, dir: folder, problem: `${join(folder, 'config.json')}: "rope_scaling" must be an object, got a list nested too deeply to show` });
  });

  it('refuses weights stored as integers, naming the tensor', async () => {
    const folder = await llamaWith('int-weights', TINY_LLAMA_CONFIG);
    // rewrite one tensor's dtype in the header: I32 has F32's size, so the file stays consistent
    const bytes = await readFile(join(folder, 'model.safetensors'));
    const length = Number(bytes.readBigUInt64LE(0));
    const header = bytes.subarray(8, 8 + length).toString('utf8');
    const patched = header.replace(/("model\.layers\.1\.mlp\.up_proj\.weight":\{"dtype":")F32/, '$1I32');
    assert.notEqual(patched, header);
    await writeFile(join(folder, 'model.safetensors'), Buffer.concat([bytes.subarray(0, 8), Buffer.from(patched), bytes.subarray(8 + length)]));
    const facts = await readModelFacts(folder);
    assert.equal(facts.ok ? '' : facts.problem, `${folder}: tensor "model.layers.1.mlp.up_proj.weight" is stored as I32; a model's weights are read as F64, F32, F16, BF16. Is it a quantized checkpoint? Use the unquantized weights`);
  });

  it('refuses a config.json that is a FIFO, or too large, without reading it', async () => {
    const fifo = join(dir, 'fifo-config');
    await cp(join(FIXTURES, 'tiny-llama'), fifo, { recursive: true });
    await rm(join(fifo, 'config.json'));
    execFileSync('mkfifo', [join(fifo, 'config.json')]);
    const facts = await readModelFacts(fifo);
    assert.equal(facts.ok ? '' : facts.problem, `${join(fifo, 'config.json')}: is a FIFO (named pipe), not a regular file; a model's config.json must be a file`);
    const large = join(dir, 'large-config');
    await cp(join(FIXTURES, 'tiny-llama'), large, { recursive: true });
    await writeFile(join(large, 'config.json'), `{"pad": "${'x'.repeat(2 << 20)}"}`);
    const refused = await readModelFacts(large);
    assert.match(refused.ok ? '' : refused.problem, /config\.json: is 2 MiB, more than the 1 MiB a model's config\.json may hold/);
  });

  it('reports a broken tokenizer as training would meet it, naming the key, and never quoting the file', async () => {
    const folder = join(dir, 'broken-tokenizer');
    await cp(join(FIXTURES, 'tiny-llama'), folder, { recursive: true });
    const tokenizer = JSON.parse(await readFile(join(folder, 'tokenizer.json'), 'utf8')) as { model: Record<string, unknown> };
    await writeFile(join(folder, 'tokenizer.json'), JSON.stringify({ ...tokenizer, model: { ...tokenizer.model, merges: SECRET } }));
    const facts = await readModelFacts(folder);
    assert.ok(facts.ok);
    const expected = `${join(folder, 'tokenizer.json')}: "model.merges" must list the BPE merges, got a string; the file is not a tokenizers file, or it is corrupt`;
    assert.equal(facts.tokenizerProblem, expected);
    await assert.rejects(ModelTokenizer.load(folder), { message: expected });
    await writeFile(join(folder, 'tokenizer.json'), `{"model": ${SECRET}}`);
    const garbled = await readModelFacts(folder);
    assert.ok(garbled.ok);
    assert.equal(garbled.tokenizerProblem, `${join(folder, 'tokenizer.json')}:1:11: is not valid JSON: unexpected token 'c'`);
    const fine = await readModelFacts(join(FIXTURES, 'tiny-llama'));
    assert.ok(fine.ok && fine.tokenizerProblem === null);
  });
});
