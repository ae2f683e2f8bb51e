/**
 * RMSNorm and the float64 dot product the decoder's row-wise math is built from: the reference
 * the WASM kernels of assembly/norm.ts reproduce bit for bit (Kernels.rowOps).
 */

/**
 * Σ a[ao + i]·b[bo + i] over n values, in float64. Four partial sums: one running sum is
 * bound by the add latency, four overlap (the order changes the result by ~1e-16 relative).
 */
export function dot(a: Float32Array, ao: number, b: Float32Array, bo: number, n: number): number {
  let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  let i = 0;
  for (; i + 3 < n; i += 4) {
    s0 += a[ao + i] * b[bo + i];
    s1 += a[ao + i + 1] * b[bo + i + 1];
    s2 += a[ao + i + 2] * b[bo + i + 2];
    s3 += a[ao + i + 3] * b[bo + i + 3];
  }
  for (; i < n; i++) s0 += a[ao + i] * b[bo + i];
  return s0 + s1 + (s2 + s3);
}

/**
 * Gemma 3n RMSNorm: y = x · (mean(x²) + eps)^-½ · w. Unlike Gemma 1-3 the weight is used as
 * is, not (1 + w) [modeling_gemma3n.py, Gemma3nRMSNorm]. `weight` null = no scale (v_norm).
 */
export function rmsNorm(x: Float32Array, weight: Float32Array | null, rows: number, dim: number, eps: number, out: Float32Array = x): Float32Array {
  for (let r = 0; r < rows; r++) {
    const o = r * dim;
    const ss = dot(x, o, x, o, dim);
    const inv = Math.fround(1 / Math.sqrt(Math.fround(Math.fround(ss / dim) + eps)));
    if (weight) for (let i = 0; i < dim; i++) out[o + i] = Math.fround(x[o + i] * inv) * weight[i];
    else for (let i = 0; i < dim; i++) out[o + i] = x[o + i] * inv;
  }
  return out;
}
