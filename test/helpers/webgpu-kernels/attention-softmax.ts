// Run by test/integration/webgpu-kernels.test.ts in a process of its own (on SwiftShader):
// attention's softmax(scores·scale + mask) on the webgpu backend, on its WGSL kernels and as tfjs
// ops (tfjs's gradient), each against the value and gradient computed here in float64, with the
// dispatches of each.
import * as tf from '@tensorflow/tfjs-core';
import { attentionSoftmax } from '../../../kernels/ops/attention-softmax';
import { causalMask } from '../../../server/models/layers';
import { relativeError } from '../tensors';
import { compareWays, runCases, valueAndGradsCounted, type Way } from '../webgpu-start';

export interface Case {
  name: string;
  shape: [number, number, number, number];
  past: number;
  std: number;
}

export interface Result {
  name: string;
  errors: { fused: number[]; composite: number[] };
  finite: boolean;
  dispatches: { fused: number; composite: number };
}

const SCALE = 0.125;

/** softmax(scores·SCALE + mask) row by row in float64, and the scores' gradient scale · y · (dy − Σ dy·y). */
function reference(scores: Float32Array, mask: Float32Array, dy: Float32Array, T: number, S: number): number[][] {
  const value: number[] = [];
  const gradient: number[] = [];
  for (let row = 0; row < scores.length / S; row++) {
    const at = (j: number) => row * S + j;
    const logits = Array.from({ length: S }, (_, j) => scores[at(j)]! * SCALE + mask[(row % T) * S + j]!);
    const top = Math.max(...logits);
    const exps = logits.map((l) => Math.exp(l - top));
    const total = exps.reduce((a, b) => a + b, 0);
    const y = exps.map((e) => e / total);
    const along = y.reduce((sum, yj, j) => sum + yj * dy[at(j)]!, 0);
    y.forEach((yj, j) => {
      value.push(yj);
      gradient.push(SCALE * yj * (dy[at(j)]! - along));
    });
  }
  return [value, gradient];
}

async function runWay(c: Case, way: Way) {
  const [, , T, S] = c.shape;
  const scores = tf.randomNormal(c.shape, 0, c.std, 'float32', 7);
  const dy = tf.randomNormal(c.shape, 0, 1, 'float32', 8);
  // a sliding window too where the rows are long enough to show it
  const mask = causalMask(T, c.past, S > 64 ? 50 : null);
  const f = (x: tf.Tensor) => (way === 'identity' ? tf.reshape(x, x.shape) : attentionSoftmax(x as tf.Tensor4D, mask, SCALE, way === 'composite'));
  const result = await valueAndGradsCounted(f, [scores], dy);
  const expected = reference((await scores.data()) as Float32Array, (await mask.data()) as Float32Array, (await dy.data()) as Float32Array, T, S);
  tf.dispose([scores, dy, mask]);
  return { ...result, errors: result.values.map((v, i) => relativeError(v, expected[i]!)) };
}

runCases<Case, Result>(async (cases) =>
  (await compareWays(cases, runWay)).map(({ c, fused, composite, own }) => ({
    name: c.name,
    // value, then the scores' gradient, against float64
    errors: { fused: fused.errors, composite: composite.errors },
    finite: fused.values.every((v) => v.every(Number.isFinite)),
    dispatches: { fused: own.fused.dispatches, composite: own.composite.dispatches },
  })),
);
