/**
 * Small element-wise helpers shared by the decoder and the encoders. Each works in place
 * or into a caller-provided buffer over `rows` rows of `dim` values (row-major).
 */
import { geluTanh } from '../kernels/elementwise.js';
import type { Kernels, RowOps } from '../kernels/kernels.js';
import { dot, rmsNorm } from '../kernels/norm.js';
import { tsRowOps } from '../kernels/row_ops.js';

// RMSNorm and the float64 dot live with their WASM twins in src/kernels/norm.ts.
export { dot, rmsNorm };

/** The row-wise float math of `kernels` (its own, bit-identical, or the TypeScript one). */
export function rowOps(kernels: Kernels): RowOps {
  return kernels.rowOps ?? tsRowOps;
}

export { geluTanh };

export function geluTanhInPlace(x: Float32Array, n = x.length): void {
  for (let i = 0; i < n; i++) x[i] = geluTanh(x[i]);
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
