// What the mixer heatmaps show of an r×r mixer M: its values, ‖M − I‖_F and its singular values.
import { Matrix, SingularValueDecomposition } from 'ml-matrix';

/** What the heatmap panel shows for one r×r mixer. */
export interface MixerStats {
  r: number;
  /** Row-major r×r values. */
  values: number[];
  /** ‖M − I‖_F: how far the mixer has moved from plain LoRA's identity. */
  distanceFromIdentity: number;
  /** Singular values, largest first. */
  singularValues: number[];
}

export function mixerStats(values: ArrayLike<number>, r: number): MixerStats {
  if (values.length !== r * r) {
    throw new Error(`mixer: expected ${r}×${r} = ${r * r} values, got ${values.length}`);
  }
  const rows = Array.from({ length: r }, (_, i) => Array.from({ length: r }, (_, j) => values[i * r + j]!));
  const m = new Matrix(rows);
  const distanceFromIdentity = Matrix.sub(m, Matrix.eye(r)).norm('frobenius');
  const singularValues = new SingularValueDecomposition(m, { computeLeftSingularVectors: false, computeRightSingularVectors: false })
    .diagonal.slice()
    .sort((a, b) => b - a);
  return { r, values: Array.from(values), distanceFromIdentity, singularValues };
}
