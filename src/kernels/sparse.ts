/**
 * The gaussian top-k activation of Gemma 3n's sparse FFN layers [Gemma3nTextMLP._gaussian_topk]
 * fused with the gated GELU, the reference the WASM kernel of assembly/sparse.ts reproduces bit
 * for bit (Kernels.rowOps): src/model/mlp.ts explains the idea.
 */
import { geluTanh } from './elementwise.js';

/**
 * The gaussian top-k cutoff of one row, mean + std·k, where std is the population std
 * (unbiased=False). Sums in four parts (i mod 4) so the adds overlap.
 */
export function gaussianCutoff(g: Float32Array, o: number, dim: number, stdMultiplier: number): number {
  let s0 = 0, s1 = 0, s2 = 0, s3 = 0, i = 0;
  for (; i + 3 < dim; i += 4) { s0 += g[o + i]; s1 += g[o + i + 1]; s2 += g[o + i + 2]; s3 += g[o + i + 3]; }
  for (; i < dim; i++) s0 += g[o + i];
  const mean = (s0 + s1 + (s2 + s3)) / dim;
  s0 = s1 = s2 = s3 = 0;
  for (i = 0; i + 3 < dim; i += 4) {
    const d0 = g[o + i] - mean, d1 = g[o + i + 1] - mean, d2 = g[o + i + 2] - mean, d3 = g[o + i + 3] - mean;
    s0 += d0 * d0; s1 += d1 * d1; s2 += d2 * d2; s3 += d3 * d3;
  }
  for (; i < dim; i++) { const d = g[o + i] - mean; s0 += d * d; }
  return mean + Math.sqrt((s0 + s1 + (s2 + s3)) / dim) * stdMultiplier;
}

/**
 * For each of `rows` rows of gate and up [rows, dim]: g = f32(gate − cutoff) with the row's
 * gaussianCutoff, then gate = gelu_tanh(g)·up where g > 0 and max(0, g) elsewhere (0, or NaN).
 * Only the up values of kept activations are read. Returns how many activations were kept.
 */
export function gaussianGeluMul(gate: Float32Array, up: Float32Array, rows: number, dim: number, stdMultiplier: number): number {
  let active = 0;
  for (let r = 0; r < rows; r++) {
    const o = r * dim, cutoff = gaussianCutoff(gate, o, dim, stdMultiplier);
    for (let i = o; i < o + dim; i++) {
      const g = Math.fround(gate[i] - cutoff);
      if (g > 0) {
        gate[i] = geluTanh(g) * up[i];
        active++;
      } else gate[i] = Math.max(0, g);
    }
  }
  return active;
}
