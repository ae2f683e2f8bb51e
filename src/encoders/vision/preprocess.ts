/**
 * Gemma 3n image preprocessing (SiglipImageProcessorFast with the released config):
 *   RGB uint8 → antialiased bilinear resize to exactly 768×768 (aspect ratio ignored, result
 *   uint8) → pixel = float32(u8) · float32(1/255) → NCHW float32 in [0, 1]. No mean/std
 *   normalisation (`do_normalize: false`), no crop.
 *
 * The resize reproduces torchvision's native uint8 kernel bit for bit (torchvision ≥ 0.16 on
 * x86 with AVX2, i.e. PyTorch's `UpSampleKernelAVXAntialias`): separable, width pass first into
 * a uint8 intermediate, then height, with weights quantised to 16-bit fixed point. See the
 * "preprocess/" section of the vision golden README for the derivation.
 */
import { decodeImage, rgbFromRgba, type DecodeOptions, type RgbImage } from './image_decode.js';

/** Gemma 3n's vision input side (preprocessor_config.json `size`). */
export const IMAGE_SIZE = 768;

/** float32(1/255): the processor multiplies by `rescale_factor`, it does not divide. */
const RESCALE = Math.fround(1 / 255);

/** Fixed-point antialiased-bilinear weights for one axis (in → out). */
export interface AxisWeights {
  /** First input index read by output i. */
  readonly xmin: Int32Array;
  /** Number of input taps of output i. */
  readonly xsize: Int32Array;
  /** Integer weights, `ksize` per output (zero-padded). */
  readonly w16: Int32Array;
  readonly ksize: number;
  /** Weights are scaled by 2^precision. */
  readonly precision: number;
}

/**
 * PyTorch `_compute_indices_min_size_weights_aa` (bilinear filter max(0, 1−|x|), antialias on)
 * then `_compute_int16_weights`: normalised float64 weights, quantised with the largest
 * precision that keeps the biggest weight below 2^15.
 */
export function axisWeights(inSize: number, outSize: number): AxisWeights {
  const scale = inSize / outSize;
  const support = scale >= 1 ? scale : 1; // (interp_size / 2) · scale, interp_size = 2 for bilinear
  const invscale = scale >= 1 ? 1 / scale : 1;
  const ksize = Math.ceil(support) * 2 + 1;
  const xmin = new Int32Array(outSize), xsize = new Int32Array(outSize);
  const wf = new Float64Array(outSize * ksize);
  let wtMax = 0;
  for (let i = 0; i < outSize; i++) {
    const center = scale * (i + 0.5);
    const lo = Math.max(Math.trunc(center - support + 0.5), 0);
    const n = Math.min(Math.trunc(center + support + 0.5), inSize) - lo;
    xmin[i] = lo;
    xsize[i] = n;
    let total = 0;
    for (let j = 0; j < n; j++) {
      const w = Math.max(0, 1 - Math.abs((j + lo - center + 0.5) * invscale));
      wf[i * ksize + j] = w;
      total += w;
    }
    for (let j = 0; j < n; j++) {
      const w = total !== 0 ? wf[i * ksize + j] / total : 0;
      wf[i * ksize + j] = w;
      if (w > wtMax) wtMax = w;
    }
  }
  let precision = 0;
  for (; precision < 22; precision++) {
    if (Math.trunc(0.5 + wtMax * 2 ** (precision + 1)) >= 1 << 15) break;
  }
  const w16 = new Int32Array(outSize * ksize);
  for (let k = 0; k < w16.length; k++) w16[k] = Math.trunc(0.5 + wf[k] * 2 ** precision);
  return { xmin, xsize, w16, ksize, precision };
}

/**
 * Resizes one axis of a uint8 planar image: `count` independent lines, each `inSize` samples
 * `step` apart, lines `lineStride` apart in the input; output uses the same step with `outSize`.
 */
