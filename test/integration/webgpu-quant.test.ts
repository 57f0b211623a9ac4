// The frozen base's quantised products on the webgpu backend (kernels/base/webgpu-quant.ts) where
// no GPU is (Dawn on SwiftShader): value and input gradient of each stored precision against
// float64 on the dequantised weights, deq(W) itself bit for bit (in the product and gathered as
// an embedding's rows), and a chunked lm_head equal to the unchunked one. And the buffer plan (kernels/base/webgpu-plan.ts) of a Llama-3.1-8B-shaped
// base within the limits Dawn's null device reports, its largest buffers made and bound there.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { BASE_PRECISIONS, type BaseFormat, type BasePrecision } from '../../kernels/base/quant';
import { runOnSwiftshader, skipWithout, swiftshaderMissing } from '../helpers/swiftshader';
import type * as QuantLinear from '../helpers/webgpu-kernels/quant-linear';
import type * as NullPlan from '../helpers/webgpu-kernels/null-plan';

const RUNNERS = join(import.meta.dirname, '..', 'helpers', 'webgpu-kernels');
const skip = skipWithout(swiftshaderMissing);

const format = (precision: BasePrecision, groupSize = 16): BaseFormat => ({ precision, groupSize });

/** Every precision: odd shapes, a d_in that ends inside a group, chunks, and x = I. */
const CASES: QuantLinear.Case[] = BASE_PRECISIONS.flatMap((precision): QuantLinear.Case[] => [
  // d_in 40: groups of 16 end at 16, 32 and inside the third; M = 6 over two batch dimensions
  { name: `${precision}: x [2, 3, 40] · W [19, 40]ᵀ, group 16`, format: format(precision), x: [2, 3, 40], dOut: 19, chunks: 1 },
  // odd everything, one row of x, W in 3 chunks of rows
  { name: `${precision}: x [1, 37] · W [23, 37]ᵀ, group 32, 3 chunks`, format: format(precision, 32), x: [1, 37], dOut: 23, chunks: 3 },
  // several tiles each way, the inner dimension past 16 and ending inside a group of 64
  { name: `${precision}: x [33, 200] · W [45, 200]ᵀ, group 64`, format: format(precision, 64), x: [33, 200], dOut: 45, chunks: 1 },
  // y = deq(W)ᵀ: every weight dequantised as PackedMatrix.readRows does; float16's subnormals and largest values too
  {
    name: `${precision}: x = I [48, 48], W [21, 48], 2 chunks: y = deq(W)ᵀ`,
    format: format(precision),
    x: [48, 48],
    dOut: 21,
    chunks: 2,
    identity: true,
    specials: precision === 'float16' ? [[0, 3e-7], [1, -5.96e-8], [50, 6.1e-5], [51, 65504], [52, -65504], [100, 1e-4]] : [],
    // the first and last rows of both chunks (11 and 10 rows)
    gather: [0, 10, 11, 20, 10, 5],
  },
]);

/** An lm_head's shape, small: a vocabulary in 4 chunks and in one. */
const LM_HEAD: QuantLinear.Case[] = (['int4', 'nf4', 'int8', 'bfloat16'] as const).map((precision) => ({
  name: `${precision} lm_head: x [2, 5, 96] · W [1000, 96]ᵀ in 4 chunks and in 1`,
  format: format(precision, 32),
  x: [2, 5, 96],
  dOut: 1000,
  chunks: 4,
  unchunked: true,
  // rows at both ends of the 4 chunks of 250
  gather: [0, 249, 250, 999, 750, 3, 499, 500],
}));

