/**
 * The towers' operations besides their GEMMs, in plain TypeScript: the reference that
 * assembly/tower_ops.ts (WasmKernels) is tested against, and what TsKernels runs.
 *
 *   - depthwiseConv2d: a depthwise k×k convolution on a channels-last map (MobileNet-V5's
 *     dw_start / dw_mid / K/V down-sampling convs), stride and explicit padding.
 *   - rmsNormAct: a row RMSNorm with its weight, then optionally GELU (tanh), a per-channel
 *     layer scale and a residual add: ConvNormAct and the end of every MobileNet-V5 block.
 *   - multiQueryAttention: every query row against one shared key and value head, no mask
 *     (MobileNet-V5's Mobile MQA: the heads of a pixel are just more query rows).
 *
 * Accumulation is in float64 with one rounding to float32 per output, as the code these replaced
 * (src/encoders/vision/); the WASM kernels accumulate in float32 and agree to float32 rounding.
 */
import { geluTanh } from './elementwise.js';

export interface DepthwiseConv2dParams {
  /** Input [h, w, c], channels-last. */
  x: Float32Array;
  h: number;
  w: number;
  c: number;
  /** Taps-major weights [k·k, c] (tap ky·k + kx, then channel). */
  taps: Float32Array;
  kernel: number;
  stride: number;
  /** Zero rows/columns before the input (top, left); the rest of the padding is implied by outH/outW. */
  padTop: number;
  padLeft: number;
  outH: number;
  outW: number;
  /** Output [outH, outW, c]. */
  out: Float32Array;
}

/** y[oy, ox, ch] = Σ_{ky,kx} taps[ky·k + kx, ch] · x[oy·s − padTop + ky, ox·s − padLeft + kx, ch] (zero outside). */
export function depthwiseConv2d(p: DepthwiseConv2dParams): void {
  const { x: src, h, w, c, taps, kernel: k, stride: s, padTop, padLeft, outH, outW, out: dst } = p;
  checkDepthwise(p);
  const acc = new Float64Array(c);
  for (let oy = 0; oy < outH; oy++) {
    for (let ox = 0; ox < outW; ox++) {
      acc.fill(0);
      for (let ky = 0; ky < k; ky++) {
        const iy = oy * s - padTop + ky;
        if (iy < 0 || iy >= h) continue;
        for (let kx = 0; kx < k; kx++) {
          const ix = ox * s - padLeft + kx;
          if (ix < 0 || ix >= w) continue;
          const xo = (iy * w + ix) * c, wo = (ky * k + kx) * c;
          for (let ch = 0; ch < c; ch++) acc[ch] += taps[wo + ch] * src[xo + ch];
        }
      }
      const yo = (oy * outW + ox) * c;
      for (let ch = 0; ch < c; ch++) dst[yo + ch] = acc[ch];
    }
  }
}

export function checkDepthwise(p: DepthwiseConv2dParams): void {
  const { h, w, c, kernel: k, outH, outW } = p;
  if (p.x.length < h * w * c) throw new Error(`depthwiseConv2d: x has ${p.x.length} values for [${h}, ${w}, ${c}]`);
  if (p.taps.length < k * k * c) throw new Error(`depthwiseConv2d: ${p.taps.length} taps for ${k}×${k}×${c}`);
  if (p.out.length < outH * outW * c) throw new Error(`depthwiseConv2d: out has ${p.out.length} values for [${outH}, ${outW}, ${c}]`);
  if (p.stride < 1 || p.padTop < 0 || p.padLeft < 0) throw new Error(`depthwiseConv2d: stride ${p.stride}, padding (${p.padTop}, ${p.padLeft})`);
}

