/**
 * Element-wise ops of the decoder that run over whole vectors (the TS reference of the WASM
 * kernels in assembly/elementwise.ts): the gated GELU of the MLP and the per-layer input gate,
 * and the final logit soft-cap over the vocabulary.
 */
import { fastExp, fastTanh } from './fast_math.js';

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);

/**
 * GELU with the tanh approximation (PyTorch `gelu(approximate="tanh")`, "gelu_pytorch_tanh"):
 * 0.5·x·(1 + tanh(u)), u = √(2/π)·(x + 0.044715·x³), computed as the equal x / (1 + e^(−2u)),
 * which needs one exp and no cancellation for negative x.
 */
export function geluTanh(x: number): number {
  return x / (1 + fastExp(-2 * SQRT_2_OVER_PI * (x + 0.044715 * x * x * x)));
}

/** a[i] = gelu_tanh(a[i]) · b[i] for i < n. */
export function geluMul(a: Float32Array, b: Float32Array, n: number): void {
  for (let i = 0; i < n; i++) a[i] = geluTanh(a[i]) * b[i];
}

/** x[i] = cap · tanh(x[i] / cap) for i < n: Gemma's final logit soft-capping. */
export function softcap(x: Float32Array, n: number, cap: number): void {
  for (let i = 0; i < n; i++) x[i] = fastTanh(x[i] / cap) * cap;
}
