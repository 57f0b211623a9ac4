// The training memory estimate (server/engine/memory.ts) against the wasm heap measured for a
// ~100M Llama, and the automatic gradient checkpointing it decides; the editor's warning built on
// it is in lsp.diagnostics.test.ts.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ProductEngine } from '../../kernels/backends/mlas-matmul';
import { estimateMemory, memoryLimit, resolveCheckpointing, WASM_HEAP_BYTES } from '../../server/engine/memory';

// The measured case (server/engine/memory.ts): a ~100M Llama trained with MoSLoRA r 16 on q,k,v,up,down.
const LLAMA_100M = { baseParameters: 100_092_672, products: 'xnnpack' as const, layers: 12, hidden: 768, heads: 12, vocab: 32_000, maxLength: 256 };
// r·(d_in + d_out) + r² per module: q 768→768, k,v 768→256, up 768→2048, down 2048→768.
const TRAINABLE = 12 * (16 * (768 + 768) + 2 * 16 * (768 + 256) + 2 * 16 * (768 + 2048) + 5 * 256);
const GiB = 1024 ** 3;

describe('memory estimate', () => {
  // [batch, checkpointing, layers, heap measured (GiB)], and how far from it the estimate may be: below, a run aborts unwarned
  const measured: Record<ProductEngine, { cases: [number, boolean, number, number][]; under: number; over: number }> = {
    xnnpack: { cases: [[1, false, 12, 2.12], [2, false, 12, 3.57], [2, true, 12, 1.35], [4, true, 12, 1.77], [8, true, 12, 2.62], [4, true, 4, 1.32]], under: 0.06, over: 0.06 },
    mlas: { cases: [[1, false, 12, 1.74], [2, false, 12, 3.21], [2, true, 12, 0.89], [4, true, 12, 1.36], [8, true, 12, 2.25], [4, true, 4, 1.04]], under: 0, over: 0.16 },
  };
  for (const [products, { cases, under, over }] of Object.entries(measured) as [ProductEngine, (typeof measured)[ProductEngine]][]) {
    it(`reproduces the wasm heap measured for a ~100M Llama with ${products}'s products (−${100 * under}% … +${100 * over}%)`, () => {
      // 6,292,992 parameters in each layer of this shape: q, o 768², k, v 768·256, gate, up, down 768·2048, two norms.
      for (const [batch, checkpointing, layers, heap] of cases) {
        const e = estimateMemory({ ...LLAMA_100M, layers, baseParameters: LLAMA_100M.baseParameters - (12 - layers) * 6_292_992, products, trainable: (TRAINABLE * layers) / 12, batch, checkpointing });
        const estimated = e.total / GiB;
        assert.ok(estimated >= heap * (1 - under) && estimated <= heap * (1 + over), `batch ${batch}, ${layers} layers, checkpointing ${checkpointing}: estimated ${estimated.toFixed(2)} GiB, measured ${heap}`);
      }
    });
  }

  it('puts batch 3 without checkpointing above the wasm heap, batch 2 (measured 3.57 GiB) and batch 8 with it below', () => {
    const wasm = memoryLimit('wasm')!;
    assert.equal(wasm.bytes, WASM_HEAP_BYTES);
    assert.ok(estimateMemory({ ...LLAMA_100M, trainable: TRAINABLE, batch: 3, checkpointing: false }).total > wasm.bytes);
    assert.ok(estimateMemory({ ...LLAMA_100M, trainable: TRAINABLE, batch: 2, checkpointing: false }).total < wasm.bytes);
    assert.ok(estimateMemory({ ...LLAMA_100M, trainable: TRAINABLE, batch: 8, checkpointing: true }).total < wasm.bytes);
  });

  it('adds two float32 copies of the base (XNNPACK packs its own; one with MLAS), three copies of the trainable parameters, the runtime and activations', () => {
    assert.equal(estimateMemory({ baseParameters: 1000, products: 'mlas', trainable: 10, batch: 2, maxLength: 3, layers: 2, hidden: 1, heads: 1, vocab: 1, checkpointing: false }).weights, 4000);
    const e = estimateMemory({ baseParameters: 1000, products: 'xnnpack', trainable: 10, batch: 2, maxLength: 3, layers: 2, hidden: 1, heads: 1, vocab: 1, checkpointing: false });
    assert.equal(e.weights, 8000);
    assert.equal(e.adapter, 120);
    assert.equal(e.activations, 4 * 2 * 3 * (2 * (120 + 3 * 6) + 4));
    assert.equal(e.total, e.weights + e.adapter + 80 * 1024 ** 2 + e.activations);
    const checkpointed = estimateMemory({ baseParameters: 1000, products: 'xnnpack', trainable: 10, batch: 2, maxLength: 3, layers: 2, hidden: 1, heads: 1, vocab: 1, checkpointing: true });
    assert.equal(checkpointed.activations, 4 * 2 * 3 * (120 + 3 * 6 + 2 + 4));
  });

  it('auto turns checkpointing on exactly when the run does not fit without it, and says why', () => {
    const run = { ...LLAMA_100M, trainable: TRAINABLE };
    const wasm = memoryLimit('wasm');
    assert.deepEqual(resolveCheckpointing('auto', { ...run, batch: 2 }, wasm), { on: false });
    const three = resolveCheckpointing('auto', { ...run, batch: 3 }, wasm);
    assert.equal(three.on, true);
    assert.match(three.reason!, /^gradient checkpointing on \(training\.gradient_checkpointing: auto\): without it this run needs an estimated [45]\.\d GiB, more than the wasm backend's 4 GiB heap; with it 1\.\d GiB$/);
    assert.deepEqual(resolveCheckpointing(false, { ...run, batch: 2 }, wasm), { on: false }, 'an explicit setting is kept');
    assert.deepEqual(resolveCheckpointing(true, { ...run, batch: 1 }, wasm), { on: true });
    assert.deepEqual(resolveCheckpointing('auto', { ...run, batch: 2 }, memoryLimit('webgpu')), { on: false }, 'no known limit: off');
    assert.deepEqual(resolveCheckpointing('auto', null, wasm), { on: false }, 'no known shape: off');
  });

  it('knows the limit of wasm, auto (wasm on a machine without a GPU) and cpu, and not of GPU backends', () => {
    assert.equal(memoryLimit('auto')?.bytes, WASM_HEAP_BYTES);
    assert.match(memoryLimit('auto')!.what, /auto lands on wasm/);
    assert.equal(memoryLimit('cpu', 8 * 1024 ** 3)?.bytes, 8 * 1024 ** 3);
    assert.equal(memoryLimit('webgpu'), null);
    assert.equal(memoryLimit('tensorflow'), null);
  });
});
