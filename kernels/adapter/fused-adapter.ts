// The adapter's low-rank products as three WGSL kernels on the webgpu backend, each doing in one
// dispatch what tfjs ops do in two or three: the dropout mask computed where it is used (no mask
// tensor, no masked copy of x kept for the backward pass), the scaling and the addition to the
// base layer's output folded into the products. On a GPU every kernel is a dispatch, and one
// adapted linear layer took 18 of them (forward and backward, with dropout); with these it takes
// 11. kernels/adapter/linear.ts uses them where they are registered (kernels/backends/backend.ts, on webgpu).
//
//   project  out[i, k] = s · Σ_j drop(x)[i, j] · w(k, j)        [n, r]; w = A [r, c] or B [c, r]
//   expand   out[i, j] = base[i, j] + drop(s · Σ_k v[i, k] · w(k, j))   [n, c]; w = A or B
//   outer    out(j, k) = s · Σ_i drop(x)[i, j] · v[i, k]         [c, r] (B's layout) or [r, c] (A's)
//
// drop is the dropout mask of kernels/adapter/dropout.ts (the same values, bit for bit), or none.
import * as tf from '@tensorflow/tfjs-core';
import { MASK_UNIFORMS, MASK_WGSL, maskUniformData, type DropoutMaskAttrs } from './dropout';
import { elementwiseProgram, ownKernelAvailable, registerWebgpuProgram, runOwnKernel, type WebgpuUtil } from '../backends/webgpu-program';

export const ADAPTER_PROJECT = 'MosloraProject';
export const ADAPTER_EXPAND = 'MosloraExpand';
export const ADAPTER_OUTER = 'MosloraOuter';

/**
 * How a kernel reads its weight and scales its result. `wLayout` is the weight's storage:
 * 'rank_cols' is A's [r, c], 'cols_rank' is B's [c, r] (PEFT's shapes, c being d_in or d_out).
 */
export interface LowRankAttrs {
  wLayout: 'rank_cols' | 'cols_rank';
  scale: number;
  /** The dropout mask over x's (project, outer) or the output's (expand) elements, if any. */
  mask: DropoutMaskAttrs | null;
}

/** Threads of a workgroup of project and outer. */
const GROUP = 64;

/**
 * The largest rank the kernels take: each thread of project and outer keeps `rank` partial sums,
 * and the workgroup shares GROUP × rank of them in workgroup memory (64 × 64 floats is WebGPU's
 * guaranteed 16 KiB). Larger ranks run as tfjs ops.
 */
export const MAX_FUSED_RANK = 64;

/** The weight's element for rank index k and column j, in WGSL. */
function weightAt(layout: LowRankAttrs['wLayout'], k: string, j: string): string {
  return layout === 'rank_cols' ? `w[${k} * uniforms.wShape[1] + ${j}]` : `w[${j} * uniforms.wShape[1] + ${k}]`;
}

/** x's element (i, j), masked if the kernel has a mask. */
function droppedX(masked: boolean, i: string, j: string): string {
  const index = `${i} * uniforms.xShape[1] + ${j}`;
  return masked ? `x[${index}] * dropoutMaskAt(u32(${index}))` : `x[${index}]`;
}

/**
 * A rank-wide reduction: workgroup `group` (one per row for project, one per column for outer)
 * has its GROUP threads stride over `length` terms, each thread keeping `rank` partial sums of
 * `xTerm` (read once, masked once) times `factor(k)`; the partial sums meet in workgroup memory
 * and thread k writes the k-th total to `outIndex(k)`.
 */
function reductionProgram(util: WebgpuUtil, key: string, variableNames: string[], outputShape: number[], rank: number, groups: number, body: { length: string; xTerm: string; factor: (k: string) => string; outIndex: (k: string) => string }) {
  const workgroupSize: [number, number, number] = [GROUP, 1, 1];
  return {
    variableNames,
    outputShape,
    shaderKey: `${key}_r${rank}`,
    dispatchLayout: util.flatDispatchLayout(outputShape),
    dispatch: util.computeDispatch({ x: [0] }, [groups * GROUP], workgroupSize),
    workgroupSize,
    size: true,
    uniforms: `s : f32, ${MASK_UNIFORMS}`,
    getUserCode: () => `
      ${MASK_WGSL}
      var<workgroup> partial : array<f32, ${GROUP * rank}>;
      fn main(index : i32) {
        let group = index / ${GROUP};
        let thread = index % ${GROUP};
        let live = group < uniforms.size / ${rank};
        var sums : array<f32, ${rank}>;
        if (live) {
          for (var t = thread; t < ${body.length}; t = t + ${GROUP}) {
            let xt = ${body.xTerm};
            for (var k = 0; k < ${rank}; k = k + 1) {
              sums[k] = sums[k] + xt * ${body.factor('k')};
            }
          }
        }
        for (var k = 0; k < ${rank}; k = k + 1) {
          partial[thread * ${rank} + k] = sums[k];
        }
        workgroupBarrier();
        if (live && thread < ${rank}) {
          var total = 0.0;
          for (var p = 0; p < ${GROUP}; p = p + 1) {
            total = total + partial[p * ${rank} + thread];
          }
          result[${body.outIndex('thread')}] = total * uniforms.s;
        }
      }`,
  };
}

