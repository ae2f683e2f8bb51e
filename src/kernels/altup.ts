/**
 * AltUp's per-element stream math [Gemma3nTextAltUp], the reference the WASM kernels of
 * assembly/altup.ts reproduce bit for bit (Kernels.rowOps); src/model/altup.ts explains the idea.
 */
import { dot, rmsNorm } from './norm.js';

/**
 * The router before its tanh, for T rows of x [T, H]: dots[t, a] = Σ_h n[t, h]·W[a, h] (float64),
 * n = f32(rmsNorm(x, normW)[t, h] · scale) written to `normed` [T, H]; scale is a float32 value.
 */
export function altupRouterDots(x: Float32Array, normW: Float32Array, routerW: Float32Array, T: number, H: number, A: number, eps: number, scale: number, normed: Float32Array, dots: Float64Array): void {
  rmsNorm(x, normW, T, H, eps, normed);
  for (let i = 0; i < T * H; i++) normed[i] = Math.fround(normed[i] * scale);
  for (let t = 0; t < T; t++) {
    for (let a = 0; a < A; a++) dots[t * A + a] = dot(normed, t * H, routerW, a * H, H);
  }
}

/** mixStreams4 for every row of T-row streams [4, T, H], with each row's C [T, 4, 4]. out must not be x. */
export function altupMix4(C: Float32Array, x: Float32Array, out: Float32Array, T: number, H: number): void {
  for (let t = 0; t < T; t++) mixStreams4(C.subarray(t * 16, t * 16 + 16), x, out, T * H, t * H, H);
}

/**
 * out[j] = round_f32(Σ_i C[j, i]·x[i]) + x[j] over one token's H values of each of the 4 streams
 * (stream i starts at i·stride + o), C [4, 4]. The mix is rounded before the residual is added,
 * as the reference's matmul then `+= hidden_states`. One pass, coefficients in registers.
 */
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
 * out[j, t] = pred[j, t] + f32((activated[t] − pred[active, t]) · coef[t, j]) for T rows of A
 * streams ([A, T, H]); coef [T, A] already holds correction_coefs + 1. out must not be pred.
 */
export function altupCorrectStreams(pred: Float32Array, activated: Float32Array, active: number, coef: Float32Array, out: Float32Array, T: number, H: number, A: number): void {
  const TH = T * H;
  for (let t = 0; t < T; t++) {
    const pa = active * TH + t * H, at = t * H;
    for (let j = 0; j < A; j++) {
      const cf = coef[t * A + j], o = j * TH + t * H;
      for (let h = 0; h < H; h++) out[o + h] = pred[o + h] + Math.fround(Math.fround(activated[at + h] - pred[pa + h]) * cf);
    }
  }
}
