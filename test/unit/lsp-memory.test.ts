import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { validateConfig } from '../../server/lsp/diagnostics';
import type { FactCache, LinearModule, ModelFacts } from '../../server/lsp/facts';
import { estimateMemory, memoryLimit, WASM_HEAP_BYTES } from '../../server/lsp/memory';

// The known case (README, "Performance"): a ~100M Llama trained with MoSLoRA r 16 on q,k,v,up,down.
const LLAMA_100M = { baseParameters: 100_000_000, layers: 12, hidden: 768, vocab: 32_000, maxLength: 256 };
// r·(d_in + d_out) + r² per module: q,k,v 768→768, up 768→2048, down 2048→768.
const TRAINABLE = 12 * (3 * (16 * (768 + 768) + 256) + 2 * (16 * (768 + 2048) + 256));

describe('memory estimate', () => {
  it('a ~100M Llama at 4 × 256 tokens exceeds the wasm heap, at 1 × 256 it fits', () => {
    const wasm = memoryLimit('wasm')!;
    assert.equal(wasm.bytes, WASM_HEAP_BYTES);
    const four = estimateMemory({ ...LLAMA_100M, trainable: TRAINABLE, batch: 4 });
    const one = estimateMemory({ ...LLAMA_100M, trainable: TRAINABLE, batch: 1 });
    assert.ok(four.total > wasm.bytes, `batch 4: ${four.total} should exceed ${wasm.bytes}`);
    assert.ok(one.total < wasm.bytes, `batch 1: ${one.total} should fit in ${wasm.bytes}`);
  });

  it('adds float32 base weights, three copies of the trainable parameters and activations', () => {
    const e = estimateMemory({ baseParameters: 1000, trainable: 10, batch: 2, maxLength: 3, layers: 1, hidden: 1, vocab: 1 });
    assert.equal(e.weights, 4000);
    assert.equal(e.adapter, 120);
    assert.equal(e.activations, 4 * 2 * 3 * (16 + 4) * 4);
    assert.equal(e.total, e.weights + e.adapter + e.activations);
  });

  it('knows the limit of wasm, auto (wasm on a machine without a GPU) and cpu, and not of GPU backends', () => {
    assert.equal(memoryLimit('auto')?.bytes, WASM_HEAP_BYTES);
    assert.match(memoryLimit('auto')!.what, /auto lands on wasm/);
    assert.equal(memoryLimit('cpu', 8 * 1024 ** 3)?.bytes, 8 * 1024 ** 3);
    assert.equal(memoryLimit('webgpu'), null);
    assert.equal(memoryLimit('tensorflow'), null);
  });
});

describe('memory diagnostic', () => {
  const modules: LinearModule[] = [];
  for (let layer = 0; layer < 12; layer++) {
    const p = `model.layers.${layer}`;
    for (const m of ['self_attn.q_proj', 'self_attn.k_proj', 'self_attn.v_proj', 'self_attn.o_proj']) modules.push({ name: `${p}.${m}`, dIn: 768, dOut: 768 });
    modules.push({ name: `${p}.mlp.up_proj`, dIn: 768, dOut: 2048 }, { name: `${p}.mlp.gate_proj`, dIn: 768, dOut: 2048 }, { name: `${p}.mlp.down_proj`, dIn: 2048, dOut: 768 });
  }
  const model: ModelFacts = { ok: true, dir: '/m/llama-100m', architecture: 'LlamaForCausalLM', modules, totalParameters: 100_000_000, shape: { hidden: 768, layers: 12, vocab: 32_000 } };
  const facts = { model: async () => model, dataset: async () => ({ ok: true, records: [], problems: [], checked: true }) } as unknown as FactCache;
  const memory = async (text: string) => (await validateConfig('file:///w/a.moslora.yaml', text, facts)).diagnostics.map((d) => ({ line: d.range.start.line, message: String(d.message) })).filter((d) => d.message.startsWith('memory:'));
  const config = (batch: number, backend: string) => ['model: ./m', `backend: ${backend}`, 'data:', '  train: t.jsonl', '  max_length: 256', 'training:', `  batch_size: ${batch}`, '  gradient_accumulation: 4', ''].join('\n');

  it('warns at batch_size on wasm at 4 × 256, naming the estimate, the limit and the fix', async () => {
    const [warning, ...rest] = await memory(config(4, 'wasm'));
    assert.ok(warning);
    assert.equal(rest.length, 0);
    assert.equal(warning.line, 6);
    assert.match(warning.message, /GiB at its peak/);
    assert.match(warning.message, /wasm backend's 4 GiB heap/);
    assert.match(warning.message, /batch_size to \d and raise training.gradient_accumulation to \d+ to keep the effective batch \(16\)/);
  });

  it('says so when auto is what lands on wasm; nothing at batch 1, nor on a GPU backend', async () => {
    assert.match((await memory(config(4, 'auto')))[0]?.message ?? '', /auto lands on wasm/);
    assert.deepEqual(await memory(config(1, 'wasm')), []);
    assert.deepEqual(await memory(config(4, 'webgpu')), []);
  });
});
