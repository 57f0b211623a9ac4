// Combining several adapters of one base model into one, module by module, in float64.
//
// cat     exact: A = [A_1; A_2; …], B = [w_1 s_1 B_1, w_2 s_2 B_2, …], M = blockdiag(M_1, M_2, …)
//         (identity blocks for LoRA inputs), scaling 1. Ranks add up.
// linear  ΔW = Σ w_i s_i B_i M_i A_i, then its best rank-r approximation at the inputs' largest rank.
// svd     the same at a rank you choose.
//
// linear and svd start from the full ΔW — combining A's and B's separately gives cross terms
// B_i·A_j that no input contains (PEFT issues #3004, #3761). The SVD of ΔW is computed exactly
// through its rank-R factors: ΔW = P·Qᵀ with P = [w_i s_i B_i M_i] (d_out×R), Q = [A_iᵀ] (d_in×R);
// with P = Q_P R_P and Q = Q_Q R_Q, ΔW = Q_P (R_P R_Qᵀ) Q_Qᵀ, so the singular values and vectors
// of ΔW come from the R×R core. No d_out×d_in matrix is formed.
import * as tf from '@tensorflow/tfjs-core';
import { Matrix, QrDecomposition, SingularValueDecomposition } from 'ml-matrix';
import { adapterScaling, resolveAdapterSpec } from '../../kernels/adapter/spec';
import type { Adapter } from '../../kernels/adapter/linear';
import { COMBINE_METHODS } from '../../protocol/editor';

export { COMBINE_METHODS };
export type CombineMethod = (typeof COMBINE_METHODS)[number];

export interface CombineInput {
  adapters: ReadonlyMap<string, Adapter>;
  weight: number;
}

export interface ModuleReport {
  module: string;
  rank: number;
  /** ‖ΔW − ΔW_r‖_F / ‖ΔW‖_F: 0 for cat, the discarded singular values' share otherwise. */
  relativeError: number;
}

function toMatrix(t: tf.Tensor2D): Matrix {
  const [rows, cols] = t.shape;
  const values = t.dataSync();
  return new Matrix(Array.from({ length: rows }, (_, i) => Array.from(values.subarray(i * cols, (i + 1) * cols))));
}

function toTensor(m: Matrix): tf.Tensor2D {
  return tf.tensor2d(m.to2DArray());
}

/** Per input: the weighted up factor w·s·B·M ([d_out, r]) and the down factor A ([r, d_in]), as float64. */
function factors(adapter: Adapter, weight: number): { up: Matrix; down: Matrix; mixer: Matrix } {
  // M = M_k···M_1 (identity for LoRA)
  const m = adapter.weights.mixers.map(toMatrix).reduce((product, mixer) => mixer.mmul(product), Matrix.eye(adapter.spec.r));
  const b = toMatrix(adapter.weights.B).mul(weight * adapterScaling(adapter.spec));
  return { up: b, down: toMatrix(adapter.weights.A), mixer: m };
}

function hstack(blocks: Matrix[]): Matrix {
  const out = Matrix.zeros(blocks[0]!.rows, blocks.reduce((n, b) => n + b.columns, 0));
  blocks.reduce((at, block) => (out.setSubMatrix(block, 0, at), at + block.columns), 0);
  return out;
}

function vstack(blocks: Matrix[]): Matrix {
  const out = Matrix.zeros(blocks.reduce((n, b) => n + b.rows, 0), blocks[0]!.columns);
  blocks.reduce((at, block) => (out.setSubMatrix(block, at, 0), at + block.rows), 0);
  return out;
}

function blockDiagonal(blocks: Matrix[]): Matrix {
  const size = blocks.reduce((n, b) => n + b.rows, 0);
  const out = Matrix.zeros(size, size);
  let at = 0;
  for (const block of blocks) {
    out.setSubMatrix(block, at, at);
    at += block.rows;
  }
  return out;
}

