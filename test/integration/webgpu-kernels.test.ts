// Our WGSL kernels on the webgpu backend where no GPU is (Dawn on SwiftShader, as
// test/integration/webgpu.test.ts), as one table: each kernel's cases run in a process of their
// own (its runner in test/helpers/webgpu-kernels/), then the kernel's checks read the results:
// values and gradients against a reference, and the dispatches and uploads a pass takes.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { DROPOUT_MASK } from '../../kernels/adapter/dropout';
import { runOnSwiftshader, skipWithout, swiftshaderMissing } from '../helpers/swiftshader';
import type * as AttentionSoftmax from '../helpers/webgpu-kernels/attention-softmax';
import type * as Dropout from '../helpers/webgpu-kernels/dropout';
import type * as FusedAdapter from '../helpers/webgpu-kernels/fused-adapter';
import type * as Gpt2Kernels from '../helpers/webgpu-kernels/gpt2-kernels';
import type * as RmsNorm from '../helpers/webgpu-kernels/rms-norm';
import type * as Rope from '../helpers/webgpu-kernels/rope';
import type * as Swiglu from '../helpers/webgpu-kernels/swiglu';

const RUNNERS = join(import.meta.dirname, '..', 'helpers', 'webgpu-kernels');
const skip = skipWithout(swiftshaderMissing);

/** A kernel's row of the table: its runner, the cases the runner runs, and what each result must show. */
interface Kernel<C, R> {
  /** The runner, test/helpers/webgpu-kernels/<runner>.ts. */
  runner: string;
  title: string;
  cases: C[];
  checks: [name: string, check: (results: R[]) => void][];
}

/** A row, its case and result types checked here and forgotten in the table. */
const row = <C, R>(kernel: Kernel<C, R>) => kernel as unknown as Kernel<unknown, unknown>;

const FUSED = ['MosloraProject', 'MosloraExpand', 'MosloraOuter'];

