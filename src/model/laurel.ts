/**
 * LAuReL, "Learned Augmented Residual Layer" [arXiv:2411.07501; Gemma3nTextLaurelBlock]:
 * a low-rank (rank r = laurel_rank ≪ H) side path added to the residual,
 *   laurel(x) = x + post_laurel_norm(linear_right(linear_left(x))).
 */
import type { LayerWeights } from '../checkpoint/weights.js';
import type { ForwardContext } from './forward_context.js';
import { rowOps } from './ops.js';

/** x [T, H] → out [T, H] (returned). */
export function laurel(ctx: ForwardContext, w: LayerWeights['laurel'], x: Float32Array, out: Float32Array): Float32Array {
  const { kernels, config: c, T } = ctx;
  const H = c.hiddenSize;
  const low = ctx.work.take('laurel.low', T * c.laurelRank); // [T, r]
  kernels.linear(w.linear_left, x, T, low);
  kernels.linear(w.linear_right, low, T, out);
  const ops = rowOps(kernels);
  ops.rmsNorm(out, w.post_laurel_norm, T, H, c.rmsNormEps);
  ops.addRepeated(out, x, T * H);
  return out;
}