function lowRank(up: Matrix, down: Matrix, rank: number): { A: Matrix; B: Matrix; relativeError: number; rank: number } {
  const p = new QrDecomposition(up); // up = Q_P R_P
  const q = new QrDecomposition(down.transpose()); // downᵀ = Q_Q R_Q
  const core = p.upperTriangularMatrix.mmul(q.upperTriangularMatrix.transpose());
  const svd = new SingularValueDecomposition(core, { autoTranspose: true });
  const sigma = svd.diagonal;
  const total = Math.sqrt(sigma.reduce((a, s) => a + s * s, 0));
  const k = Math.min(rank, sigma.length);
  const kept = Math.sqrt(sigma.slice(0, k).reduce((a, s) => a + s * s, 0));
  const root = Matrix.diag(sigma.slice(0, k).map(Math.sqrt));
  const u = p.orthogonalMatrix.mmul(svd.leftSingularVectors.subMatrix(0, core.rows - 1, 0, k - 1));
  const v = q.orthogonalMatrix.mmul(svd.rightSingularVectors.subMatrix(0, core.columns - 1, 0, k - 1));
  return {
    B: u.mmul(root),
    A: root.mmul(v.transpose()),
    rank: k,
    relativeError: total > 0 ? Math.sqrt(Math.max(0, total * total - kept * kept)) / total : 0,
  };
}

/**
 * One adapter from several of the same base model. Modules that only some inputs adapt are
 * combined from those inputs. The result has scaling 1 (alpha = r).
 */
export function combineAdapters(
  inputs: readonly CombineInput[],
  method: CombineMethod,
  options: { rank?: number } = {},
): { adapters: Map<string, Adapter>; reports: ModuleReport[] } {
  if (inputs.length < 2) throw new Error(`combine: needs at least two adapters, got ${inputs.length}`);
  if (!COMBINE_METHODS.includes(method)) throw new Error(`combine: unknown method "${method}"; allowed: ${COMBINE_METHODS.join(', ')}`);
  if (method === 'svd' && !(options.rank !== undefined && Number.isInteger(options.rank) && options.rank > 0)) {
    throw new Error('combine: svd needs --rank, a positive integer');
  }
  const dora = inputs.findIndex((input) => [...input.adapters.values()].some((a) => a.spec.useDora));
  if (dora >= 0) {
    throw new Error(
      `combine: adapter ${dora + 1} is a DoRA adapter (use_dora): its magnitudes rescale each W + ΔW as a whole, so DoRA adapters do not combine ` +
        'by their factors; merge it into its base model (moslora merge) and combine adapters of that model instead',
    );
  }
  const modules = [...new Set(inputs.flatMap((input) => [...input.adapters.keys()]))].sort();
  // One adapter has one method: if any input mixes, every module of a cat result gets a mixer.
  const anyMixer = inputs.some((input) => [...input.adapters.values()].some((a) => a.spec.method !== 'lora'));
  const adapters = new Map<string, Adapter>();
  const reports: ModuleReport[] = [];
  for (const module of modules) {
    const present = inputs.filter((input) => input.adapters.has(module));
    const shapes = new Set(present.map((input) => `${input.adapters.get(module)!.spec.dOut}×${input.adapters.get(module)!.spec.dIn}`));
    if (shapes.size > 1) throw new Error(`combine: ${module} has different shapes across the adapters (${[...shapes].join(', ')}); they are not adapters of one base model`);
    const parts = present.map((input) => factors(input.adapters.get(module)!, input.weight));
    const { dIn, dOut } = present[0]!.adapters.get(module)!.spec;
    const stackedDown = vstack(parts.map((part) => part.down)); // [R, d_in]
    if (method === 'cat') {
      const r = stackedDown.rows;
      const spec = resolveAdapterSpec({ method: anyMixer ? 'moslora' : 'lora', dIn, dOut, r, alpha: r, mixerInit: 'identity' });
      const mixers = anyMixer ? [toTensor(blockDiagonal(parts.map((part) => part.mixer)))] : [];
      const stackedUp = hstack(parts.map((part) => part.up)); // [d_out, R]
      adapters.set(module, { spec, weights: { A: toTensor(stackedDown), B: toTensor(stackedUp), mixers } });
      reports.push({ module, rank: r, relativeError: 0 });
      continue;
    }
    // ΔW = Σ (w s B M) A: fold each mixer into its up factor, then refactor the sum.
    const upWithMixers = hstack(parts.map((part) => part.up.mmul(part.mixer))); // [d_out, R]
    const rank = method === 'svd' ? options.rank! : Math.max(...present.map((input) => input.adapters.get(module)!.spec.r));
    const result = lowRank(upWithMixers, stackedDown, Math.min(rank, dIn, dOut));
    const spec = resolveAdapterSpec({ method: 'lora', dIn, dOut, r: result.rank, alpha: result.rank });
    adapters.set(module, { spec, weights: { A: toTensor(result.A), B: toTensor(result.B), mixers: [] } });
    reports.push({ module, rank: result.rank, relativeError: result.relativeError });
  }
  return { adapters, reports };
}