function resizeLines(src: Uint8Array, dst: Uint8Array, wts: AxisWeights, count: number, inLineStride: number, outLineStride: number, step: number, outSize: number): void {
  const { xmin, xsize, w16, ksize, precision } = wts;
  const round = 1 << (precision - 1);
  for (let line = 0; line < count; line++) {
    const si = line * inLineStride, di = line * outLineStride;
    for (let i = 0; i < outSize; i++) {
      let acc = round;
      const base = si + xmin[i] * step, wo = i * ksize;
      for (let j = 0, n = xsize[i]; j < n; j++) acc += w16[wo + j] * src[base + j * step];
      const v = Math.floor(acc / 2 ** precision);
      dst[di + i * step] = v < 0 ? 0 : v > 255 ? 255 : v;
    }
  }
}

/**
 * Antialiased bilinear resize of a planar uint8 image [C, H, W] to [C, outH, outW], exactly as
 * torchvision's native uint8 kernel: width pass first (skipped when W = outW), then height
 * (skipped when H = outH). Returns the input itself when both sides already match.
 */
export function resizeBilinearAntialiasU8(planes: Uint8Array, channels: number, height: number, width: number, outH: number, outW: number): Uint8Array {
  if (planes.length !== channels * height * width) throw new Error(`resize: ${planes.length} values for [${channels}, ${height}, ${width}]`);
  let cur = planes, curW = width;
  if (width !== outW) {
    const next = new Uint8Array(channels * height * outW);
    // Lines are rows: `channels·height` of them, samples contiguous.
    resizeLines(cur, next, axisWeights(width, outW), channels * height, width, outW, 1, outW);
    cur = next;
    curW = outW;
  }
  if (height !== outH) {
    const next = new Uint8Array(channels * outH * curW);
    const wts = axisWeights(height, outH);
    // Lines are columns: samples `curW` apart; one channel plane at a time.
    for (let c = 0; c < channels; c++) {
      const src = cur.subarray(c * height * curW, (c + 1) * height * curW);
      const dst = next.subarray(c * outH * curW, (c + 1) * outH * curW);
      resizeLines(src, dst, wts, curW, 1, 1, curW, outH);
    }
    cur = next;
  }
  return cur;
}

/** HWC interleaved RGB → CHW planes. */
export function rgbToPlanes(img: RgbImage): Uint8Array {
  const { width, height, data } = img;
  const n = width * height;
  if (data.length !== n * 3) throw new Error(`RGB image: ${data.length} bytes for ${width}×${height}×3`);
  const out = new Uint8Array(3 * n);
  for (let i = 0; i < n; i++) {
    out[i] = data[3 * i];
    out[n + i] = data[3 * i + 1];
    out[2 * n + i] = data[3 * i + 2];
  }
  return out;
}

/** The resize step alone: RGB image → uint8 [3, 768, 768] (what the `resized_u8` goldens hold). */
export function resizeToModelInput(img: RgbImage, size = IMAGE_SIZE): Uint8Array {
  return resizeBilinearAntialiasU8(rgbToPlanes(img), 3, img.height, img.width, size, size);
}

/** uint8 → float32 · (1/255), rounded to float32 exactly as torch's `u8 * rescale_factor`. */
export function rescaleU8(u8: Uint8Array): Float32Array {
  const out = new Float32Array(u8.length);
  for (let i = 0; i < u8.length; i++) out[i] = u8[i] * RESCALE; // float32 product: both factors are float32-exact
  return out;
}

/** RGB image → `pixel_values` [3, 768, 768] float32 (batch dimension omitted). */
export function preprocessRgb(img: RgbImage, size = IMAGE_SIZE): Float32Array {
  return rescaleU8(resizeToModelInput(img, size));
}

/** An image for `preprocessImage`: PNG/JPEG bytes, decoded RGB, or RGBA pixels (canvas ImageData). */
export type ImageInput = Uint8Array | RgbImage | { width: number; height: number; data: Uint8ClampedArray };

/** Image → `pixel_values` [3, 768, 768] float32 in [0, 1], exactly as Gemma 3n's processor. */
export function preprocessImage(input: ImageInput, opts: DecodeOptions = {}): Float32Array {
  let rgb: RgbImage;
  if (input instanceof Uint8Array) rgb = decodeImage(input, opts);
  else if (input.data.length === input.width * input.height * 4) rgb = rgbFromRgba(input);
  else rgb = input as RgbImage;
  return preprocessRgb(rgb);
}