describe('the quantised products on the webgpu backend (software Vulkan)', { skip }, () => {
  let results: QuantLinear.Result[] = [];
  const cases = [...CASES, ...LM_HEAD];
  it('runs every case in a process of its own', async () => {
    results = (await runOnSwiftshader<{ results: QuantLinear.Result[] }>(join(RUNNERS, 'quant-linear.ts'), [JSON.stringify(cases)])).results;
    assert.equal(results.length, cases.length);
  });

  it('gives the float64 value and input gradient on deq(W) to float32 rounding, for every precision', () => {
    for (const r of results) {
      console.log(`${r.name}: value ${r.errors[0].toExponential(1)}, input gradient ${r.errors[1].toExponential(1)}`);
      r.errors.forEach((e, i) => assert.ok(e < 2e-6, `${r.name}: ${i === 0 ? 'value' : 'input gradient'} differs by ${e} relative to its largest element`));
    }
  });

  it('dequantises every weight as the CPU store does, bit for bit (x = I gives deq(W)ᵀ)', () => {
    const identity = results.filter((r) => r.mismatches !== null);
    assert.equal(identity.length, BASE_PRECISIONS.length);
    for (const r of identity) assert.equal(r.mismatches, 0, `${r.name}: ${r.mismatches} weights differ`);
  });

  it("runs one kernel per chunk in each product (y, then the gradient's forward and backward)", () => {
    for (const r of results) assert.equal(r.kernels, 3 * r.chunks, `${r.name}: ${r.kernels} kernels for ${r.chunks} chunks`);
  });

  it('gathers the rows of deq(W) across chunks, bit for bit, and refuses an id past the table', () => {
    const gathered = results.filter((r) => r.gather !== null);
    assert.equal(gathered.length, BASE_PRECISIONS.length + LM_HEAD.length);
    for (const r of gathered) {
      assert.equal(r.gather!.mismatches, 0, `${r.name}: ${r.gather!.mismatches} gathered elements differ`);
      assert.equal(r.gather!.shape.length, 3, r.name);
      assert.match(r.gather!.refusal, /token id \d+ \(position 1\) is outside the embedding table's \d+ rows/, r.name);
    }
  });

  it('gives in row chunks what it gives in one: y bit for bit, dx to float32 rounding', () => {
    const chunked = results.filter((r) => r.chunking !== null);
    assert.equal(chunked.length, LM_HEAD.length);
    for (const r of chunked) {
      assert.equal(r.chunks, 4, r.name);
      assert.equal(r.chunking!.y, 0, `${r.name}: y differs by ${r.chunking!.y}`);
      assert.ok(r.chunking!.dx < 2e-6, `${r.name}: dx differs by ${r.chunking!.dx} relative to its largest element`);
    }
  });
});

describe("a Llama-3.1-8B-shaped base planned within Dawn's null device's limits", () => {
  let result: NullPlan.Result | undefined;
  it("reads the null device's limits and plans every precision there", async () => {
    result = await runOnSwiftshader<NullPlan.Result>(join(RUNNERS, 'null-plan.ts'));
    assert.deepEqual(result.plans.map((p) => p.precision), [...BASE_PRECISIONS]);
  });

  it('keeps every buffer within maxStorageBufferBindingSize and maxBufferSize, and the device takes and binds the largest ones', () => {
    const { limits, plans } = result!;
    for (const plan of plans) {
      assert.ok(plan.largestBuffer <= Math.min(limits.maxStorageBufferBindingSize, limits.maxBufferSize), `${plan.precision}: a buffer of ${plan.largestBuffer} bytes`);
      assert.deepEqual(plan.errors, [], `${plan.precision}: the device refused a buffer`);
      assert.ok(plan.bound > 0, `${plan.precision}: no buffer bound`);
    }
    // the unchunked lm_head at 4 bits: what the chunks are for
    assert.ok(result!.unchunkedLmHead.errors.length > 0, 'the null device bound a whole 8B lm_head');
  });

  it('splits the embedding and the lm_head into row chunks, and says the total', () => {
    for (const plan of result!.plans) {
      const { embedding, lmHead } = plan;
      assert.ok(embedding.chunks > 1 && lmHead.chunks > 1, `${plan.precision}: embedding in ${embedding.chunks}, lm_head in ${lmHead.chunks}`);
      assert.equal(embedding.rows, 128256);
      console.log(`${plan.precision}: ${plan.buffers} buffers, ${(plan.totalBytes / 2 ** 30).toFixed(2)} GiB, lm_head in ${lmHead.chunks} chunks, largest buffer ${(plan.largestBuffer / 2 ** 20).toFixed(1)} MiB`);
    }
    const bytes = Object.fromEntries(result!.plans.map((p) => [p.precision, p.totalBytes]));
    // 8.03B parameters: 4 bytes each at float32; int4's codes and scales (group 64) about 0.5625 bytes each
    assert.ok(Math.abs(bytes['float32']! / 4 - 8.03e9) < 0.01e9, `float32: ${bytes['float32']} bytes`);
    assert.ok(bytes['int4']! < bytes['int8']! && bytes['int8']! < bytes['bfloat16']! && bytes['bfloat16']! < bytes['float32']!);
  });
});
