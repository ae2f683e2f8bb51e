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
import { dot, rmsNorm } from './ops.js';

type AltUpWeights = LayerWeights['altup'];

/**
 * modalities[t, a] = tanh(modality_router(router_norm(x[t]) · 1/H)), shape [T, A]
 * [Gemma3nTextAltUp.compute_router_modalities].
 */
export function computeRouterModalities(ctx: ForwardContext, w: AltUpWeights, x: Float32Array): Float32Array {
  const { config: c, work, T } = ctx;
  const H = c.hiddenSize, A = c.altupNumInputs;
  const normed = rmsNorm(x, w.router_norm, T, H, c.rmsNormEps, work.take('altup.normed', T * H));
  const inputScale = Math.fround(1 / H); // router_input_scale = hidden_size**-1.0 (not -0.5)
  for (let i = 0; i < T * H; i++) normed[i] = Math.fround(normed[i] * inputScale);
  const out = work.take('altup.modalities', T * A);
  for (let t = 0; t < T; t++) {
    for (let a = 0; a < A; a++) out[t * A + a] = Math.tanh(dot(normed, t * H, w.modality_router, a * H, H));
  }
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
  const coefs = work.take('altup.coefs', A * A); // f32, as the reference's Linear output
  for (let t = 0; t < T; t++) {
    // coefs = prediction_coefs(modalities[t]) : [A*A] = W[A*A, A] · m[A]
    for (let k = 0; k < A * A; k++) coefs[k] = dot(w.prediction_coefs, k * A, mod, t * A, A);
    if (A === 4) mixStreams4(coefs, streams, pred, TH, t * H, H);
    else mixStreams(coefs, A, streams, pred, TH, t * H, H);
  }
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

/** mixStreams for A = 4, the width of every Gemma 3n: one pass, coefficients in registers (~3× faster). */
export function mixStreams4(C: Float32Array, x: Float32Array, out: Float32Array, stride: number, o: number, H: number): void {
  const c00 = C[0], c01 = C[1], c02 = C[2], c03 = C[3];
  const c10 = C[4], c11 = C[5], c12 = C[6], c13 = C[7];
  const c20 = C[8], c21 = C[9], c22 = C[10], c23 = C[11];
  const c30 = C[12], c31 = C[13], c32 = C[14], c33 = C[15];
  const o0 = o, o1 = stride + o, o2 = 2 * stride + o, o3 = 3 * stride + o;
  for (let h = 0; h < H; h++) {
    const x0 = x[o0 + h], x1 = x[o1 + h], x2 = x[o2 + h], x3 = x[o3 + h];
    out[o0 + h] = Math.fround(c00 * x0 + c01 * x1 + c02 * x2 + c03 * x3) + x0;
    out[o1 + h] = Math.fround(c10 * x0 + c11 * x1 + c12 * x2 + c13 * x3) + x1;
    out[o2 + h] = Math.fround(c20 * x0 + c21 * x1 + c22 * x2 + c23 * x3) + x2;
    out[o3 + h] = Math.fround(c30 * x0 + c31 * x1 + c32 * x2 + c33 * x3) + x3;
  }
}

/**
 * corrected[j] = pred[j] + (activated − pred[active]) · (correction_coefs(modalities(activated))[j] + 1)
 * [Gemma3nTextAltUp.correct], written into `out` [A, T, H] (which may be the old streams: they
 * are not read). The router reads `activated` here, not the predictions.
 */
export function altupCorrect(ctx: ForwardContext, w: AltUpWeights, pred: Float32Array, activated: Float32Array, out: Float32Array): Float32Array {
  const { config: c, work, T } = ctx;
  const H = c.hiddenSize, A = c.altupNumInputs, TH = T * H;
  const mod = computeRouterModalities(ctx, w, activated);
  const innovation = work.take('altup.innovation', TH);
  const active = c.altupActiveIdx * TH;
  for (let i = 0; i < TH; i++) innovation[i] = activated[i] - pred[active + i];
  for (let t = 0; t < T; t++) {
    for (let j = 0; j < A; j++) {
      // all_coefs = correction_coefs(modalities) + 1.0, both steps in f32
      const coef = Math.fround(Math.fround(dot(w.correction_coefs, j * A, mod, t * A, A)) + 1);
      const o = j * TH + t * H;
      for (let h = 0; h < H; h++) out[o + h] = pred[o + h] + Math.fround(innovation[t * H + h] * coef);
    }
  }
  return out;
}

/**
 * out[t, h] = x[t, h] · correct_output_scale[h] [Gemma3nTextAltUp.scale_corrected_output]: the
 * decoder layer scales the corrected active stream before it gates the per-layer input.
 */
export function scaleCorrectedOutput(ctx: ForwardContext, w: AltUpWeights, x: Float32Array, out: Float32Array): Float32Array {
  const H = ctx.config.hiddenSize, scale = w.correct_output_scale;
  for (let t = 0; t < ctx.T; t++) for (let h = 0; h < H; h++) out[t * H + h] = x[t * H + h] * scale[h];
  return out;
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
