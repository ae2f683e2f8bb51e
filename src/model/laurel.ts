/**
 * LAuReL, "Learned Augmented Residual Layer" [arXiv:2411.07501; Gemma3nTextLaurelBlock]:
 * a low-rank (rank r ≪ H) side path added to the residual,
 *   laurel(x) = x + post_laurel_norm(linear_right(linear_left(x))).
 */
import type { Kernels } from '../kernels/kernels.js';
import { rmsNorm } from './ops.js';
import type { Scratch } from './scratch.js';
import type { LayerWeights } from '../checkpoint/weights.js';

export function laurel(kernels: Kernels, w: LayerWeights['laurel'], x: Float32Array, T: number, H: number, rank: number, eps: number, out: Float32Array, work: Scratch): void {
  const low = work.take('laurel.low', T * rank);
  kernels.linear(w.linear_left, x, T, low);
  kernels.linear(w.linear_right, low, T, out);
  rmsNorm(out, w.post_laurel_norm, T, H, eps);
  for (let i = 0; i < T * H; i++) out[i] += x[i];
}
