// Packed matrices (kernels/base/quant.ts): each precision's codes and scales against values known
// by hand, and round trips within half a step, the error growing as the precision falls.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import seedrandom from 'seedrandom';
import { BASE_PRECISIONS, NF4_LEVELS, PackedMatrix, checkBaseFormat, packedBytes, type BaseFormat, type BasePrecision } from '../../kernels/base/quant';

const f32 = Math.fround;

function stored(values: number[], rows: number, cols: number, format: BaseFormat): { matrix: PackedMatrix; deq: number[] } {
  const matrix = PackedMatrix.allocate(rows, cols, format);
  matrix.write(Float32Array.from(values), 0, rows);
  const out = new Float32Array(rows * cols);
  matrix.readRows(0, rows, out);
  return { matrix, deq: [...out] };
}

function normals(n: number, seed: number): Float32Array {
  const random = seedrandom(String(seed));
  return Float32Array.from({ length: n }, () => Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random()) * 0.02);
}

describe('packed matrices: formats known by hand', () => {
  it('int4: codes q + 8 two a byte (even column low), rows padded to whole groups, scale m / −8', () => {
    // row 0: m = 4 (the first of largest magnitude), s = −0.5; −4 / s = 8 clips to 7. Row 1: all zero.
    const { matrix, deq } = stored([1, -2, 0.5, 4, -4, 0, 0, 0, 0, 0], 2, 5, { precision: 'int4', groupSize: 16 });
    assert.equal(matrix.rowBytes, 8);
    // codes: 1 → 6, −2 → 12, 0.5 → 7, 4 → 0, −4 → 15; padding and zeros are code 8
    assert.deepEqual([...matrix.codeBytes], [0xc6, 0x07, 0x8f, 0x88, 0x88, 0x88, 0x88, 0x88, ...new Array<number>(8).fill(0x88)]);
    assert.deepEqual([...matrix.scales!], [-0.5, 0]);
    assert.deepEqual(deq, [1, -2, 0.5, 4, -3.5, 0, 0, 0, 0, 0]);
  });

  it("nf4: the nearest of NF4's levels to w / absmax, packed as int4, zero padding at code 7", () => {
    // 0.5 lies below the midpoint of levels 12 (0.4407) and 13 (0.5626); 0.3 above that of 10 and 11
    const { matrix, deq } = stored([1, -2, 0.15916, 0.6], 1, 4, { precision: 'nf4', groupSize: 16 });
    assert.deepEqual([...matrix.scales!], [2]);
    assert.deepEqual([...matrix.codeBytes], [0x0c, 0xb8, ...new Array<number>(6).fill(0x77)]);
    assert.deepEqual(deq, [12, 0, 8, 11].map((code) => f32(NF4_LEVELS[code]! * 2)));
  });

  it('nf4: every code the nearest level, for 4,096 values across [−1, 1] (ties to the lower level)', () => {
    const n = 4096;
    // each group of 1024 starts with 1 (its absmax: x = w); value 1 is an exact tie between levels 6 and 7
    const row = Float32Array.from({ length: n }, (_, i) => (i % 1024 === 0 ? 1 : Math.fround(Math.sin(i * 12.9898))));
    row[1] = NF4_LEVELS[6]! / 2;
    const matrix = PackedMatrix.allocate(1, n, { precision: 'nf4', groupSize: 1024 });
    matrix.write(row, 0, 1);
    assert.deepEqual([...matrix.scales!], [1, 1, 1, 1]);
    const nearest = (x: number) => {
      let best = 0;
      for (let c = 1; c < 16; c++) if (Math.abs(x - NF4_LEVELS[c]!) < Math.abs(x - NF4_LEVELS[best]!)) best = c;
      return best;
    };
    const codes = [...matrix.codeBytes].flatMap((b) => [b & 0x0f, b >> 4]);
    assert.deepEqual(codes, [...row].map(nearest));
  });

  it('int8: q = round(w / s) with s = max|w| / 127, ties away from zero, scales per group along the row', () => {
    const s = 2 ** -7; // max|w| = 127 · 2^-7
    const row = [127 * s, -64 * s, 1.5 * s, -1.5 * s, 0.4 * s];
    const { matrix, deq } = stored(row, 1, 5, { precision: 'int8', groupSize: 16 });
    assert.deepEqual([...matrix.scales!], [s]);
    assert.deepEqual([...matrix.codeBytes], [0x7f, 0xc0, 0x02, 0xfe, 0x00]);
    assert.deepEqual(deq, [127 * s, -64 * s, 2 * s, -2 * s, 0]);
  });

  it('int8: a row of two groups and a partial third has a scale for each', () => {
    const row = Array.from({ length: 40 }, (_, c) => (c < 16 ? 1.27 : c < 32 ? -0.254 : 0.0127) * (c % 2 ? -1 : 1));
    const { matrix, deq } = stored(row, 1, 40, { precision: 'int8', groupSize: 16 });
    assert.deepEqual([...matrix.scales!], [f32(1.27 / 127), f32(0.254 / 127), f32(0.0127 / 127)]);
    assert.ok(deq.every((v, c) => Math.abs(v - f32(row[c]!)) <= matrix.scales![Math.floor(c / 16)]! / 2));
  });

  it('bfloat16: float32 rounded to nearest, ties to even; NaN stays NaN', () => {
    const { matrix, deq } = stored([1, 1 + 2 ** -8, 1 + 3 * 2 ** -8, -2, NaN], 1, 5, { precision: 'bfloat16', groupSize: 64 });
    const bits = [...new Uint16Array(matrix.codeBytes.buffer as SharedArrayBuffer)];
    assert.deepEqual(bits.slice(0, 4), [0x3f80, 0x3f80, 0x3f82, 0xc000]);
    assert.deepEqual(deq.slice(0, 4), [1, 1, 1 + 4 * 2 ** -8, -2]);
    assert.ok(Number.isNaN(deq[4]));
  });

  it('float16: the largest finite, overflow to Inf, the smallest subnormal, −0', () => {
    const { matrix, deq } = stored([1, 65504, 70000, 2 ** -24, -0], 1, 5, { precision: 'float16', groupSize: 64 });
    assert.deepEqual([...new Uint16Array(matrix.codeBytes.buffer as SharedArrayBuffer)], [0x3c00, 0x7bff, 0x7c00, 0x0001, 0x8000]);
    assert.deepEqual(deq, [1, 65504, Infinity, 2 ** -24, -0]);
  });

  it('float32: every value as given', () => {
    const values = [1.5, -3.25e-20, 7e30, 0];
    assert.deepEqual(stored(values, 2, 2, { precision: 'float32', groupSize: 64 }).deq, values.map(f32));
  });
});