export interface RmsNormActParams {
  /** [rows, dim], normalized in place. */
  x: Float32Array;
  rows: number;
  dim: number;
  /** [dim], used as is (no 1 + w). */
  weight: Float32Array;
  eps: number;
  /** GELU (tanh approximation) after the norm. */
  gelu?: boolean;
  /** [dim] per-channel scale after the activation (LayerScale2d). */
  gamma?: Float32Array | null;
  /** [rows, dim] added last (the residual shortcut). */
  residual?: Float32Array | null;
}

/** x[r] = x[r] · rsqrt(mean(x[r]²) + eps) · weight, then GELU, · gamma, + residual[r] as asked. */
export function rmsNormAct(p: RmsNormActParams): void {
  const { x, rows, dim, weight, eps } = p;
  const gamma = p.gamma ?? null, res = p.residual ?? null, gelu = p.gelu ?? false;
  checkNorm(p);
  for (let r = 0; r < rows; r++) {
    const o = r * dim;
    let ss = 0;
    for (let i = 0; i < dim; i++) ss += x[o + i] * x[o + i];
    const inv = Math.fround(1 / Math.sqrt(Math.fround(Math.fround(ss / dim) + eps)));
    for (let i = 0; i < dim; i++) {
      let v = Math.fround(Math.fround(x[o + i] * inv) * weight[i]);
      if (gelu) v = Math.fround(geluTanh(v));
      if (gamma) v = Math.fround(v * gamma[i]);
      if (res) v += res[o + i];
      x[o + i] = v;
    }
  }
}

export function checkNorm(p: RmsNormActParams): void {
  const { rows, dim } = p;
  if (p.x.length < rows * dim) throw new Error(`rmsNormAct: x has ${p.x.length} values for [${rows}, ${dim}]`);
  if (p.weight.length !== dim) throw new Error(`rmsNormAct: weight has ${p.weight.length} values for ${dim} channels`);
  if (p.gamma && p.gamma.length !== dim) throw new Error(`rmsNormAct: gamma has ${p.gamma.length} values for ${dim} channels`);
  if (p.residual && p.residual.length < rows * dim) throw new Error(`rmsNormAct: residual has ${p.residual.length} values for [${rows}, ${dim}]`);
}

export interface MultiQueryAttentionParams {
  /** Queries [rows, kd], already scaled. */
  q: Float32Array;
  /** Keys [M, kd] and values [M, vd]: one head shared by every query row. */
  k: Float32Array;
  v: Float32Array;
  rows: number;
  M: number;
  kd: number;
  vd: number;
  /** Output [rows, vd]. */
  out: Float32Array;
}

/** out[r] = Σ_m softmax_m(q[r] · k[m]) · v[m], no mask. */
export function multiQueryAttention(p: MultiQueryAttentionParams): void {
  const { q, k, v, rows, M, kd, vd, out } = p;
  checkMqa(p);
  const s = new Float32Array(M), acc = new Float64Array(vd);
  for (let r = 0; r < rows; r++) {
    let max = -Infinity;
    for (let m = 0; m < M; m++) {
      let d = 0;
      for (let j = 0; j < kd; j++) d += q[r * kd + j] * k[m * kd + j];
      s[m] = d;
      if (s[m] > max) max = s[m];
    }
    let sum = 0;
    for (let m = 0; m < M; m++) {
      s[m] = Math.exp(s[m] - max);
      sum += s[m];
    }
    acc.fill(0);
    for (let m = 0; m < M; m++) {
      const pm = Math.fround(s[m] / sum);
      for (let j = 0; j < vd; j++) acc[j] += pm * v[m * vd + j];
    }
    for (let j = 0; j < vd; j++) out[r * vd + j] = acc[j];
  }
}

export function checkMqa(p: MultiQueryAttentionParams): void {
  const { rows, M, kd, vd } = p;
  if (p.q.length < rows * kd || p.k.length < M * kd || p.v.length < M * vd || p.out.length < rows * vd) {
    throw new Error(`multiQueryAttention: q/k/v/out shorter than rows ${rows}, M ${M}, kd ${kd}, vd ${vd} say`);
  }
}
