// The diverging colour map of the mixer heatmaps: 0 is the editor's background, +limit the
// theme's red, −limit its blue, linear in between (symmetric limits, so equal magnitudes look
// equally strong whatever their sign). Pure: the browser tests compute expected pixels with it.

export interface Rgb {
  r: number;
  g: number;
  b: number;
}

export function diverging(value: number, limit: number, negative: Rgb, neutral: Rgb, positive: Rgb): Rgb {
  const t = limit > 0 ? Math.max(-1, Math.min(1, value / limit)) : 0;
  const end = t >= 0 ? positive : negative;
  const a = Math.abs(t);
  return {
    r: Math.round(neutral.r + (end.r - neutral.r) * a),
    g: Math.round(neutral.g + (end.g - neutral.g) * a),
    b: Math.round(neutral.b + (end.b - neutral.b) * a),
  };
}

/** The symmetric limit for a set of matrices: the largest |value|, or 1 if all are 0. */
export function symmetricLimit(matrices: Iterable<ArrayLike<number | null>>): number {
  let limit = 0;
  for (const m of matrices) {
    for (let i = 0; i < m.length; i++) {
      const v = m[i];
      if (v !== null && v !== undefined && Number.isFinite(v)) limit = Math.max(limit, Math.abs(v));
    }
  }
  return limit > 0 ? limit : 1;
}

/** M − M₀, elementwise; null where either is not finite. */
export function subtract(m: ArrayLike<number | null>, m0: ArrayLike<number | null>): (number | null)[] {
  return Array.from({ length: m.length }, (_, i) => {
    const a = m[i];
    const b = m0[i];
    return a == null || b == null || !Number.isFinite(a) || !Number.isFinite(b) ? null : a - b;
  });
}

/** ‖values‖_F, ignoring non-finite entries. */
export function frobenius(values: ArrayLike<number | null>): number {
  let sum = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (v != null && Number.isFinite(v)) sum += v * v;
  }
  return Math.sqrt(sum);
}

/** `model.layers.3.self_attn.q_proj` → layer "3", kind "self_attn.q_proj". */
export function splitModule(name: string): { layer: string; kind: string } {
  const m = /^(?:.*\.)?(?:layers|h|blocks|layer)\.(\d+)\.(.+)$/.exec(name);
  return m ? { layer: m[1]!, kind: m[2]! } : { layer: '', kind: name };
}
