import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { linearModules, readDatasetHead, targetedModules, targetNames } from '../../server/lsp/facts';

function headers(entries: [string, number[]][]) {
  return { tensors: new Map(entries.map(([name, shape]) => [name, { dtype: 'F32' as const, shape, byteLength: 0, offset: 0, file: '' }])) };
}

describe('linear modules from safetensors headers', () => {
  it('takes 2-D weights as [d_out, d_in], skips embeddings, the LM head, norms and biases, and sorts layers numerically', () => {
    const modules = linearModules(
      headers([
        ['model.embed_tokens.weight', [100, 8]],
        ['lm_head.weight', [100, 8]],
        ['model.layers.10.self_attn.k_proj.weight', [4, 8]],
        ['model.layers.2.self_attn.k_proj.weight', [4, 8]],
        ['model.layers.2.self_attn.k_proj.bias', [4]],
        ['model.layers.2.input_layernorm.weight', [8]],
      ]),
      'LlamaForCausalLM',
    );
    assert.deepEqual(modules, [
      { name: 'model.layers.2.self_attn.k_proj', dIn: 8, dOut: 4 },
      { name: 'model.layers.10.self_attn.k_proj', dIn: 8, dOut: 4 },
    ]);
  });

  it("reads GPT-2's Conv1D weights as [d_in, d_out], with or without the transformer. prefix", () => {
    const modules = linearModules(
      headers([
        ['h.0.attn.c_attn.weight', [16, 48]],
        ['transformer.h.1.mlp.c_fc.weight', [16, 64]],
        ['transformer.h.1.mlp.c_proj.weight', [64, 16]],
        ['wte.weight', [50, 16]],
        ['wpe.weight', [8, 16]],
      ]),
      'GPT2LMHeadModel',
    );
    assert.deepEqual(modules, [
      { name: 'h.0.attn.c_attn', dIn: 16, dOut: 48 },
      { name: 'transformer.h.1.mlp.c_fc', dIn: 16, dOut: 64 },
      { name: 'transformer.h.1.mlp.c_proj', dIn: 64, dOut: 16 },
    ]);
  });

  it('matches targets by PEFT suffix and lists short names before full names', () => {
    const modules = linearModules(headers([['model.layers.0.self_attn.q_proj.weight', [8, 8]], ['model.layers.0.mlp.q_proj_extra.weight', [8, 8]]]), 'LlamaForCausalLM');
    assert.deepEqual(targetedModules(modules, ['q_proj']).map((m) => m.name), ['model.layers.0.self_attn.q_proj']);
    assert.deepEqual(targetedModules(modules, ['self_attn.q_proj', 'model.layers.0.mlp.q_proj_extra']).length, 2);
    assert.deepEqual(targetNames(modules).suffixes, ['q_proj_extra', 'q_proj']);
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

  it('reads the first entries of a JSON array and explains a file that is not one', async () => {
    await writeFile(join(dir, 'array.json'), JSON.stringify([{ text: 'a' }, 3]));
    const head = await readDatasetHead(join(dir, 'array.json'));
    assert.ok(head.ok);
    assert.deepEqual(head.problems, ['line 2: expected a JSON object, got 3']);
    await writeFile(join(dir, 'object.json'), '{"text": "a"}');
    assert.deepEqual(await readDatasetHead(join(dir, 'object.json')), { ok: false, problem: 'a .json dataset must be an array of objects; use .jsonl for one object per line' });
    assert.deepEqual(await readDatasetHead(join(dir, 'none.jsonl')), { ok: false, problem: `file not found: ${join(dir, 'none.jsonl')}` });
  });
});
