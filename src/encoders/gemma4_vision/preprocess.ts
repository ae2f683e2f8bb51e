/**
 * Gemma 4's image processor [image_processing_gemma4.py, Gemma4ImageProcessor]: an
 * aspect-preserving resize to a patch budget, rescale to [0, 1], 16×16 patches in row-major
 * order with (x, y) position ids, padded to `max_patches` rows.
 *
 *   max_patches = max_soft_tokens · k²          (k = pooling_kernel_size, 3)
 *   f = √(max_patches · p² / (H·W)),  m = k·p   h = ⌊f·H/m⌋·m, w = ⌊f·W/m⌋·m
 *   pixel = float32(u8) · float32(1/255)        no normalisation (the model maps to [−1, 1])
 *
 * Unlike Gemma 3n's fixed 768×768, the number of soft tokens varies with the aspect ratio:
 * (h/p/k)·(w/p/k) ≤ max_soft_tokens.
 */
import type { RgbImage } from '../vision/image_decode.js';
import { resizeBicubicU8 } from './resize_bicubic.js';

/** The budgets the reference accepts (_SUPPORTED_SOFT_TOKENS). */
export const GEMMA4_SOFT_TOKEN_BUDGETS = [70, 140, 280, 560, 1120] as const;

export interface Gemma4ImageOptions {
  /** 70, 140, 280 (default), 560 or 1120. */
  maxSoftTokens?: number;
  patchSize?: number;
  poolingKernelSize?: number;
}

export interface Gemma4PixelInput {
  /** [maxPatches, 3·p²] float32, each patch flattened (py, px, channel); padding rows are 0. */
  pixelValues: Float32Array;
  /** [maxPatches, 2] (x, y) = (column, row) of each patch; padding rows (−1, −1). */
  positionIds: Int32Array;
  maxPatches: number;
  numPatches: number;
  numSoftTokens: number;
  /** The resized image, planar RGB [3, h, w] (the processor's resize output). */
  resized: Uint8Array;
  height: number;
  width: number;
}

/** get_aspect_ratio_preserving_size: the largest (h, w), multiples of k·p, within the budget. */
export function gemma4TargetSize(height: number, width: number, patchSize: number, maxPatches: number, poolingKernelSize: number): [number, number] {
  const targetPx = maxPatches * patchSize ** 2;
  const factor = Math.sqrt(targetPx / (height * width));
  const m = poolingKernelSize * patchSize;
  let h = Math.floor((factor * height) / m) * m;
  let w = Math.floor((factor * width) / m) * m;
  if (h === 0 && w === 0) throw new RangeError(`image ${width}×${height}: cannot resize to a multiple of ${m} pixels`);
  const maxSide = Math.floor(maxPatches / poolingKernelSize ** 2) * m;
  if (h === 0) {
    h = m;
    w = Math.min(Math.floor(width / height) * m, maxSide);
  } else if (w === 0) {
    w = m;
    h = Math.min(Math.floor(height / width) * m, maxSide);
  }
  if (h * w > targetPx) throw new RangeError(`image ${width}×${height}: resizing to ${w}×${h} exceeds ${maxPatches} patches`);
  return [h, w];
}

/** HWC interleaved RGB → planar [3, H, W] (torchvision's pil_to_tensor layout). */
export function planarRgb(img: RgbImage): Uint8Array {
  const n = img.width * img.height;
  if (img.data.length !== n * 3) throw new RangeError(`image: ${img.data.length} bytes for ${img.width}×${img.height} RGB`);
  const out = new Uint8Array(3 * n);
  for (let i = 0; i < n; i++) {
    out[i] = img.data[3 * i];
    out[n + i] = img.data[3 * i + 1];
    out[2 * n + i] = img.data[3 * i + 2];
  }
  return out;
}

/** Resize, rescale, patchify and pad one image. */
export function preprocessGemma4Image(img: RgbImage, opts: Gemma4ImageOptions = {}): Gemma4PixelInput {
  const budget = opts.maxSoftTokens ?? 280;
  if (!(GEMMA4_SOFT_TOKEN_BUDGETS as readonly number[]).includes(budget)) throw new RangeError(`maxSoftTokens must be one of ${GEMMA4_SOFT_TOKEN_BUDGETS.join(', ')}, got ${budget}`);
  const p = opts.patchSize ?? 16, k = opts.poolingKernelSize ?? 3;
  const maxPatches = budget * k * k;
  const [h, w] = gemma4TargetSize(img.height, img.width, p, maxPatches, k);
  const planar = planarRgb(img);
  const resized = h === img.height && w === img.width ? planar : resizeBicubicU8(planar, 3, img.height, img.width, h, w);
  return patchify(resized, h, w, p, k, maxPatches);
}

/** convert_image_to_patches + position ids + pad_along_first_dim, from a planar [3, h, w] uint8 image. */
export function patchify(resized: Uint8Array, h: number, w: number, p: number, k: number, maxPatches: number): Gemma4PixelInput {
  const gh = h / p, gw = w / p, numPatches = gh * gw, D = 3 * p * p;
  if (!Number.isInteger(gh) || !Number.isInteger(gw)) throw new RangeError(`patchify: ${w}×${h} is not a multiple of the patch size ${p}`);
  if (numPatches > maxPatches) throw new RangeError(`patchify: ${numPatches} patches exceed max_patches ${maxPatches}`);
  const pixelValues = new Float32Array(maxPatches * D);
  const positionIds = new Int32Array(maxPatches * 2).fill(-1);
  const inv255 = Math.fround(1 / 255);
  const plane = h * w;
  for (let row = 0; row < gh; row++) {
    for (let col = 0; col < gw; col++) {
      const n = row * gw + col, base = n * D;
      for (let py = 0; py < p; py++) {
        for (let px = 0; px < p; px++) {
          const src = (row * p + py) * w + col * p + px, o = base + (py * p + px) * 3;
          for (let c = 0; c < 3; c++) pixelValues[o + c] = Math.fround(resized[c * plane + src] * inv255);
        }
      }
      positionIds[2 * n] = col;
      positionIds[2 * n + 1] = row;
    }
  }
  return { pixelValues, positionIds, maxPatches, numPatches, numSoftTokens: numPatches / (k * k), resized, height: h, width: w };
}
