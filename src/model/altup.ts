/**
 * AltUp, "Alternating Updates" [arXiv:2301.13310; Gemma3nTextAltUp].
 *
 * The residual stream is widened to A copies ("streams", [A, T, H]) but each layer runs its
 * transformer block on one stream only (altup_active_idx). A tiny router mixes the streams:
 *   predict: every stream gets a learned linear mix of all streams, pred = x + C·x;
 *   (the layer computes on pred[active])
 *   correct: the innovation (block output − pred[active]) is added back to every stream,
 *            scaled by a learned per-stream coefficient (+1).
 * The mixing coefficients depend on the token through `modalities`, a tanh-squashed
 * projection of the normed active stream.
 */
import type { LayerWeights } from '../checkpoint/weights.js';
import type { ForwardContext } from './forward_context.js';
import { mixStreams4 } from '../kernels/altup.js';
import { dot, rowOps } from './ops.js';

export { mixStreams4 };

type AltUpWeights = LayerWeights['altup'];

/**
 * modalities[t, a] = tanh(modality_router(router_norm(x[t]) · 1/H)), shape [T, A]
 * [Gemma3nTextAltUp.compute_router_modalities].
 */
export function computeRouterModalities(ctx: ForwardContext, w: AltUpWeights, x: Float32Array): Float32Array {
  const { config: c, work, T } = ctx;
  const H = c.hiddenSize, A = c.altupNumInputs;
  const dots = work.take64('altup.router_dots', T * A);
  const inputScale = Math.fround(1 / H); // router_input_scale = hidden_size**-1.0 (not -0.5)
  // dots[t, a] = modality_router(router_norm(x[t]) · 1/H)[a] (src/kernels/altup.ts)
  rowOps(ctx.kernels).altupRouterDots(x, w.router_norm, w.modality_router, T, H, A, c.rmsNormEps, inputScale, work.take('altup.normed', T * H), dots);
  const out = work.take('altup.modalities', T * A);
  for (let i = 0; i < T * A; i++) out[i] = Math.tanh(dots[i]);
  return out;
}

/**
 * predictions[j] = x[j] + Σ_i C[j, i]·x[i], with C = prediction_coefs(modalities) reshaped
 * [A, A] [Gemma3nTextAltUp.predict]. Returns a work buffer [A, T, H].
 */
export function altupPredict(ctx: ForwardContext, w: AltUpWeights, streams: Float32Array): Float32Array {
  const { config: c, work, T } = ctx;
  const H = c.hiddenSize, A = c.altupNumInputs, TH = T * H;
  const mod = computeRouterModalities(ctx, w, streams.subarray(c.altupActiveIdx * TH, (c.altupActiveIdx + 1) * TH));
  const pred = work.take('altup.predictions', A * TH);
  const coefs = work.take('altup.coefs', T * A * A); // f32, as the reference's Linear output
  for (let t = 0; t < T; t++) {
    // coefs[t] = prediction_coefs(modalities[t]) : [A*A] = W[A*A, A] · m[A]
    for (let k = 0; k < A * A; k++) coefs[t * A * A + k] = dot(w.prediction_coefs, k * A, mod, t * A, A);
  }
  if (A === 4) rowOps(ctx.kernels).altupMix4(coefs, streams, pred, T, H);
  else for (let t = 0; t < T; t++) mixStreams(coefs.subarray(t * A * A), A, streams, pred, TH, t * H, H);
  return pred;
}

/**
 * out[j] = round_f32(Σ_i C[j, i]·x[i]) + x[j] over one token's H values of each stream
 * (stream i starts at i·stride + o). The mix is rounded before the residual is added, as the
 * reference's matmul then `+= hidden_states`.
 */
export function mixStreams(C: Float32Array, A: number, x: Float32Array, out: Float32Array, stride: number, o: number, H: number): void {
  for (let j = 0; j < A; j++) {
    const po = j * stride + o;
    for (let h = 0; h < H; h++) {
      let s = 0;
      for (let i = 0; i < A; i++) s += C[j * A + i] * x[i * stride + o + h];
      out[po + h] = Math.fround(s) + x[po + h];
    }
  }
}

/**
 * corrected[j] = pred[j] + (activated − pred[active]) · (correction_coefs(modalities(activated))[j] + 1)
 * [Gemma3nTextAltUp.correct], written into `out` [A, T, H] (which may be the old streams: they
 * are not read). The router reads `activated` here, not the predictions.
 */
export function altupCorrect(ctx: ForwardContext, w: AltUpWeights, pred: Float32Array, activated: Float32Array, out: Float32Array): Float32Array {
  const { config: c, work, T } = ctx;
  const H = c.hiddenSize, A = c.altupNumInputs;
  const mod = computeRouterModalities(ctx, w, activated);
  // all_coefs = correction_coefs(modalities) + 1.0, both steps in f32
  const coef = work.take('altup.correct_coefs', T * A);
  for (let t = 0; t < T; t++) {
    for (let j = 0; j < A; j++) coef[t * A + j] = Math.fround(Math.fround(dot(w.correction_coefs, j * A, mod, t * A, A)) + 1);
  }
  // out[j] = pred[j] + innovation · coef[j], innovation = activated − pred[active] (src/kernels/altup.ts)
  rowOps(ctx.kernels).altupCorrectStreams(pred, activated, c.altupActiveIdx, coef, out, T, H, A);
  return out;
}

/**
 * out[t, h] = x[t, h] · correct_output_scale[h] [Gemma3nTextAltUp.scale_corrected_output]: the
 * decoder layer scales the corrected active stream before it gates the per-layer input.
 */
export function scaleCorrectedOutput(ctx: ForwardContext, w: AltUpWeights, x: Float32Array, out: Float32Array): Float32Array {
  return rowOps(ctx.kernels).scaleColumns(x, w.correct_output_scale, out, ctx.T, ctx.config.hiddenSize);
}

/**
 * Scales `x` (rows of H) so each row has the RMS of the matching row of `target`:
 * x · rms(target) / sqrt(max(mean(x²), 1e-5)). Used when AltUp streams are created from the
 * embedding and when they are un-embedded at the end [Gemma3nTextModel.forward].
 */
export function matchMagnitude(x: Float32Array, target: Float32Array, T: number, H: number): void {
  for (let t = 0; t < T; t++) {
    const st = dot(target, t * H, target, t * H, H), sx = dot(x, t * H, x, t * H, H);
    const targetMag = Math.fround(Math.sqrt(Math.fround(st / H)));
    const mag = Math.fround(Math.sqrt(Math.max(Math.fround(sx / H), 1e-5)));
    for (let h = 0; h < H; h++) x[t * H + h] = Math.fround(x[t * H + h] * targetMag) / mag;
  }
}
