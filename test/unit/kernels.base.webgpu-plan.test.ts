// The GPU buffer plan of a frozen base (kernels/base/webgpu-plan.ts): row chunks within the
// limits, as few and as even as fit, every frozen weight counted once, and clear refusals.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BASE_PRECISIONS, PackedMatrix, packedBytes, type BaseFormat } from '../../kernels/base/quant';
import { bindableBytes, chunkRows, frozenWeights, planBaseBuffers, rowCodeBytes, type ModelShape } from '../../kernels/base/webgpu-plan';

const MIB = 2 ** 20;
const DAWN_DEFAULTS = { maxStorageBufferBindingSize: 128 * MIB, maxBufferSize: 256 * MIB };
const LLAMA_3_1_8B: ModelShape = { hidden: 4096, layers: 32, heads: 32, kvHeads: 8, intermediate: 14336, vocabulary: 128256, tied: false };
const QWEN_2_5_0_5B: ModelShape = { hidden: 896, layers: 24, heads: 14, kvHeads: 2, intermediate: 4864, vocabulary: 151936, tied: true };

describe('chunkRows', () => {
  it("gives a row's codes as PackedMatrix stores them, for every precision", () => {
    for (const precision of BASE_PRECISIONS) {
      for (const [cols, groupSize] of [[40, 16], [37, 32], [4096, 64]] as const) {
        const matrix = PackedMatrix.allocate(3, cols, { precision, groupSize });
        assert.equal(rowCodeBytes(cols, matrix.format), matrix.rowBytes, `${precision} [3, ${cols}]`);
      }
    }
  });

  it('keeps one chunk where the matrix fits, and pads its codes to whole words', () => {
    assert.deepEqual(chunkRows(7, 37, { precision: 'int8', groupSize: 16 }, DAWN_DEFAULTS), [{ row0: 0, rows: 7, codeBytes: 260, scaleBytes: 7 * 3 * 4 }]);
    assert.deepEqual(chunkRows(3, 5, { precision: 'bfloat16', groupSize: 64 }, DAWN_DEFAULTS), [{ row0: 0, rows: 3, codeBytes: 32, scaleBytes: 0 }]);
  });

  it('splits into as few chunks of whole rows as fit, of nearly equal size, covering every row once', () => {
    const format: BaseFormat = { precision: 'int4', groupSize: 64 };
    // 128256 rows of 2048 bytes: 65536 rows a binding of 128 MiB, so 2 chunks of 64128
    const chunks = chunkRows(128256, 4096, format, DAWN_DEFAULTS);
    assert.deepEqual(chunks.map((c) => [c.row0, c.rows]), [[0, 64128], [64128, 64128]]);
    for (const c of chunks) assert.equal(c.codeBytes, c.rows * 2048);
    // 10 rows of 40 bytes (float32, 10 columns) in buffers of 120 bytes: 4 chunks of 3, 3, 2, 2
    const small = chunkRows(10, 10, { precision: 'float32', groupSize: 16 }, { maxStorageBufferBindingSize: 120, maxBufferSize: 1000 });
    assert.deepEqual(small.map((c) => c.rows), [3, 3, 2, 2]);
    assert.deepEqual(small.map((c) => c.row0), [0, 3, 6, 8]);
    assert.ok(small.every((c) => c.codeBytes <= 120));
  });

  it('keeps within the smaller limit, the scales too, and within i32 byte indices', () => {
    const format: BaseFormat = { precision: 'float32', groupSize: 16 };
    assert.equal(bindableBytes({ maxStorageBufferBindingSize: 1000, maxBufferSize: 403 }), 400);
    assert.equal(bindableBytes({ maxStorageBufferBindingSize: 2 ** 32 - 4, maxBufferSize: 2 ** 40 }), 2 ** 31 - 4);
    assert.deepEqual(chunkRows(20, 10, format, { maxStorageBufferBindingSize: 1000, maxBufferSize: 80 }).map((c) => c.rows), [2, 2, 2, 2, 2, 2, 2, 2, 2, 2]);
    // int4 with groups of 16 and 17 columns: 16 bytes of codes but 8 of scales a row
    const int4 = chunkRows(4, 17, { precision: 'int4', groupSize: 16 }, { maxStorageBufferBindingSize: 16, maxBufferSize: 16 });
    assert.deepEqual(int4.map((c) => [c.codeBytes, c.scaleBytes]), [[16, 8], [16, 8], [16, 8], [16, 8]]);
  });

  it('refuses, saying which matrix, a row that no buffer holds, and limits that are not byte counts', () => {
    assert.throws(() => chunkRows(2, 100, { precision: 'float32', groupSize: 16 }, { maxStorageBufferBindingSize: 256, maxBufferSize: 256 }, 'lm_head.weight'), /lm_head\.weight: one row \[100\] at float32 takes 400 bytes, more than the device binds in one buffer \(256\)/);
    assert.throws(() => chunkRows(2, 4, { precision: 'float32', groupSize: 16 }, { maxStorageBufferBindingSize: Number.NaN, maxBufferSize: 256 }), /maxStorageBufferBindingSize must be an integer/);
    assert.throws(() => chunkRows(0, 4, { precision: 'float32', groupSize: 16 }, DAWN_DEFAULTS, 'q'), /q: rows and columns must be positive integers/);
  });
});