const KERNELS = [
  // The dropout-mask kernel (kernels/adapter/dropout.ts): its masks must equal the ones computed in
  // JavaScript for the other backends bit for bit, or the curves of two backends with dropout part ways.
  row<Dropout.Case, Dropout.Result>({
    runner: 'dropout',
    title: 'dropout masks on the webgpu backend (software Vulkan)',
    cases: [
      { shape: [12, 50], sequences: 4, rate: 0.05, seed: 0, firstSequence: 0 },
      { shape: [6, 128], sequences: 3, rate: 0.3, seed: 1 + 7 / 4096, firstSequence: 5 },
      // 4.5M elements: 70,400 workgroups of 64, past WebGPU's 65,535 a dimension, so the backend
      // spreads the dispatch over two dimensions
      { shape: [4096, 1100], sequences: 2, rate: 0.5, seed: 42_000_126, firstSequence: 1 },
    ],
    checks: [
      ['the WGSL kernel computes the masks the JavaScript one does, bit for bit, past one dispatch dimension too', (results) => {
        for (const r of results) {
          assert.deepEqual(r.kernels, [DROPOUT_MASK], `[${r.shape.join(', ')}]: the mask came from ${r.kernels.join(', ') || 'no kernel'}`);
          assert.ok(r.kept > 0 && r.kept < r.size, `[${r.shape.join(', ')}]: ${r.kept} of ${r.size} kept`);
          assert.equal(r.mismatches, 0, `[${r.shape.join(', ')}]: ${r.mismatches} of ${r.size} elements differ`);
        }
      }],
    ],
  }),
  // The adapter's fused kernels (kernels/adapter/fused-adapter.ts): an adapted linear layer's value
  // and every gradient must equal the composite version's (the same layer as tfjs ops) for each
  // method, layout, with and without dropout and bias, past one dispatch dimension, in fewer
  // dispatches; past the kernels' largest rank, as tfjs ops.
  row<FusedAdapter.Case, FusedAdapter.Result>({
    runner: 'fused-adapter',
    title: 'the adapter on fused kernels on the webgpu backend (software Vulkan)',
    cases: [
      { name: 'moslora, dropout, 2 sequences', spec: { method: 'moslora', dIn: 48, dOut: 40, r: 8, alpha: 16, dropout: 0.1 }, x: [2, 8, 48], layout: 'out_in', bias: false, training: true, firstSequence: 1 },
      { name: 'lora, Conv1D layout, bias, no dropout', spec: { method: 'lora', dIn: 40, dOut: 56, r: 4, alpha: 8, dropout: 0.1 }, x: [3, 5, 40], layout: 'in_out', bias: true, training: false, firstSequence: 0 },
      { name: 'linchain of 3, dropout 0.3', spec: { method: 'linchain', dIn: 33, dOut: 17, r: 5, alpha: 5, chainLength: 3, dropout: 0.3 }, x: [7, 33], layout: 'out_in', bias: false, training: true, firstSequence: 0 },
      { name: 'moslora-fixed (frozen mixer), dropout', spec: { method: 'moslora-fixed', dIn: 24, dOut: 24, r: 6, alpha: 12, dropout: 0.2 }, x: [4, 3, 24], layout: 'out_in', bias: true, training: true, firstSequence: 2 },
      { name: 'moslora r 16, 4,200 rows', spec: { method: 'moslora', dIn: 64, dOut: 96, r: 16, alpha: 32, dropout: 0.05 }, x: [6, 700, 64], layout: 'out_in', bias: false, training: true, firstSequence: 0 },
      // a workgroup a row: 65,600 of them, past WebGPU's 65,535 a dimension; the weights' gradients
      // sum 65,600 rows each
      { name: 'moslora, 65,600 rows', spec: { method: 'moslora', dIn: 8, dOut: 8, r: 4, alpha: 8, dropout: 0.1 }, x: [2, 32800, 8], layout: 'out_in', bias: false, training: true, firstSequence: 0 },
      // the kernels' largest rank, and one past it (which runs as tfjs ops)
      { name: 'moslora r 64', spec: { method: 'moslora', dIn: 80, dOut: 72, r: 64, alpha: 64, dropout: 0.1 }, x: [2, 9, 80], layout: 'out_in', bias: false, training: true, firstSequence: 0 },
      { name: 'moslora r 65', spec: { method: 'moslora', dIn: 80, dOut: 72, r: 65, alpha: 64, dropout: 0.1 }, x: [2, 9, 80], layout: 'out_in', bias: false, training: true, firstSequence: 0 },
    ],
    checks: [
      ["gives the composite version's value and gradients (x, A, the learned mixers, B) to float32 rounding", (results) => {
        for (const r of results) {
          assert.ok(r.errors.length >= 4, `${r.name}: ${r.errors.length} tensors compared`);
          r.errors.forEach((e, i) => assert.ok(e < 2e-6, `${r.name}: tensor ${i} (${r.sizes[i]} elements) differs by ${e} relative to its largest element`));
        }
      }],
      ['runs on the fused kernels up to rank 64, with no dropout-mask tensor, and the composite version on none of them', (results) => {
        for (const r of results) {
          if (!r.fusedExpected) {
            assert.deepEqual(r.fusedKernels, r.compositeKernels, `${r.name}: past the largest rank, tfjs ops`);
            continue;
          }
          for (const k of FUSED) assert.ok(r.fusedKernels.includes(k), `${r.name}: ${k} did not run: ${r.fusedKernels.join(', ')}`);
          assert.ok(!r.fusedKernels.includes('MosloraDropoutMask'), `${r.name}: a mask tensor was made`);
          assert.ok(!r.compositeKernels.some((k) => FUSED.includes(k)), `${r.name}: the composite version ran a fused kernel`);
        }
      }],
      ['takes 7 fewer dispatches for a MoSLoRA layer with dropout (18 → 11, forward and backward)', (results) => {
        const moslora = results.find((r) => r.name.startsWith('moslora, dropout'))!;
        assert.equal(moslora.compositeKernels.length - moslora.fusedKernels.length, 7);
        for (const r of results.filter((x) => x.fusedExpected)) assert.ok(r.fusedKernels.length < r.compositeKernels.length, `${r.name}: ${r.fusedKernels.length} vs ${r.compositeKernels.length}`);
      }],
    ],
  }),
  // RMSNorm's kernels (kernels/ops/rms-norm.ts): the norm's value and its input's gradient must
  // equal tfjs's own gradient of the plain formula, on the kernels and as the composite version, in
  // 2 dispatches instead of 19 and without the tensor of ones tfjs's gradient uploads.
  row<RmsNorm.Case, RmsNorm.Result>({
    runner: 'rms-norm',
    title: 'RMSNorm on its WGSL kernels on the webgpu backend (software Vulkan)',
    cases: [
      { name: 'width 48, under a workgroup', shape: [2, 16, 48], eps: 1e-5 },
      { name: 'width 200, not a multiple of 64', shape: [3, 5, 200], eps: 1e-6 },
      { name: 'width 768, 2-D', shape: [37, 768], eps: 1e-5 },
      // a workgroup a row: past WebGPU's 65,535 workgroups a dimension
      { name: '65,600 rows', shape: [2, 32800, 8], eps: 1e-5 },
    ],
    checks: [
      ["gives tfjs's value and gradient to float32 rounding, on the kernels and as tfjs ops", (results) => {
        for (const r of results) {
          for (const [way, errors] of [['fused', r.fusedErrors], ['composite', r.compositeErrors]] as const) {
            assert.equal(errors.length, 2);
            errors.forEach((e, i) => assert.ok(e < 2e-6, `${r.name}, ${way}: ${i === 0 ? 'value' : 'gradient'} differs by ${e} relative to its largest element`));
          }
        }
      }],
      ["takes 2 dispatches forward and backward (19 with tfjs's gradient, 14 as tfjs ops) and uploads only the weight", (results) => {
        for (const { name, traffic } of results) {
          assert.deepEqual(traffic.fused, { dispatches: 2, uploads: 1 }, name);
          assert.equal(traffic.composite.dispatches, 14, name);
          assert.equal(traffic.autodiff.dispatches, 19, name);
          assert.ok(traffic.autodiff.uploads > traffic.composite.uploads, `${name}: tfjs's gradient uploads its ones`);
        }
      }],
    ],
  }),
  // RoPE's kernel (kernels/ops/rope.ts): the rotation and its gradient (the rotation back) must
  // equal the tfjs ops' value and gradient, in 2 dispatches instead of 14.
  row<Rope.Case, Rope.Result>({
    runner: 'rope',
    title: 'RoPE on its WGSL kernel on the webgpu backend (software Vulkan)',
    cases: [
      { name: 'head_dim 8, 2 sequences', shape: [2, 4, 16, 8], past: 0 },
      { name: 'head_dim 64, 12 heads, 256 tokens', shape: [1, 12, 256, 64], past: 0 },
      { name: 'head_dim 64, after 100 cached tokens', shape: [3, 2, 5, 64], past: 100 },
    ],
    checks: [
      ["gives the tfjs ops' value and gradient to float32 rounding", (results) => {
        for (const r of results) {
          assert.equal(r.errors.length, 2);
          r.errors.forEach((e, i) => assert.ok(e < 2e-6, `${r.name}: ${i === 0 ? 'value' : 'gradient'} differs by ${e} relative to its largest element`));
        }
      }],
      ['takes 2 dispatches forward and backward, against 14 as tfjs ops', (results) => {
        for (const r of results) assert.deepEqual(r.dispatches, { fused: 2, composite: 14 }, r.name);
      }],
    ],
  }),
  // SwiGLU's kernel (kernels/ops/swiglu.ts): silu(gate)·up and the gradients of gate and up must
  // equal the tfjs ops', in 3 dispatches instead of 11.
  row<Swiglu.Case, Swiglu.Result>({
    runner: 'swiglu',
    title: 'SwiGLU on its WGSL kernel on the webgpu backend (software Vulkan)',
    cases: [
      { name: '[2, 16, 48]', shape: [2, 16, 48] },
      { name: '[1, 256, 2048], large gates', shape: [1, 256, 2048] },
    ],
    checks: [
      ["gives the tfjs ops' value and gradients to float32 rounding", (results) => {
        for (const r of results) {
          assert.equal(r.errors.length, 3);
          r.errors.forEach((e, i) => assert.ok(e < 2e-6, `${r.name}: ${['value', "gate's gradient", "up's gradient"][i]} differs by ${e} relative to its largest element`));
        }
      }],
      ['takes 3 dispatches forward and backward, against 11 as tfjs ops', (results) => {
        for (const r of results) assert.deepEqual(r.dispatches, { fused: 3, composite: 11 }, r.name);
      }],
    ],
  }),
  // Attention's softmax(scores·scale + mask) (kernels/ops/attention-softmax.ts): value and gradient
  // must equal the float64 ones, in 2 dispatches forward and backward instead of 8; also past
  // 65,535 rows, where tfjs-backend-webgpu's own Softmax (4.22) reads the wrong rows.
  row<AttentionSoftmax.Case, AttentionSoftmax.Result>({
    runner: 'attention-softmax',
    title: "attention's softmax on its WGSL kernels on the webgpu backend (software Vulkan)",
    cases: [
      { name: '[2, 4, 16, 16], causal', shape: [2, 4, 16, 16], past: 0, std: 1 },
      { name: '[1, 3, 5, 105], 100 cached keys, width not a multiple of 64', shape: [1, 3, 5, 105], past: 100, std: 1 },
      { name: '[1, 2, 40, 40], scores of spread 60 (exp overflows without the maximum)', shape: [1, 2, 40, 40], past: 0, std: 60 },
      // a workgroup a row: past WebGPU's 65,535 workgroups a dimension
      { name: '[700, 12, 8, 8], 67,200 rows', shape: [700, 12, 8, 8], past: 0, std: 1 },
    ],
    checks: [
      ['gives the float64 value and gradient to float32 rounding: masked, with cached keys, with large scores, past 65,535 rows', (results) => {
        for (const r of results) {
          assert.ok(r.finite, `${r.name}: a value or gradient is not finite`);
          assert.equal(r.errors.fused.length, 2);
          r.errors.fused.forEach((e, i) => assert.ok(e < 2e-6, `${r.name}: ${i === 0 ? 'value' : 'gradient'} differs by ${e} relative to its largest element`));
          console.log(`${r.name}: tfjs ops ${r.errors.composite.map((e) => e.toExponential(1)).join(', ')}`);
        }
      }],
      ['takes 2 dispatches forward and backward, against 8 as tfjs ops', (results) => {
        for (const r of results) assert.deepEqual(r.dispatches, { fused: 2, composite: 8 }, r.name);
      }],
    ],
  }),
  // GPT-2's LayerNorm and gelu_new (kernels/ops/layer-norm.ts, kernels/ops/gelu.ts): values and
  // input gradients must equal tfjs's gradient of the tfjs ops, in 2 dispatches forward and
  // backward, and LayerNorm without the tensors of ones tfjs's gradient of a mean uploads.
  row<Gpt2Kernels.Case, Gpt2Kernels.Result>({
    runner: 'gpt2-kernels',
    title: "GPT-2's LayerNorm and gelu_new on their WGSL kernels on the webgpu backend (software Vulkan)",
    cases: [
      { name: 'LayerNorm, width 48, under a workgroup', kernel: 'layer-norm', shape: [2, 16, 48], mean: 0.3, std: 2 },
      { name: 'LayerNorm, width 200, not a multiple of 64', kernel: 'layer-norm', shape: [3, 5, 200], mean: -1, std: 0.5 },
      { name: 'LayerNorm, width 768, mean 1000 against spread 1', kernel: 'layer-norm', shape: [37, 768], mean: 1000, std: 1 },
      // a workgroup a row: past WebGPU's 65,535 workgroups a dimension
      { name: 'LayerNorm, 65,600 rows', kernel: 'layer-norm', shape: [2, 32800, 8], mean: 0, std: 1 },
      { name: 'gelu_new, [2, 16, 48]', kernel: 'gelu', shape: [2, 16, 48], mean: 0, std: 1 },
      { name: 'gelu_new, [1, 256, 3072], |x| up to ~40', kernel: 'gelu', shape: [1, 256, 3072], mean: 0, std: 8 },
    ],
    checks: [
      ["gives tfjs's value and gradient to float32 rounding, finite for large inputs", (results) => {
        for (const r of results) {
          assert.ok(r.finite, `${r.name}: a value or gradient is not finite`);
          assert.equal(r.errors.length, 2);
          r.errors.forEach((e, i) => assert.ok(e < 2e-6, `${r.name}: ${i === 0 ? 'value' : 'gradient'} differs by ${e} relative to its largest element`));
        }
      }],
      ['takes 2 dispatches forward and backward, and LayerNorm uploads only its weight and bias', (results) => {
        for (const { name, traffic } of results) {
          assert.equal(traffic.fused.dispatches, 2, name);
          if (name.startsWith('LayerNorm')) {
            assert.equal(traffic.fused.uploads, 2, name);
            assert.ok(traffic.composite.uploads > traffic.fused.uploads, `${name}: tfjs's gradient uploads its ones`);
          }
          console.log(`${name}: ${traffic.composite.dispatches} dispatches as tfjs ops`);
        }
      }],
    ],
  }),
];

for (const { runner, title, cases, checks } of KERNELS) {
  describe(title, { skip }, () => {
    let results: unknown[] = [];
    it('runs every case in a process of its own', async () => {
      results = (await runOnSwiftshader<{ results: unknown[] }>(join(RUNNERS, `${runner}.ts`), [JSON.stringify(cases)])).results;
      assert.equal(results.length, cases.length);
    });
    for (const [name, check] of checks) it(name, () => check(results));
  });
}
