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
import type { TextConfig } from './config.js';
import { rmsNorm } from './ops.js';
import type { LayerWeights } from './weights.js';

type AltUpWeights = LayerWeights['altup'];

/** modalities[t, a] = tanh(modality_router(router_norm(x[t]) · 1/H)), shape [T, A]. */
export function routerModalities(w: AltUpWeights, x: Float32Array, T: number, c: TextConfig): Float32Array {
  const H = c.hiddenSize, A = c.altupNumInputs;
  const normed = rmsNorm(x, w.router_norm, T, H, c.rmsNormEps, new Float32Array(T * H));
  const inputScale = Math.fround(1 / H); // router_input_scale = hidden_size**-1.0 (not -0.5)
  const out = new Float32Array(T * A);
  for (let t = 0; t < T; t++) {
    for (let a = 0; a < A; a++) {
      let s = 0;
      for (let h = 0; h < H; h++) s += Math.fround(normed[t * H + h] * inputScale) * w.modality_router[a * H + h];
      out[t * A + a] = Math.tanh(s);
    }
  }
  return out;
}

/** pred[j] = x[j] + Σ_i C[j, i]·x[i], with C = prediction_coefs(modalities) reshaped [A, A]. */
export function altupPredict(w: AltUpWeights, streams: Float32Array, T: number, c: TextConfig): Float32Array {
  const H = c.hiddenSize, A = c.altupNumInputs, TH = T * H;
  const mod = routerModalities(w, streams.subarray(c.altupActiveIdx * TH, (c.altupActiveIdx + 1) * TH), T, c);
  const pred = new Float32Array(streams); // starts as x (the "+ x" residual)
  const coefs = new Float32Array(A * A);
  for (let t = 0; t < T; t++) {
    // coefs = prediction_coefs(modalities[t]) : [A*A] = W[A*A, A] · m[A]
    for (let k = 0; k < A * A; k++) {
      let s = 0;
      for (let a = 0; a < A; a++) s += w.prediction_coefs[k * A + a] * mod[t * A + a];
      coefs[k] = s;
    }
    for (let j = 0; j < A; j++) {
      const po = j * TH + t * H;
      for (let i = 0; i < A; i++) {
        const cji = coefs[j * A + i], xo = i * TH + t * H;
        for (let h = 0; h < H; h++) pred[po + h] += cji * streams[xo + h];
      }
    }
  }
  return pred;
}

/**
 * corrected[j] = pred[j] + (activated − pred[active]) · (correction_coefs(modalities(activated))[j] + 1).
 * The router reads `activated` here, not the predictions.
 */
export function altupCorrect(w: AltUpWeights, pred: Float32Array, activated: Float32Array, T: number, c: TextConfig): Float32Array {
  const H = c.hiddenSize, A = c.altupNumInputs, TH = T * H;
  const mod = routerModalities(w, activated, T, c);
  const out = new Float32Array(pred);
  const active = c.altupActiveIdx * TH;
  for (let t = 0; t < T; t++) {
    for (let j = 0; j < A; j++) {
      let coef = 1.0;
      for (let a = 0; a < A; a++) coef += w.correction_coefs[j * A + a] * mod[t * A + a];
      const o = j * TH + t * H;
      for (let h = 0; h < H; h++) out[o + h] += (activated[t * H + h] - pred[active + t * H + h]) * coef;
    }
  }
  return out;
}

/**
 * Scales `x` (rows of H) so each row has the RMS of the matching row of `target`:
 * x · rms(target) / sqrt(max(mean(x²), 1e-5)). Used when AltUp streams are created from the
 * embedding and when they are un-embedded at the end [Gemma3nTextModel.forward].
 */
export function matchMagnitude(x: Float32Array, target: Float32Array, T: number, H: number): void {
  for (let t = 0; t < T; t++) {
    let st = 0, sx = 0;
    for (let h = 0; h < H; h++) {
      st += target[t * H + h] ** 2;
      sx += x[t * H + h] ** 2;
    }
    const targetMag = Math.fround(Math.sqrt(Math.fround(st / H)));
    const mag = Math.fround(Math.sqrt(Math.max(Math.fround(sx / H), 1e-5)));
    for (let h = 0; h < H; h++) x[t * H + h] = Math.fround(x[t * H + h] * targetMag) / mag;
  }
}