describe('planBaseBuffers', () => {
  it("lists a Llama's frozen weights once each: the tied lm_head as the embedding", () => {
    const names = frozenWeights(QWEN_2_5_0_5B).map((w) => w.name);
    assert.equal(names.length, 1 + 24 * 9 + 1);
    assert.equal(new Set(names).size, names.length);
    assert.ok(!names.includes('lm_head.weight'));
    assert.ok(frozenWeights(LLAMA_3_1_8B).some((w) => w.name === 'lm_head.weight' && w.rows === 128256 && w.cols === 4096));
    assert.deepEqual(frozenWeights(LLAMA_3_1_8B).find((w) => w.name === 'model.layers.31.self_attn.k_proj.weight'), { name: 'model.layers.31.self_attn.k_proj.weight', rows: 1024, cols: 4096, matrix: true });
  });

  it("totals the matrices' packed bytes (and the norms at float32), each buffer within the limits", () => {
    for (const precision of BASE_PRECISIONS) {
      const format = { precision, groupSize: 64 };
      const plan = planBaseBuffers(LLAMA_3_1_8B, format, DAWN_DEFAULTS);
      const expected = frozenWeights(LLAMA_3_1_8B).reduce((sum, w) => sum + (w.matrix ? packedBytes(w.rows, w.cols, format) : 4 * w.cols), 0);
      // whole words: every shape here is a multiple of 4 bytes a row
      assert.equal(plan.totalBytes, expected, precision);
      assert.ok(plan.largestBuffer <= 128 * MIB, `${precision}: ${plan.largestBuffer}`);
      const lmHead = plan.weights.find((w) => w.name === 'lm_head.weight')!;
      assert.equal(lmHead.chunks.reduce((n, c) => n + c.rows, 0), 128256);
    }
    // 8.03B weights; 4-bit with groups of 64 is 4.5 bits a weight
    const bytes = (precision: BaseFormat['precision']) => planBaseBuffers(LLAMA_3_1_8B, { precision, groupSize: 64 }, DAWN_DEFAULTS).totalBytes;
    assert.ok(Math.abs(bytes('float32') / 4 / 8.03e9 - 1) < 0.001, `${bytes('float32')}`);
    assert.ok(Math.abs(bytes('int4') / bytes('float32') - 4.5 / 32) < 0.001);
  });

  it('refuses shapes that are not a model', () => {
    assert.throws(() => planBaseBuffers({ ...LLAMA_3_1_8B, kvHeads: 5 }, { precision: 'int4', groupSize: 64 }, DAWN_DEFAULTS), /heads \(32\) must be a multiple of kvHeads \(5\)/);
    assert.throws(() => planBaseBuffers({ ...LLAMA_3_1_8B, layers: 0 }, { precision: 'int4', groupSize: 64 }, DAWN_DEFAULTS), /layers must be a positive integer/);
    assert.throws(() => planBaseBuffers(LLAMA_3_1_8B, { precision: 'int4', groupSize: 48 }, DAWN_DEFAULTS), /group size 48/);
  });
});