/** The widest gap between neighbouring NF4 levels (−1 to −0.696). */
const NF4_WIDEST_GAP = Math.max(...Array.from({ length: 15 }, (_, i) => NF4_LEVELS[i + 1]! - NF4_LEVELS[i]!));

describe('packed matrices: round trips', () => {
  const [rows, cols] = [6, 200];
  const values = normals(rows * cols, 3);

  for (const groupSize of [16, 64, 128]) {
    it(`int8, int4, nf4 with groups of ${groupSize}: each weight within half a step of its level`, () => {
      for (const precision of ['int8', 'int4', 'nf4'] as const) {
        const { matrix, deq } = stored([...values], rows, cols, { precision, groupSize });
        for (let r = 0; r < rows; r++) {
          for (let c = 0; c < cols; c++) {
            const w = values[r * cols + c]!;
            const s = Math.abs(matrix.scales![r * matrix.groups + Math.floor(c / groupSize)]!);
            // int4 has 8 levels on the extreme's side and 7 on the other: beyond 7.5 steps there, a weight clips to the 7th, at most a step off
            const step = precision === 'nf4' ? s * NF4_WIDEST_GAP : s;
            const bound = precision === 'int4' && Math.abs(w) > 7.5 * s ? s : step / 2;
            assert.ok(Math.abs(deq[r * cols + c]! - w) <= bound * (1 + 1e-6), `${precision} [${r}, ${c}]: ${w} → ${deq[r * cols + c]} (step ${step})`);
          }
        }
      }
    });
  }

  it('errors grow as precision falls: float32 < bfloat16 · float16 < int8 < int4, nf4', () => {
    const error = (precision: BasePrecision) => {
      const { deq } = stored([...values], rows, cols, { precision, groupSize: 64 });
      return Math.sqrt(deq.reduce((sum, v, i) => sum + (v - values[i]!) ** 2, 0) / deq.length);
    };
    const e = Object.fromEntries(BASE_PRECISIONS.map((p) => [p, error(p)])) as Record<BasePrecision, number>;
    assert.equal(e.float32, 0);
    assert.ok(e.float16 < e.int8 && e.bfloat16 < e.int8 && e.int8 < e.int4 && e.int8 < e.nf4, JSON.stringify(e));
    // normal weights: NF4's levels fit them better than int4's even steps
    assert.ok(e.nf4 < e.int4, JSON.stringify(e));
  });

  for (const precision of BASE_PRECISIONS) {
    it(`${precision}: written in blocks of rows and of whole groups, the same bytes as written at once`, () => {
      const format = { precision, groupSize: 16 };
      const [r, c] = [5, 37];
      const data = normals(r * c, 4);
      const whole = PackedMatrix.allocate(r, c, format);
      whole.write(data, 0, r);
      const blocks = PackedMatrix.allocate(r, c, format);
      for (const [col0, width] of [[16, 16], [32, 5], [0, 16]] as const) {
        for (const [row0, count] of [[3, 2], [0, 3]] as const) {
          const block = Float32Array.from({ length: count * width }, (_, i) => data[(row0 + Math.floor(i / width)) * c + col0 + (i % width)]!);
          blocks.write(block, row0, count, col0, width);
        }
      }
      assert.deepEqual(blocks.codeBytes, whole.codeBytes);
      assert.deepEqual(blocks.scales, whole.scales);
      const some = new Float32Array(2 * c);
      const all = new Float32Array(r * c);
      blocks.readRows(2, 2, some);
      whole.readRows(0, r, all);
      assert.deepEqual(some, all.subarray(2 * c, 4 * c));
    });
  }

  for (const precision of BASE_PRECISIONS) {
    it(`${precision}: a block of rows and columns reads what whole rows read there`, () => {
      const [r, c] = [4, 37];
      const matrix = PackedMatrix.allocate(r, c, { precision, groupSize: 16 });
      matrix.write(normals(r * c, 5), 0, r);
      const all = new Float32Array(r * c);
      matrix.readRows(0, r, all);
      for (const [col0, width] of [[16, 21], [0, 20], [32, 5], [16, 1]] as const) {
        const block = new Float32Array(2 * width);
        matrix.readBlock(1, 2, col0, width, block);
        const expected = Float32Array.from({ length: 2 * width }, (_, i) => all[(1 + Math.floor(i / width)) * c + col0 + (i % width)]!);
        assert.deepEqual(block, expected, `columns [${col0}, ${col0 + width})`);
      }
    });
  }

  it('sizes: codes and scales per precision', () => {
    const at = (precision: BasePrecision) => packedBytes(10, 100, { precision, groupSize: 64 });
    assert.deepEqual(BASE_PRECISIONS.map(at), [4000, 2000, 2000, 1000 + 80, 10 * 2 * 32 + 80, 10 * 2 * 32 + 80]);
    for (const precision of BASE_PRECISIONS) assert.equal(PackedMatrix.allocate(10, 100, { precision, groupSize: 64 }).byteLength, at(precision));
  });

  it('parts are shared memory: a structured clone (what postMessage sends a worker) reads what the original writes', () => {
    const matrix = PackedMatrix.allocate(2, 32, { precision: 'int4', groupSize: 16 });
    const other = PackedMatrix.fromParts(structuredClone(matrix.parts));
    matrix.write(Float32Array.from({ length: 64 }, (_, i) => i - 32), 0, 2);
    const [a, b] = [new Float32Array(64), new Float32Array(64)];
    matrix.readRows(0, 2, a);
    other.readRows(0, 2, b);
    assert.deepEqual(b, a);
    assert.throws(() => PackedMatrix.fromParts({ ...matrix.parts, rows: 3 }), /hold 48 bytes, but \[3, 32\] at int4 \(group 16\) takes 72/);
  });
});

