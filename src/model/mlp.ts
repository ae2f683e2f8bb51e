/**
 * Gemma 3n feed-forward block [modeling_gemma3n.py, Gemma3nTextMLP]:
 *   down_proj( gelu_tanh(sparsify(gate_proj(x))) * up_proj(x) )
 *
 * Activation sparsity ("gaussian top-k", Gemma 3n's early layers): assume the gate
 * activations of a token are roughly normal, and keep only those above the quantile
 * Φ⁻¹(sparsity) of N(mean, std²): cutoff = mean + std·Φ⁻¹(s), g ← relu(g − cutoff).
 * With s = 0.95 about 5% of the FFN's columns stay active for each token.
 */
import type { Kernels } from '../kernels/kernels.js';
import { geluTanh } from './ops.js';
import type { Scratch } from './scratch.js';
import type { LayerWeights } from './weights.js';

/** Inverse CDF of the standard normal, Φ⁻¹(p) = √2·erfinv(2p−1), to double precision. */
export function normalIcdf(p: number): number {
  if (!(p > 0 && p < 1)) throw new RangeError(`normalIcdf: p=${p} outside (0, 1)`);
  // Acklam's rational approximation (rel. error 1e-9), then one Halley step on erfc.
  const a = [-3.969683028665376e1, 2.209460984245205e2, -2.759285104469687e2, 1.38357751867269e2, -3.066479806614716e1, 2.506628277459239];
  const b = [-5.447609879822406e1, 1.615858368580409e2, -1.556989798598866e2, 6.680131188771972e1, -1.328068155288572e1];
  const cc = [-7.784894002430293e-3, -3.223964580411365e-1, -2.400758277161838, -2.549732539343734, 4.374664141464968, 2.938163982698783];
  const d = [7.784695709041462e-3, 3.224671290700398e-1, 2.445134137142996, 3.754408661907416];
  let x: number;
  if (p < 0.02425) {
    const q = Math.sqrt(-2 * Math.log(p));
    x = (((((cc[0] * q + cc[1]) * q + cc[2]) * q + cc[3]) * q + cc[4]) * q + cc[5]) / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  } else if (p > 1 - 0.02425) {
    const q = Math.sqrt(-2 * Math.log(1 - p));
    x = -(((((cc[0] * q + cc[1]) * q + cc[2]) * q + cc[3]) * q + cc[4]) * q + cc[5]) / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  } else {
    const q = p - 0.5, r = q * q;
    x = ((((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q) / (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
  }
  const e = 0.5 * erfc(-x / Math.SQRT2) - p;
  const u = e * Math.sqrt(2 * Math.PI) * Math.exp((x * x) / 2);
  return x - u / (1 + (x * u) / 2);
}

/** Complementary error function (Numerical Recipes erfcc, rel. error < 1.2e-7, then refined by the caller's Halley step). */
function erfc(x: number): number {
  const z = Math.abs(x);
  const t = 1 / (1 + 0.5 * z);
  const r = t * Math.exp(-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))));
  return x >= 0 ? r : 2 - r;
}

/** g ← relu(g − (mean + std·k)) per row; std is the population std (unbiased=False). */
export function gaussianTopK(g: Float32Array, rows: number, dim: number, stdMultiplier: number): void {
  for (let r = 0; r < rows; r++) {
    const o = r * dim;
    let sum = 0;
    for (let i = 0; i < dim; i++) sum += g[o + i];
    const mean = sum / dim;
    let sq = 0;
    for (let i = 0; i < dim; i++) sq += (g[o + i] - mean) ** 2;
    const cutoff = mean + Math.sqrt(sq / dim) * stdMultiplier;
    for (let i = 0; i < dim; i++) g[o + i] = Math.max(0, g[o + i] - cutoff);
  }
}

/** Fraction of nonzero activations, for the explain trace. */
export function nonzeroFraction(g: Float32Array, n: number): number {
  let nz = 0;
  for (let i = 0; i < n; i++) if (g[i] !== 0) nz++;
  return n ? nz / n : 0;
}

export function mlp(
  kernels: Kernels,
  w: LayerWeights['mlp'],
  sparsity: number,
  x: Float32Array, // [T, H]
  T: number,
  I: number,
  out: Float32Array, // [T, H]
  work: Scratch,
  onSparsity?: (activeFraction: number) => void,
): void {
  const gate = work.take('mlp.gate', T * I), up = work.take('mlp.up', T * I);
  kernels.linear(w.gate_proj, x, T, gate);
  kernels.linear(w.up_proj, x, T, up);
  if (sparsity > 0) {
    // Φ⁻¹ is taken in f32 as the reference does: Φ⁻¹(0.95) = 1.6448536.
    gaussianTopK(gate, T, I, Math.fround(normalIcdf(Math.fround(sparsity))));
    onSparsity?.(nonzeroFraction(gate, T * I));
  }
  // gelu(0) = 0: after gaussian top-k most gate values are exactly 0, so skip the tanh there.
  for (let i = 0; i < T * I; i++) {
    const g = gate[i];
    gate[i] = g === 0 ? 0 : geluTanh(g) * up[i];
  }
  kernels.linear(w.down_proj, gate, T, out);
}