function projectProgram(util: WebgpuUtil, n: number, rank: number, a: LowRankAttrs) {
  return reductionProgram(util, `moslora_project_${a.wLayout}_${a.mask ? 'masked' : 'plain'}`, ['x', 'w'], [n, rank], rank, n, {
    length: 'uniforms.xShape[1]',
    xTerm: droppedX(a.mask !== null, 'group', 't'),
    factor: (k) => weightAt(a.wLayout, k, 't'),
    outIndex: (k) => `group * ${rank} + ${k}`,
  });
}

function outerProgram(util: WebgpuUtil, cols: number, rank: number, a: LowRankAttrs) {
  const shape = a.wLayout === 'rank_cols' ? [rank, cols] : [cols, rank];
  return reductionProgram(util, `moslora_outer_${a.wLayout}_${a.mask ? 'masked' : 'plain'}`, ['x', 'v'], shape, rank, cols, {
    length: 'uniforms.xShape[0]',
    xTerm: droppedX(a.mask !== null, 't', 'group'),
    factor: (k) => `v[t * ${rank} + ${k}]`,
    outIndex: (k) => (a.wLayout === 'rank_cols' ? `${k} * uniforms.xShape[1] + group` : `group * ${rank} + ${k}`),
  });
}

/** One invocation per output element: its rank-long sum, scaled, masked, added to base's element. */
function expandProgram(util: WebgpuUtil, shape: [number, number], a: LowRankAttrs) {
  const masked = a.mask !== null;
  return elementwiseProgram(util, {
    key: `moslora_expand_${a.wLayout}_${masked ? 'masked' : 'plain'}`,
    variableNames: ['base', 'v', 'w'],
    shape,
    uniforms: `s : f32, ${MASK_UNIFORMS}`,
    declarations: MASK_WGSL,
    body: `
      let rank = uniforms.vShape[1];
      let i = index / uniforms.outShape[1];
      let j = index % uniforms.outShape[1];
      var sum = 0.0;
      for (var k = 0; k < rank; k = k + 1) {
        sum = sum + v[i * rank + k] * ${weightAt(a.wLayout, 'k', 'j')};
      }
      let update = sum * uniforms.s${masked ? ' * dropoutMaskAt(u32(index))' : ''};
      setOutputAtIndex(index, base[index] + update);`,
  });
}

function rankOf(w: tf.TensorInfo, layout: LowRankAttrs['wLayout']): number {
  return layout === 'rank_cols' ? w.shape[0]! : w.shape[1]!;
}

/** Each kernel's program and inputs, from its named inputs. */
type ProgramMaker = (util: WebgpuUtil, inputs: Record<string, tf.TensorInfo>, a: LowRankAttrs) => [object, tf.TensorInfo[]];

const PROGRAMS: [string, ProgramMaker][] = [
  [ADAPTER_PROJECT, (util, { x, w }, a) => [projectProgram(util, x!.shape[0]!, rankOf(w!, a.wLayout), a), [x!, w!]]],
  [ADAPTER_OUTER, (util, { x, v }, a) => [outerProgram(util, x!.shape[1]!, v!.shape[1]!, a), [x!, v!]]],
  [ADAPTER_EXPAND, (util, { base, v, w }, a) => [expandProgram(util, base!.shape as [number, number], a), [base!, v!, w!]]],
];

/** Registers the three kernels on the webgpu backend (with its package's webgpu_util). */
export function registerWebgpuAdapterKernels(util: WebgpuUtil): void {
  for (const [kernelName, make] of PROGRAMS) {
    registerWebgpuProgram<LowRankAttrs>(kernelName, (inputs, a) => {
      const [program, programInputs] = make(util, inputs, a);
      return { program, inputs: programInputs, uniforms: [{ type: 'float32', data: [a.scale] }, ...maskUniformData(a.mask)] };
    });
  }
}

/** Whether the current backend runs an adapter of this rank on these kernels. */
export function fusedAdapterAvailable(rank: number): boolean {
  return rank <= MAX_FUSED_RANK && ownKernelAvailable(ADAPTER_PROJECT);
}

/** s · drop(x) · Aᵀ for w = A [r, c] ('rank_cols'), s · drop(x) · B for w = B [c, r]: [n, r]. */
export function project(x: tf.Tensor2D, w: tf.Tensor2D, attrs: LowRankAttrs): tf.Tensor2D {
  return runOwnKernel(ADAPTER_PROJECT, { x, w }, attrs);
}

/** base + drop(s · v · A) for w = A [r, c], base + drop(s · v · Bᵀ) for w = B [c, r]: [n, c]. */
export function expand(base: tf.Tensor2D, v: tf.Tensor2D, w: tf.Tensor2D, attrs: LowRankAttrs): tf.Tensor2D {
  return runOwnKernel(ADAPTER_EXPAND, { base, v, w }, attrs);
}

/** s · (drop(x)ᵀ · v) [c, r] ('cols_rank', B's layout) or its transpose [r, c] ('rank_cols'). */
export function outer(x: tf.Tensor2D, v: tf.Tensor2D, attrs: LowRankAttrs): tf.Tensor2D {
  return runOwnKernel(ADAPTER_OUTER, { x, v }, attrs);
}
