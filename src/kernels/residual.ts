/**
 * The decoder's residual adds and per-channel scales, the reference the WASM kernels of
 * assembly/residual.ts reproduce bit for bit (Kernels.rowOps).
 */

/** x[k·n + i] += y[i] for i < n, k < times (y added to `times` consecutive blocks of x). */
export function addRepeated(x: Float32Array, y: Float32Array, n: number, times = 1): void {
  for (let k = 0; k < times; k++) {
    const o = k * n;
    for (let i = 0; i < n; i++) x[o + i] += y[i];
  }
}

/** out[i] = f32((a[i] + b[i] + c[i]) · s), summed and scaled in float64, for i < n. */
export function sum3Scaled(a: Float32Array, b: Float32Array, c: Float32Array, s: number, out: Float32Array, n: number): void {
  for (let i = 0; i < n; i++) out[i] = (a[i] + b[i] + c[i]) * s;
}

/** out[r·dim + i] = x[r·dim + i] · w[i] for r < rows, i < dim (out may be x). */
export function scaleColumns(x: Float32Array, w: Float32Array, out: Float32Array, rows: number, dim: number): Float32Array {
  for (let r = 0; r < rows; r++) {
    const o = r * dim;
    for (let i = 0; i < dim; i++) out[o + i] = x[o + i] * w[i];
  }
  return out;
}
