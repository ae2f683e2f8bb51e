/**
 * The image processor's resize, bit-exact: torchvision `resize(uint8, BICUBIC, antialias=True)`
 * runs torch's integer ("Pillow-SIMD style") separable kernel on CPU
 * [aten/src/ATen/native/cpu/UpSampleKernel.cpp, the uint8 antialias path].
 *
 *   per axis: scale = n_in / n_out, support = 2·max(scale, 1); for output i the taps are the
 *   inputs within `support` of its centre, weighted by Keys' cubic (a = −0.5) and normalised;
 *   the weights become fixed point with the largest precision that keeps them in 16 bits.
 *   Width first into a uint8 intermediate (rounded and clamped), then height.
 *
 * A float bicubic differs by up to 28 levels at hard edges (golden vision README), so the
 * fixed-point arithmetic is the point of this file.
 */

/** Keys' cubic convolution kernel with a = −0.5 (PIL/torch antialias bicubic). */
function cubic(x: number): number {
  const a = -0.5;
  x = Math.abs(x);
  if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
  if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
  return 0;
}

interface AxisTaps {
  /** First input index and tap count per output. */
  start: Int32Array;
  size: Int32Array;
  /** Fixed-point weights, `maxTaps` per output. */
  weights: Int32Array;
  maxTaps: number;
  precision: number;
}

/** Taps and fixed-point weights for one axis, n_in → n_out. */
function axisTaps(nIn: number, nOut: number): AxisTaps {
  const scale = nIn / nOut;
  const support = scale >= 1 ? 2 * scale : 2;
  const invScale = scale >= 1 ? 1 / scale : 1;
  const maxTaps = Math.ceil(support) * 2 + 1;
  const start = new Int32Array(nOut), size = new Int32Array(nOut);
  const wf = new Float64Array(nOut * maxTaps);
  let wtMax = 0;
  for (let i = 0; i < nOut; i++) {
    const center = scale * (i + 0.5);
    const xmin = Math.max(Math.trunc(center - support + 0.5), 0);
    const xsize = Math.min(Math.trunc(center + support + 0.5), nIn) - xmin;
    start[i] = xmin;
    size[i] = xsize;
    let total = 0;
    for (let j = 0; j < xsize; j++) {
      const w = cubic((j + xmin - center + 0.5) * invScale);
      wf[i * maxTaps + j] = w;
      total += w;
    }
    for (let j = 0; j < xsize; j++) {
      const w = total !== 0 ? wf[i * maxTaps + j] / total : 0;
      wf[i * maxTaps + j] = w;
      if (w > wtMax) wtMax = w;
    }
  }
  // The largest precision whose biggest weight still fits in int16 (torch: _compute_indices_weights_aa, then
  // the "weights_precision" search).
  let precision = 22;
  for (let p = 0; p < 22; p++) {
    if (Math.trunc(0.5 + wtMax * 2 ** (p + 1)) >= 2 ** 15) { precision = p; break; }
  }
  const weights = new Int32Array(nOut * maxTaps);
  const one = 2 ** precision;
  for (let k = 0; k < weights.length; k++) {
    const v = wf[k] * one;
    weights[k] = Math.sign(v) * Math.floor(Math.abs(v) + 0.5); // round half away from zero
  }
  return { start, size, weights, maxTaps, precision };
}

/**
 * Resizes a planar uint8 image [C, H, W] to [C, outH, outW]. An axis whose size does not
 * change is not filtered (torch skips it too).
 */
export function resizeBicubicU8(src: Uint8Array, C: number, H: number, W: number, outH: number, outW: number): Uint8Array {
  if (src.length !== C * H * W) throw new RangeError(`resizeBicubicU8: ${src.length} bytes for [${C}, ${H}, ${W}]`);
  if (!(outH > 0 && outW > 0)) throw new RangeError(`resizeBicubicU8: bad output size ${outH}×${outW}`);
  let cur = src, curW = W;
  if (outW !== W) {
    const t = axisTaps(W, outW);
    const out = new Uint8Array(C * H * outW);
    const round = 2 ** (t.precision - 1), div = 2 ** t.precision;
    for (let row = 0; row < C * H; row++) {
      const ib = row * W, ob = row * outW;
      for (let i = 0; i < outW; i++) {
        const s = t.start[i], n = t.size[i], wb = i * t.maxTaps;
        let acc = round;
        for (let j = 0; j < n; j++) acc += t.weights[wb + j] * cur[ib + s + j];
        const v = Math.floor(acc / div);
        out[ob + i] = v < 0 ? 0 : v > 255 ? 255 : v;
      }
    }
    cur = out;
    curW = outW;
  }
  if (outH !== H) {
    const t = axisTaps(H, outH);
    const out = new Uint8Array(C * outH * curW);
    const round = 2 ** (t.precision - 1), div = 2 ** t.precision;
    for (let c = 0; c < C; c++) {
      const cb = c * H * curW, ocb = c * outH * curW;
      for (let i = 0; i < outH; i++) {
        const s = t.start[i], n = t.size[i], wb = i * t.maxTaps;
        for (let x = 0; x < curW; x++) {
          let acc = round;
          for (let j = 0; j < n; j++) acc += t.weights[wb + j] * cur[cb + (s + j) * curW + x];
          const v = Math.floor(acc / div);
          out[ocb + i * curW + x] = v < 0 ? 0 : v > 255 ? 255 : v;
        }
      }
    }
    cur = out;
  }
  return cur === src ? src.slice() : cur;
}
