// The config's diagnostics (server/lsp/diagnostics.ts), with the completion and hover of the same
// keys, on model facts given in the test: data.fields checked against the data file's first lines,
// target_modules as a pattern, and the memory warning on the wasm heap.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { completeConfig } from '../../server/lsp/completion';
import { validateConfig } from '../../server/lsp/diagnostics';
import { hoverConfig } from '../../server/lsp/hover';
import { FactCache, type ModelFacts } from '../../server/lsp/facts';
import type { ModuleSize } from '../../server/models/modules';

describe('data.fields: the dataset’s own field names', () => {
  let dir: string;
  const messages = (list: { message: string | { value: string } }[]) => list.map((d) => (typeof d.message === 'string' ? d.message : d.message.value));
  let facts: FactCache;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'moslora-fields-'));
    await writeFile(join(dir, 'train.jsonl'), `${JSON.stringify({ question: 'Q?', answer: 'A', source: 'x' })}\n`);
    facts = new FactCache(() => {});
  });
  after(async () => {
    await facts.dispose();
    await rm(dir, { recursive: true, force: true });
  });

  it('completes a mapping’s value with the field names of the data file’s first lines', async () => {
    const text = 'model: m\ndata:\n  train: train.jsonl\n  fields:\n    prompt: \n';
    const uri = pathToFileURL(join(dir, 'a.moslora.yaml')).href;
    const items = await completeConfig(uri, text, { line: 4, character: 12 }, facts);
    assert.deepEqual(items.map((i) => i.label), ['question', 'answer', 'source']);
  });

  it('checks the data with the mapping, naming a missing field as the dataset names it', async () => {
    const uri = pathToFileURL(join(dir, 'b.moslora.yaml')).href;
    const good = await validateConfig(uri, 'model: m\ndata:\n  train: train.jsonl\n  fields:\n    prompt: question\n    completion: answer\n', facts);
    assert.ok(!messages(good.diagnostics).some((m) => m.startsWith('data.train')), messages(good.diagnostics).join('\n'));
    const bad = await validateConfig(uri, 'model: m\ndata:\n  train: train.jsonl\n  fields:\n    prompt: question\n    completion: answr\n', facts);
    assert.ok(messages(bad.diagnostics).some((m) => /data\.train: train\.jsonl line 1: missing field "answr" \(data\.fields\.completion\)/.test(m)), messages(bad.diagnostics).join('\n'));
  });
});

describe('target_modules as a pattern', () => {
  // target_modules written as PEFT also takes it: 'all-linear' or a regular expression.
  const modules: ModuleSize[] = [];
  for (const layer of [0, 1]) {
    modules.push({ name: `model.layers.${layer}.self_attn.q_proj`, dIn: 64, dOut: 64 }, { name: `model.layers.${layer}.mlp.up_proj`, dIn: 64, dOut: 128 });
  }
  modules.push({ name: 'lm_head', dIn: 64, dOut: 1000 });
  const model: ModelFacts = { ok: true, dir: '/m/tiny', architecture: 'LlamaForCausalLM', modules, totalParameters: 100_000, shape: { hidden: 64, layers: 2, heads: 4, vocab: 1000 }, tokenizerProblem: null };
  const facts = { model: async () => model, dataset: async () => ({ ok: true, records: [], problems: [], checked: true }) } as unknown as FactCache;
  const URI = 'file:///w/a.moslora.yaml';
  const config = (targets: string) => `model: ./m\ntarget_modules: ${targets}\ndata:\n  train: t.jsonl\n`;
  const targetDiagnostics = async (targets: string) =>
    (await validateConfig(URI, config(targets), facts)).diagnostics.filter((d) => String(d.message).startsWith('target_modules')).map((d) => ({ line: d.range.start.line, message: String(d.message) }));

  it("takes 'all-linear' and a regular expression that matches whole names", async () => {
    assert.deepEqual(await targetDiagnostics('all-linear'), []);
    assert.deepEqual(await targetDiagnostics("'.*\\.q_proj'"), []);
  });

  it('says when a pattern matches no module, and how a pattern differs from a list', async () => {
    const [problem, ...rest] = await targetDiagnostics('q_proj');
    assert.equal(rest.length, 0);
    assert.equal(problem?.line, 1);
    assert.equal(problem?.message, 'target_modules: "q_proj" matches no linear module of tiny (LlamaForCausalLM); a pattern must match whole module names (e.g. ".*\\.q_proj"); a list matches by suffix');
  });

  it("counts what 'all-linear' selects: every linear module but lm_head", async () => {
    const hover = await hoverConfig(URI, config('all-linear'), { line: 1, character: 2 }, facts);
    const text = JSON.stringify(hover?.contents);
    // LoRA at r 16 on two q_proj (64→64) and two up_proj (64→128): 16·(128 + 192)·2
    assert.match(text, /10,240/, text);
  });

  it("completes the value with 'all-linear'", async () => {
    const items = await completeConfig(URI, 'model: ./m\ntarget_modules: \n', { line: 1, character: 16 }, facts);
    assert.deepEqual(items.map((item) => item.label), ['all-linear']);
  });
});

