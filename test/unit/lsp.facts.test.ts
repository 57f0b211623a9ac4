// What the editor reads from disk for a config (server/lsp/facts.ts): a model folder's linear
// modules as the engine sees them, its problems as training would name them, and a dataset's first
// lines.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { readDatasetHead, readModelFacts, targetedModules, targetNames } from '../../server/lsp/facts';
import { inspectModel } from '../../server/models/inspect';

const FIXTURES = join(import.meta.dirname, '..', 'fixtures', 'models');

describe('a model folder as the editor sees it', () => {
  let dir: string;
  before(async () => (dir = await mkdtemp(join(tmpdir(), 'moslora-facts-'))));
  after(() => rm(dir, { recursive: true, force: true }));

  it("lists the engine's linear modules in forward order, [d_out, d_in], the LM head included (PEFT can target it)", async () => {
    const facts = await readModelFacts(join(FIXTURES, 'tiny-llama'));
    assert.ok(facts.ok);
    assert.equal(facts.modules.length, 2 * 7 + 1);
    assert.deepEqual(facts.modules.slice(0, 3), [
      { name: 'model.layers.0.self_attn.q_proj', dIn: 64, dOut: 64 },
      { name: 'model.layers.0.self_attn.k_proj', dIn: 64, dOut: 32 },
      { name: 'model.layers.0.self_attn.v_proj', dIn: 64, dOut: 32 },
    ]);
    assert.deepEqual(facts.modules.at(-1), { name: 'lm_head', dIn: 64, dOut: 512 });
    assert.deepEqual(facts.shape, { hidden: 64, layers: 2, heads: 4, vocab: 512 });
    const inspected = await inspectModel(join(FIXTURES, 'tiny-llama'));
    assert.equal(facts.totalParameters, inspected.parameterCount);
    assert.deepEqual(facts.modules.map((m) => m.name), inspected.linearModules.map((m) => m.name));
  });

  it("reads GPT-2's Conv1D weights as [d_in, d_out], names them as the engine and PEFT do, and counts a tied head once", async () => {
    const facts = await readModelFacts(join(FIXTURES, 'tiny-gpt2'));
    assert.ok(facts.ok);
    assert.deepEqual(facts.modules[0], { name: 'transformer.h.0.attn.c_attn', dIn: 64, dOut: 192 });
    assert.deepEqual(facts.modules[3], { name: 'transformer.h.0.mlp.c_proj', dIn: 256, dOut: 64 });
    assert.equal(facts.totalParameters, 136_960);
  });

  it('says, as training would, when config.json and the weights are from different models', async () => {
    const model = join(dir, 'mismatched');
    await cp(join(FIXTURES, 'tiny-llama'), model, { recursive: true });
    const config = JSON.parse(await readFile(join(model, 'config.json'), 'utf8')) as Record<string, unknown>;
    await writeFile(join(model, 'config.json'), JSON.stringify({ ...config, intermediate_size: 96 }));
    const facts = await readModelFacts(model);
    assert.equal(facts.ok, false);
    assert.match(facts.ok ? '' : facts.problem, /mlp\.gate_proj\.weight" has shape \[128, 64\] but config\.json .* implies \[96, 64\]; the config and the weights are from different models/);
  });

  it('names a missing config.json, and an architecture training does not support with the ones it does', async () => {
    const empty = join(dir, 'empty');
    await mkdir(empty);
    const missing = await readModelFacts(empty);
    assert.match(missing.ok ? '' : missing.problem, /has no config\.json; a Hugging Face model folder holds config\.json/);
    const falcon = join(dir, 'falcon');
    await cp(join(FIXTURES, 'tiny-llama'), falcon, { recursive: true });
    await writeFile(join(falcon, 'config.json'), JSON.stringify({ architectures: ['FalconForCausalLM'] }));
    const unsupported = await readModelFacts(falcon);
    assert.match(unsupported.ok ? '' : unsupported.problem, /\["FalconForCausalLM"\] is not supported; supported: LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM, GPT2LMHeadModel/);
  });

  it('matches targets by PEFT suffix and lists short names before full names', () => {
    const modules = [{ name: 'model.layers.0.self_attn.q_proj', dIn: 8, dOut: 8 }, { name: 'model.layers.0.mlp.q_proj_extra', dIn: 8, dOut: 8 }];
    assert.deepEqual(targetedModules(modules, ['q_proj']).map((m) => m.name), ['model.layers.0.self_attn.q_proj']);
    assert.deepEqual(targetedModules(modules, ['self_attn.q_proj', 'model.layers.0.mlp.q_proj_extra']).length, 2);
    assert.deepEqual(targetNames(modules).suffixes, ['q_proj', 'q_proj_extra']);
  });
});

describe('dataset first lines', () => {
  let dir: string;
  before(async () => (dir = await mkdtemp(join(tmpdir(), 'moslora-head-'))));
  after(() => rm(dir, { recursive: true, force: true }));

  it('reads only the first 20 non-empty lines of a JSONL file, numbering them as the file does', async () => {
    const file = join(dir, 'many.jsonl');
    await writeFile(file, ['{"text": "a"}', '', 'not json', ...Array.from({ length: 30 }, () => '{"text": "b"}')].join('\n'));
    const head = await readDatasetHead(file);
    assert.ok(head.ok);
    assert.equal(head.records.length + head.problems.length, 20);
    assert.equal(head.records[0]!.line, 1);
    assert.match(head.problems[0]!, /^line 3: invalid JSON/);
  });

  it('reads a first record over 1 MiB as a record, not as "no examples"', async () => {
    const file = join(dir, 'long-first.jsonl');
    await writeFile(file, `${JSON.stringify({ text: 'x'.repeat(1.5 * 1024 ** 2) })}\n{"text": "b"}\n`);
    const head = await readDatasetHead(file);
    assert.ok(head.ok, JSON.stringify(head).slice(0, 200));
    assert.deepEqual(head.records.map((r) => r.line), [1, 2]);
  });

  it('refuses a FIFO or a device at once instead of waiting on it (which held one of the server\'s four I/O threads)', { timeout: 10_000 }, async () => {
    const fifo = join(dir, 'pipe.jsonl');
    execFileSync('mkfifo', [fifo]);
    assert.deepEqual(await readDatasetHead(fifo), { ok: false, problem: 'is a FIFO (named pipe), not a regular file; the dataset must be a file' });
    assert.deepEqual(await readDatasetHead('/dev/zero'), { ok: false, problem: 'is a character device, not a regular file; the dataset must be a file' });
  });

  it('reads the first entries of a JSON array and explains a file that is not one', async () => {
    await writeFile(join(dir, 'array.json'), JSON.stringify([{ text: 'a' }, 3]));
    const head = await readDatasetHead(join(dir, 'array.json'));
    assert.ok(head.ok);
    assert.deepEqual(head.problems, ['line 2: expected a JSON object, got a number']);
    await writeFile(join(dir, 'object.json'), '{"text": "a"}');
    assert.deepEqual(await readDatasetHead(join(dir, 'object.json')), { ok: false, problem: 'a .json dataset must be an array of objects; use .jsonl for one object per line' });
    assert.deepEqual(await readDatasetHead(join(dir, 'none.jsonl')), { ok: false, problem: `file not found: ${join(dir, 'none.jsonl')}` });
  });
});
