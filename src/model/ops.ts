/**
 * Small element-wise helpers shared by the decoder and the encoders. Each works in place
 * or into a caller-provided buffer over `rows` rows of `dim` values (row-major).
 */
import { geluTanh } from '../kernels/elementwise.js';

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

export { geluTanh };

export function geluTanhInPlace(x: Float32Array, n = x.length): void {
  for (let i = 0; i < n; i++) x[i] = geluTanh(x[i]);
}

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

/** Root-mean-square of one row: sqrt(mean(x²)). */
export function rowRms(x: Float32Array, offset: number, dim: number): number {
  return Math.sqrt(dot(x, offset, x, offset, dim) / dim);
}

/** out = a + b, element-wise. */
export function add(a: Float32Array, b: Float32Array, out: Float32Array = a, n = out.length): Float32Array {
  for (let i = 0; i < n; i++) out[i] = a[i] + b[i];
  return out;
}

/** x *= s, element-wise. */
export function scale(x: Float32Array, s: number, n = x.length): Float32Array {
  for (let i = 0; i < n; i++) x[i] *= s;
  return x;
}

/** Softmax of x[offset..offset+n) in place, max-subtracted for stability. */
export function softmaxInPlace(x: Float32Array, offset = 0, n = x.length - offset): void {
  let max = -Infinity;
  for (let i = 0; i < n; i++) if (x[offset + i] > max) max = x[offset + i];
  let sum = 0;
  for (let i = 0; i < n; i++) {
    const e = Math.exp(x[offset + i] - max);
    x[offset + i] = e;
    sum += e;
  }
  for (let i = 0; i < n; i++) x[offset + i] /= sum;
}