describe('memory diagnostic', () => {
  const modules: ModuleSize[] = [];
  for (let layer = 0; layer < 12; layer++) {
    const p = `model.layers.${layer}`;
    for (const m of ['self_attn.q_proj', 'self_attn.k_proj', 'self_attn.v_proj', 'self_attn.o_proj']) modules.push({ name: `${p}.${m}`, dIn: 768, dOut: 768 });
    modules.push({ name: `${p}.mlp.up_proj`, dIn: 768, dOut: 2048 }, { name: `${p}.mlp.gate_proj`, dIn: 768, dOut: 2048 }, { name: `${p}.mlp.down_proj`, dIn: 2048, dOut: 768 });
  }
  const model: ModelFacts = { ok: true, dir: '/m/llama-100m', architecture: 'LlamaForCausalLM', modules, totalParameters: 100_000_000, shape: { hidden: 768, layers: 12, heads: 12, vocab: 32_000 }, tokenizerProblem: null };
  const facts = { model: async () => model, dataset: async () => ({ ok: true, records: [], problems: [], checked: true }) } as unknown as FactCache;
  const memory = async (text: string) => (await validateConfig('file:///w/a.moslora.yaml', text, facts)).diagnostics.map((d) => ({ line: d.range.start.line, message: String(d.message) })).filter((d) => d.message.startsWith('memory:'));
  const config = (batch: number, backend: string, checkpointing?: boolean, workers?: number) =>
    ['model: ./m', `backend: ${backend}`, 'data:', '  train: t.jsonl', '  max_length: 256', 'training:', `  batch_size: ${batch}`, '  gradient_accumulation: 4', ...(checkpointing === undefined ? [] : [`  gradient_checkpointing: ${checkpointing}`]), ...(workers === undefined ? [] : [`  workers: ${workers}`]), ''].join('\n');

  it('warns on wasm at 3 × 256, naming the estimate, the limit and gradient checkpointing as the fix', async () => {
    const [warning, ...rest] = await memory(config(3, 'wasm', false));
    assert.ok(warning);
    assert.equal(rest.length, 0);
    assert.equal(warning.line, 4, 'on max_length: against the defaults (4 × 256), it is the larger');
    assert.equal((await memory(config(8, 'wasm', false)))[0]?.line, 6, 'on batch_size when that is the larger');
    assert.match(warning.message, /GiB at its peak/);
    assert.match(warning.message, /wasm backend's 4 GiB heap/);
    assert.match(warning.message, /To fit: set training.gradient_checkpointing: true \(estimated 1\.\d GiB; /);
    assert.match(warning.message, /or lower training.batch_size to 2 and raise training.gradient_accumulation to 6 to keep the effective batch \(12\)/);
  });

  it('is silent once gradient checkpointing is on, or auto (the default) turns it on, and past what it can save suggests a smaller batch', async () => {
    assert.deepEqual(await memory(config(4, 'wasm', true)), []);
    assert.deepEqual(await memory(config(4, 'wasm')), []);
    assert.deepEqual(await memory(config(8, 'wasm')), []);
    assert.match((await memory(config(16, 'wasm')))[0]?.message ?? '', /with gradient checkpointing \(auto\)/);
    const [warning] = await memory(config(16, 'wasm', true));
    assert.match(warning?.message ?? '', /with gradient checkpointing/);
    assert.match(warning?.message ?? '', /To fit: lower training.batch_size to \d+ and raise training.gradient_accumulation to \d+ to keep the effective batch \(64\)/);
    assert.doesNotMatch(warning?.message ?? '', /set training.gradient_checkpointing/);
  });

  it('counts what each thread holds when training.workers shares the batch, and suggests a batch per thread', async () => {
    assert.deepEqual(await memory(config(4, 'wasm', false, 2)), [], 'two rows a thread fit where four in one thread do not');
    const [warning] = await memory(config(6, 'wasm', false, 2));
    assert.match(warning?.message ?? '', /activations for 3 × 256 tokens, each of the 2 threads' share of the batch \(training\.workers\)/);
    assert.match(warning?.message ?? '', /or lower training\.batch_size to 4 \(2 for each of the 2 threads\) and raise training\.gradient_accumulation to 6 to keep the effective batch \(24\)/);
  });

  it("names AdamW's update where it is the larger peak, and fewer trainable values as the fix, not the batch", async () => {
    // MoSLoRA r 512 on all 84 modules: 512 × 175,104 + 84 × 512² = 111.7M trainable values, 23 copies at the update (9.6 GiB)
    const text = config(1, 'wasm', true).replace('model: ./m', 'model: ./m\nr: 512\ntarget_modules: all-linear');
    const [warning] = await memory(text);
    assert.match(warning?.message ?? '', /; AdamW's update after them 9\.6 GiB, the larger\)/);
    assert.match(warning?.message ?? '', /To fit: lower r or target fewer modules: AdamW's update holds 23 float32 copies of the 111,673,344 trainable values, whatever the batch\.$/);
    assert.doesNotMatch((await memory(config(3, 'wasm', false)))[0]?.message ?? '', /AdamW's update/);
  });

  it('says so when auto is what lands on wasm; nothing at batch 1, nor on a GPU backend', async () => {
    assert.match((await memory(config(4, 'auto', false)))[0]?.message ?? '', /auto lands on wasm/);
    assert.deepEqual(await memory(config(1, 'wasm')), []);
    assert.deepEqual(await memory(config(4, 'webgpu')), []);
  });
});
