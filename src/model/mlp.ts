/**
 * Gemma 3n feed-forward block [modeling_gemma3n.py, Gemma3nTextMLP]:
 *   down_proj( gelu_tanh(sparsify(gate_proj(x))) * up_proj(x) )
 *
 * Activation sparsity ("gaussian top-k" [Gemma3nTextMLP._gaussian_topk], Gemma 3n's early
 * layers, activation_sparsity_pattern[layer] > 0): assume the gate
 * activations of a token are roughly normal, and keep only those above the quantile
 * Φ⁻¹(sparsity) of N(mean, std²): cutoff = mean + std·Φ⁻¹(s), g ← relu(g − cutoff).
 * With s = 0.95 about 5% of the FFN's columns stay active for each token.
 */
import type { LayerWeights } from '../checkpoint/weights.js';
import type { ForwardContext } from './forward_context.js';
import { gaussianCutoff } from '../kernels/sparse.js';
import { rowOps } from './ops.js';

export { gaussianCutoff };

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

/**
 * The 4-row blocks of one token's gate [I] holding an activation that survives the cutoff
 * (f32(g − cutoff) > 0, as mlp tests it), as [b0, b1) pairs of consecutive blocks in `list`.
 */
function keptRowBlocks(gate: Float32Array, I: number, cutoff: number, list: Int32Array): { list: Int32Array; n: number } {
  let n = 0;
  for (let b = 0, B = Math.ceil(I / 4); b < B; b++) {
    let kept = false;
    for (let i = 4 * b; i < Math.min(I, 4 * b + 4); i++) if (Math.fround(gate[i] - cutoff) > 0) kept = true;
    if (!kept) continue;
    if (n > 0 && list[2 * n - 1] === b) list[2 * n - 1] = b + 1;
    else { list[2 * n] = b; list[2 * n + 1] = b + 1; n++; }
  }
  return { list, n };
}

/**
 * x [T, H] → out [T, H], with this layer's FFN width (intermediate_size[layer]) and sparsity
 * (activation_sparsity_pattern[layer]). Returns the fraction of gate activations left nonzero
 * (1 for dense layers), for the explain trace.
 */
export function mlp(ctx: ForwardContext, w: LayerWeights['mlp'], layer: number, x: Float32Array, out: Float32Array): number {
  const { kernels, config: c, work, T } = ctx;
  const I = c.intermediateSize[layer], sparsity = c.activationSparsityPattern[layer];
  const gate = work.take('mlp.gate', T * I), up = work.take('mlp.up', T * I);
  // _gaussian_topk: Φ⁻¹ is taken in f32 as the reference does: Φ⁻¹(0.95) = 1.6448536.
  const k = sparsity > 0 ? Math.fround(normalIcdf(Math.fround(sparsity))) : 0;
  if (sparsity > 0 && T === 1 && kernels.linearRows) {
    // One token in a sparse layer: only the up_proj rows of kept gate activations are ever read,
    // so only the 4-row blocks holding one are computed (~19% of them at 5% kept); each row
    // equals the full linear's, so the result is the same bit for bit.
    kernels.linear(w.gate_proj, x, 1, gate);
    const ranges = keptRowBlocks(gate, I, gaussianCutoff(gate, 0, I, k), work.takeI32('mlp.ranges', 2 * Math.ceil(I / 4)));
    kernels.linearRows(w.up_proj, x, up, ranges.list, ranges.n);
  } else {
    kernels.linearMany([w.gate_proj, w.up_proj], x, T, [gate, up]); // one pass over x for both
  }
  let activeFraction = 1;
  if (sparsity > 0) {
    // g ← relu(g − cutoff) (in f32) leaves ~5% nonzero, and gelu(0) = 0: only those need GELU
    // (src/kernels/sparse.ts; one token recomputes the cutoff above, the same value).
    activeFraction = rowOps(kernels).gaussianGeluMul(gate, up, T, I, k) / (T * I);
  } else {
    kernels.geluMul(gate, up, T * I);
  }
  kernels.linear(w.down_proj, gate, T, out);
  return activeFraction;
}
