// float32 ↔ float16 and bfloat16, bit by bit: the rounding of the safetensors writer
// (server/formats/safetensors.ts) and of the native weight store's 16-bit precisions
// (kernels/quant.ts), one implementation for both.

/** float32 bits → float16 bits, round to nearest even; NaN stays NaN (quiet), overflow becomes ±Inf. */
export function float32BitsToFloat16(bits: number): number {
  const sign = (bits >>> 16) & 0x8000;
  const abs = bits & 0x7fffffff;
  if (abs > 0x7f800000) return sign | 0x7e00 | ((abs >>> 13) & 0x3ff); // NaN: quiet bit set, top of payload kept
  if (abs >= 0x47800000) return sign | 0x7c00; // ≥ 65536 or Inf
  if (abs >= 0x38800000) {
    // Normal half (≥ 2^-14): rebias the exponent 127 → 15, drop 13 mantissa bits. A carry out of
    // the mantissa bumps the exponent, which is right, up to 65520 → Inf.
    const half = (abs >>> 13) - (112 << 10);
    return sign | (half + roundUp(abs & 0x1fff, 0x1000, half & 1));
  }
  const exponent = abs >>> 23;
  if (exponent < 102) return sign; // below 2^-25, half of the smallest subnormal: rounds to ±0
  // Subnormal half: m · 2^-24 with m = (1.f · 2^(e-127)) / 2^-24 = (1f) >> (126 - e).
  const mantissa = (abs & 0x7fffff) | 0x800000;
  const shift = 126 - exponent;
  const half = mantissa >>> shift;
  return sign | (half + roundUp(mantissa & ((1 << shift) - 1), 1 << (shift - 1), half & 1));
}

/** 1 where the dropped bits `rest` round the kept ones up: above half, or at half with an odd last kept bit. */
function roundUp(rest: number, half: number, lsb: number): number {
  return rest > half || (rest === half && lsb === 1) ? 1 : 0;
}

/** float32 bits → bfloat16 bits, round to nearest even; NaN stays NaN (quiet). */
export function float32BitsToBfloat16(bits: number): number {
  if ((bits & 0x7fffffff) > 0x7f800000) return (bits >>> 16) | 0x40;
  return (bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16;
}

/** float16 bits → the value they encode (subnormals, ±Inf and NaN included); exact in float32. */
export function float16ToNumber(half: number): number {
  const sign = half & 0x8000 ? -1 : 1;
  const exponent = (half >>> 10) & 0x1f;
  const mantissa = half & 0x3ff;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  if (exponent === 0x1f) return mantissa === 0 ? sign * Infinity : NaN;
  return sign * (1024 + mantissa) * 2 ** (exponent - 25);
}
