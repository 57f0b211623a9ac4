// Loading a checkpoint's weights into the native weight store (kernels/base/native-load.ts): a
// block of rows at a time at each precision, the matrices packed as a whole read would pack them,
// progress to the totals, and what it refuses, named.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadPackedMatrices, type LoadProgress, type RowReader } from '../../kernels/base/native-load';
import { BASE_PRECISIONS, PackedMatrix, type BaseFormat } from '../../kernels/base/quant';
import { Checkpoint } from '../../server/formats/checkpoint';
import { SafetensorsFile, writeSafetensors } from '../../server/formats/safetensors';

/** Values in [−1, 1) from a seed: deterministic, not normal. */
function values(n: number, seed: number): Float32Array {
  return Float32Array.from({ length: n }, (_, i) => Math.sin(seed * 1000 + i * 1.7) * 0.9);
}

function transposed(data: Float32Array, rows: number, cols: number): Float32Array {
  return Float32Array.from({ length: rows * cols }, (_, i) => data[(i % rows) * cols + Math.floor(i / rows)]!);
}

/** A matrix written whole, from values already rounded as the checkpoint stores them. */
function packedAtOnce(data: Float32Array, rows: number, cols: number, format: BaseFormat): PackedMatrix {
  const matrix = PackedMatrix.allocate(rows, cols, format);
  matrix.write(data, 0, rows);
  return matrix;
}

describe('loading weights from a checkpoint into the native store', () => {
  let dir: string;
  // a sharded checkpoint: nn.Linear weights in BF16 and F16, a Conv1D weight [d_in, d_out] in F32
  const q = values(40 * 37, 1);
  const up = values(24 * 37, 2);
  const conv = values(37 * 40, 3); // [d_in 37, d_out 40]
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'native-load-'));
    await writeSafetensors(join(dir, 'a.safetensors'), [{ name: 'q.weight', dtype: 'BF16', shape: [40, 37], data: q }, { name: 'norm.weight', dtype: 'F32', shape: [37], data: values(37, 4) }]);
    await writeSafetensors(join(dir, 'b.safetensors'), [{ name: 'up.weight', dtype: 'F16', shape: [24, 37], data: up }, { name: 'c_attn.weight', dtype: 'F32', shape: [37, 40], data: conv }]);
    const weightMap = { 'q.weight': 'a.safetensors', 'norm.weight': 'a.safetensors', 'up.weight': 'b.safetensors', 'c_attn.weight': 'b.safetensors' };
    await writeFile(join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: {}, weight_map: weightMap }));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const requests = [
    { tensor: 'q.weight', layout: 'out_in' },
    { tensor: 'up.weight', layout: 'out_in' },
    { tensor: 'c_attn.weight', layout: 'in_out' },
    { tensor: 'q.weight', layout: 'out_in' }, // a tied lm_head names its embedding again
  ] as const;

  for (const precision of BASE_PRECISIONS) {
    it(`${precision}: blocks of a few rows give the bytes of each matrix packed at once, Conv1D weights transposed`, async () => {
      const format = { precision, groupSize: 16 };
      const checkpoint = await Checkpoint.open(dir);
      try {
        const reads: number[] = [];
        const reader: RowReader = {
          info: (name) => checkpoint.info(name),
          readFloat32Rows: async (name, first, count) => {
            const block = await checkpoint.readFloat32Rows(name, first, count);
            reads.push(block.length);
            return block;
          },
        };
        const blockBytes = 4 * 40 * 5; // 5 rows of 40, 4 of 37 … whole groups of 16 rows for a grouped Conv1D
        const matrices = await loadPackedMatrices(reader, requests, format, { blockBytes });
        assert.deepEqual([...matrices.keys()], ['q.weight', 'up.weight', 'c_attn.weight']);
        const stored = async (name: string) => checkpoint.readFloat32(name); // as the checkpoint rounds them
        const expected = {
          'q.weight': packedAtOnce(await stored('q.weight'), 40, 37, format),
          'up.weight': packedAtOnce(await stored('up.weight'), 24, 37, format),
          'c_attn.weight': packedAtOnce(transposed(await stored('c_attn.weight'), 37, 40), 40, 37, format),
        };
        for (const [name, matrix] of matrices) {
          const reference = expected[name as keyof typeof expected];
          assert.deepEqual([matrix.rows, matrix.cols], [reference.rows, reference.cols], name);
          assert.deepEqual(matrix.codeBytes, reference.codeBytes, name);
          assert.deepEqual(matrix.scales, reference.scales, name);
        }
        const largest = Math.max(...reads);
        const grouped = ['int8', 'int4', 'nf4'].includes(precision);
        assert.equal(largest, grouped ? 16 * 40 : 5 * 40, 'the largest block read, in values');
      } finally {
        await checkpoint.close();
      }
    });
  }

  it('reports progress after every block: bytes read and tensors done, to the totals', async () => {
    const checkpoint = await Checkpoint.open(dir);
    try {
      const seen: LoadProgress[] = [];
      await loadPackedMatrices(checkpoint, requests, { precision: 'int4', groupSize: 16 }, { blockBytes: 4 * 37 * 10, onProgress: (p) => seen.push(p) });
      const total = 40 * 37 * 2 + 24 * 37 * 2 + 37 * 40 * 4;
      assert.ok(seen.every((p) => p.bytesTotal === total && p.tensors === 3));
      assert.ok(seen.every((p, i) => i === 0 || p.bytesRead > seen[i - 1]!.bytesRead), 'bytes read grow');
      assert.deepEqual(seen.at(-1), { tensor: 'c_attn.weight', done: 3, tensors: 3, bytesRead: total, bytesTotal: total });
      // q: 4 blocks of 10 rows; up: 3 blocks; c_attn: 3 blocks of 16 d_in rows
      assert.deepEqual(seen.map((p) => p.done), [0, 0, 0, 1, 1, 1, 2, 2, 2, 3]);
    } finally {
      await checkpoint.close();
    }
  });

  it('refuses what is not a matrix, a tensor asked for in two layouts, and a weight it cannot quantise, naming the tensor', async () => {
    const checkpoint = await Checkpoint.open(dir);
    const path = join(dir, 'bad.safetensors');
    try {
      const int8 = { precision: 'int8', groupSize: 16 } as const;
      await assert.rejects(loadPackedMatrices(checkpoint, [{ tensor: 'norm.weight', layout: 'out_in' }], int8), /tensor "norm.weight": a linear weight must be a non-empty matrix, got shape \[37\]/);
      await assert.rejects(loadPackedMatrices(checkpoint, [{ tensor: 'q.weight', layout: 'out_in' }, { tensor: 'q.weight', layout: 'in_out' }], int8), /tensor "q.weight" is requested as out_in and as in_out/);
      await assert.rejects(loadPackedMatrices(checkpoint, [{ tensor: 'absent.weight', layout: 'out_in' }], int8), /no tensor "absent.weight"/);
      const bad = new Float32Array(4 * 20);
      bad[2 * 20 + 3] = NaN;
      await writeSafetensors(path, [{ name: 'w', dtype: 'F32', shape: [4, 20], data: bad }]);
      const file = await SafetensorsFile.open(path);
      try {
        await assert.rejects(loadPackedMatrices(file, [{ tensor: 'w', layout: 'out_in' }], int8), /tensor "w": row 2, column 3 is NaN: int8 cannot quantise a non-finite weight/);
      } finally {
        await file.close();
      }
    } finally {
      await checkpoint.close();
      await rm(path, { force: true });
    }
  });
});
