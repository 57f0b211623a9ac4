// The training memory estimate (server/engine/memory.ts) against the wasm heap measured for a
// ~100M Llama, the resident peaks measured for 0.5B–8B shapes (bench/results/scale.jsonl) and
// AdamW's own peak, and the automatic gradient checkpointing it decides; the editor's warning
// built on it is in lsp.diagnostics.test.ts.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ProductEngine } from '../../kernels/backends/mlas-matmul';
import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '../../kernels/backends/backend';
import { AdamW } from '../../server/engine/optim';
import { join } from 'node:path';
import { boundedBytes, estimateMemory, machineRefusal, memoryLimit, OPTIMIZER_COPIES, PROCESS_BYTES, resolveCheckpointing, WASM_HEAP_BYTES } from '../../server/engine/memory';
import { LLAMA_3_1_8B, llamaLinearModules, llamaParameterCount, QWEN2_5_SHAPES, type LlamaShape } from '../../bench/random-llama';

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

  // `npm run bench -- scale`: each shape and precision's resident peak, MoSLoRA r 16 on q,k,v,up,down, 1 × 256 tokens, checkpointing, base in the native store
  const SCALE_RECORDS = join(import.meta.dirname, '..', '..', 'bench', 'results', 'scale.jsonl');
  const SCALE_SHAPES: Record<string, LlamaShape> = { ...QWEN2_5_SHAPES, 'llama-3.1-8b': LLAMA_3_1_8B };
  interface ScaleRecord {
    batch: number;
    tokens: number;
    rank: number;
    targets: string[];
    cases: { shape: string; precision: string; store_estimate_gib: number; measured: { rss_peak_gib: number } | null }[];
  }
  const scaleCases = readFileSync(SCALE_RECORDS, 'utf8').split('\n').filter((line) => line.trim()).map((line) => JSON.parse(line) as ScaleRecord)
    .flatMap((r) => r.cases.filter((c) => c.measured).map((c) => ({ ...c, record: r, measured: c.measured! })));

  it("estimates each process's resident peak recorded by the scale benchmark at or above it, and not far above (bench/results/scale.jsonl)", (t) => {
    assert.ok(scaleCases.length >= 11, `${SCALE_RECORDS}: ${scaleCases.length} measured cases, expected the 0.5B–8B shapes' 11 or more`);
    const lines: string[] = [];
    for (const { shape: name, precision, store_estimate_gib, measured, record } of scaleCases) {
      const shape = SCALE_SHAPES[name];
      assert.ok(shape, `${SCALE_RECORDS}: unknown shape ${name}`);
      const trainable = llamaLinearModules(shape)
        .filter((m) => record.targets.some((t) => m.name.endsWith(`.${t}`)))
        .reduce((n, m) => n + record.rank * (m.dIn + m.dOut) + record.rank ** 2, 0);
      const e = estimateMemory({
        hidden: shape.hidden, layers: shape.layers, heads: shape.heads, vocab: shape.vocab, baseParameters: llamaParameterCount(shape),
        nativeBytes: store_estimate_gib * GiB, products: 'mlas', trainable, batch: record.batch, maxLength: record.tokens, checkpointing: true,
      });
      const ratio = e.process / GiB / measured.rss_peak_gib;
      lines.push(`${name} ${precision}: estimated ${(e.process / GiB).toFixed(3)} GiB, measured ${measured.rss_peak_gib} GiB (× ${ratio.toFixed(3)})`);
      assert.ok(ratio >= 1, `${name} at ${precision}: the estimate is below the measured peak, a run could be let start that does not fit\n${lines.at(-1)}`);
      assert.ok(ratio <= 1.15, `${name} at ${precision}: the estimate is more than 15% above the measured peak, a run that fits could be refused\n${lines.at(-1)}`);
    }
    t.diagnostic(lines.join('\n'));
  });

  it('adds two float32 copies of the base (XNNPACK packs its own; one with MLAS), three copies of the trainable parameters, the runtime and activations', () => {
    assert.equal(estimateMemory({ baseParameters: 1000, products: 'mlas', trainable: 10, batch: 2, maxLength: 3, layers: 2, hidden: 1, heads: 1, vocab: 1, checkpointing: false }).weights, 4000);
    const e = estimateMemory({ baseParameters: 1000, products: 'xnnpack', trainable: 10, batch: 2, maxLength: 3, layers: 2, hidden: 1, heads: 1, vocab: 1, checkpointing: false });
    assert.equal(e.weights, 8000);
    assert.equal(e.adapter, 120);
    assert.equal(e.activations, 4 * 2 * 3 * (2 * (120 + 3 * 6) + 4));
    assert.equal(e.total, e.weights + e.adapter + 80 * 1024 ** 2 + e.activations);
    assert.equal(e.process, e.total + PROCESS_BYTES, 'no native store: the heap and the process outside it');
    const checkpointed = estimateMemory({ baseParameters: 1000, products: 'xnnpack', trainable: 10, batch: 2, maxLength: 3, layers: 2, hidden: 1, heads: 1, vocab: 1, checkpointing: true });
    assert.equal(checkpointed.activations, 4 * 2 * 3 * (120 + 3 * 6 + 2 + 4));
  });

  it("counts at OPTIMIZER_COPIES the trainable-sized vectors alive at AdamW's peak, the gradient clipped (tfjs's own profile)", async () => {
    await selectBackend('cpu');
    const n = 3000;
    const params = new Map([0, 1, 2].map((i) => [`p${i}`, tf.variable(tf.fill([n / 3], 0.5), true, `optimizer-peak-${i}`)] as const));
    const optimizer = new AdamW({ weightDecay: 0.01 });
    const grad = tf.fill([n], 2) as tf.Tensor1D;
    await optimizer.applyClipped(params, grad, 1e-3, 1); // lays the moments out
    const before = tf.memory().numBytes; // the parameters, the moments, the gradient
    const { peakBytes } = await tf.profile(() => optimizer.applyClipped(params, grad, 1e-3, 1));
    const copies = (peakBytes - before) / (4 * n) + 4;
    tf.dispose([grad, ...params.values()]);
    optimizer.dispose();
    assert.ok(copies <= OPTIMIZER_COPIES && copies >= OPTIMIZER_COPIES - 2, `AdamW's step peaked at ${copies} trainable-sized vectors, OPTIMIZER_COPIES is ${OPTIMIZER_COPIES}`);
  });

  it("takes AdamW's step as the heap's peak where it outgrows the activations: a few billion base parameters' adapters", () => {
    const run = { baseParameters: 0, products: 'mlas' as const, batch: 1, maxLength: 256, layers: 2, hidden: 64, heads: 1, vocab: 100, checkpointing: true };
    const small = estimateMemory({ ...run, trainable: 1000 });
    assert.equal(small.total, 80 * 1024 ** 2 + small.adapter + small.activations, "the activations' peak");
    const large = estimateMemory({ ...run, trainable: 28_000_000 });
    assert.equal(large.update, OPTIMIZER_COPIES * 4 * 28_000_000);
    assert.equal(large.total, 80 * 1024 ** 2 + large.update, "AdamW's peak, the activations freed");
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

  it('refuses a run that would not fit the whole machine even with checkpointing, and passes one that does', () => {
    const run = { ...LLAMA_100M, trainable: 0, checkpointing: 'auto' as const, threads: 2 };
    const machine = 24 * GiB;
    assert.equal(machineRefusal({ ...run, batch: 8 }, machine), null);
    assert.match(
      machineRefusal({ ...run, batch: 2_147_483_647 }, machine)!,
      /^training\.batch_size 2147483647 × data\.max_length 256 needs an estimated \d+\.\d GiB even with gradient checkpointing, more than this machine's 24\.0 GiB of memory; lower training\.batch_size \(raising training\.gradient_accumulation keeps the effective batch\) or data\.max_length$/,
    );
    assert.match(machineRefusal({ ...run, batch: 400, checkpointing: false }, machine)!, /needs an estimated .* GiB, more than .*, or set training\.gradient_checkpointing: true$/);
    // a base too large for the machine at its precision: the refusal names the least change that fits
    const big = { ...run, products: 'mlas' as const, batch: 8, nativeBytes: 32 * GiB };
    const lower = [{ setting: 'torch_dtype: bfloat16', nativeBytes: 16 * GiB }, { setting: 'load_in_4bit: true', nativeBytes: 4.5 * GiB }];
    assert.match(machineRefusal(big, machine, lower)!, /more than this machine's 24\.0 GiB of memory; store the base in lower precision \(torch_dtype: bfloat16: an estimated 1\d\.\d GiB\), or lower training\.batch_size/);
    assert.match(machineRefusal({ ...big, nativeBytes: 64 * GiB }, machine, [{ setting: 'load_in_4bit: true', nativeBytes: 30 * GiB }])!, /of memory; lower training\.batch_size/, 'nothing suggested that would not fit');
  });

  it('counts a base in the native store outside the heap at its stored precision: the heap bounds activations, the machine the process', async () => {
    const { readModelLayout, baseStoreBytes } = await import('../../server/models/modules');
    const { layout } = await readModelLayout(join(import.meta.dirname, '..', '..', 'examples', 'tiny-model'));
    const at = (precision: 'float32' | 'bfloat16' | 'int8' | 'nf4', embedding: 'float32' | 'bfloat16' = 'float32') => baseStoreBytes(layout, { linear: { precision, groupSize: 64 }, embedding: { precision: embedding, groupSize: 64 } });
    // 4 × (q, o 128², k, v 64·128, gate, up, down 256·128) = 589,824 linear weights; the tied 1024×128 embedding = lm_head, 131,072
    assert.equal(at('float32'), 4 * (589_824 + 131_072));
    assert.equal(at('bfloat16', 'bfloat16'), 2 * (589_824 + 131_072));
    assert.equal(at('int8'), 589_824 * (1 + 4 / 64) + 4 * 131_072);
    assert.equal(at('nf4', 'bfloat16'), 589_824 * (0.5 + 4 / 64) + 2 * 131_072);
    const run = { ...LLAMA_100M, products: 'mlas' as const, trainable: TRAINABLE, batch: 2, checkpointing: true };
    const heap = estimateMemory(run);
    const native = estimateMemory({ ...run, nativeBytes: 0.6 * GiB });
    assert.equal(native.weights, 0);
    assert.equal(heap.total - native.total, heap.weights, 'the heap no longer holds the weights');
    assert.ok(native.process > native.total + 0.6 * GiB, 'the process holds the store besides the heap');
    // an 8B-shaped base at float32 (32 GB) is refused by the machine, not by the heap
    const big = { ...run, nativeBytes: 32 * GiB };
    const machine = memoryLimit('cpu', 24 * GiB)!;
    assert.equal(resolveCheckpointing('auto', { ...big, checkpointing: undefined } as never, memoryLimit('wasm')).on, false);
    assert.ok(boundedBytes(estimateMemory(big), machine) > machine.bytes);
    assert.ok(boundedBytes(estimateMemory({ ...big, nativeBytes: 4.5 * GiB }), machine) < machine.bytes, 'at 4-bit it fits');
  });
});