describe('packed matrices: bad input', () => {
  it('a group size that is not a power of two from 16 to 1024, or an unknown precision', () => {
    assert.throws(() => checkBaseFormat({ precision: 'int4', groupSize: 48 }), /group size 48 for int4 must be a power of two from 16 to 1024/);
    assert.throws(() => checkBaseFormat({ precision: 'int8', groupSize: 2048 }), /power of two from 16 to 1024/);
    assert.throws(() => checkBaseFormat({ precision: 'fp8' as BasePrecision, groupSize: 64 }), /"fp8" is not one of float32, bfloat16, float16, int8, int4, nf4/);
    checkBaseFormat({ precision: 'bfloat16', groupSize: 48 });
  });

  it('a block that splits a group, or lies outside the matrix', () => {
    const m = PackedMatrix.allocate(2, 40, { precision: 'nf4', groupSize: 16 });
    assert.throws(() => m.write(new Float32Array(8), 0, 1, 8, 8), /columns \[8…16\) do not cover whole groups of 16/);
    assert.throws(() => m.write(new Float32Array(16), 0, 1, 32, 16), /outside the matrix \[2, 40\]/);
    assert.throws(() => m.readRows(1, 2, new Float32Array(80)), /block \[1…3\) × \[0…40\) is outside the matrix \[2, 40\]/);
    assert.throws(() => m.readBlock(0, 1, 8, 8, new Float32Array(8)), /column 8 does not start a group of 16/);
  });

  it('a non-finite weight in a quantised group, by row and column', () => {
    const m = PackedMatrix.allocate(2, 20, { precision: 'int8', groupSize: 16 });
    const values = new Float32Array(40);
    values[20 + 17] = Infinity;
    assert.throws(() => m.write(values, 0, 2), /row 1, column 17 is Infinity: int8 cannot quantise a non-finite weight/);
  });
});
