/**
 * Gemma 3n vision path: image file → RGB → 768×768 `pixel_values` → MobileNet-V5 tower
 * (`model.vision_tower.timm_model.*`) → 256 soft tokens [256, 2048] → `embed_vision`
 * (`model.embed_vision.*`) → [256, text hidden], what the image's 256 placeholder tokens become.
 *
 *   const tower = await loadVisionTower(checkpoint, kernels);
 *   const pixels = preprocessImage(pngOrJpegBytes);          // [3, 768, 768] float32 in [0, 1]
 *   const soft = encodeImage(tower, pixels);                 // [256, 2048], token t = row·16 + col
 *   const embeds = embedVision(tower, soft);                 // [256, text hidden]
 *
 * Nothing here imports a Node module: bytes come from the caller.
 */
import type { Kernels } from '../../kernels/kernels.js';
import type { MultimodalEmbedder } from '../multimodal_embedder.js';
import { GEMMA3N_VISION, type EncoderConfig } from './arch.js';
import { embedSoftTokens, loadVisionEmbedder } from './embedder.js';
import { MobileNetV5Encoder, type EncoderTrace } from './encoder.js';
import { decodeImage, rgbFromRgba, type DecodeOptions, type RgbImage } from './image_decode.js';
import { IMAGE_SIZE, preprocessRgb } from './preprocess.js';
import { fromCHW, prefixed, toCHW, type TensorReader } from './tensor.js';

export { decodeImage, decodePng, decodeJpeg, rgbFromRgba, rgbFromCanvasSource, sniffImageFormat, ImageDecodeError, type RgbImage, type DecodeOptions } from './image_decode.js';
export { preprocessRgb, resizeToModelInput, resizeBilinearAntialiasU8, rescaleU8, IMAGE_SIZE } from './preprocess.js';
export { MobileNetV5Encoder, type EncoderTrace } from './encoder.js';
export { GEMMA3N_VISION, MOBILENETV5_300M_ENC, type EncoderConfig } from './arch.js';
export { formulaWeights, formulaTensor } from './formula_weights.js';
export { BlockedTsKernels } from './blocked_kernels.js';
export { fromCHW, toCHW, prefixed, type FeatureMap, type TensorReader } from './tensor.js';
export { embedSoftTokens, loadVisionEmbedder } from './embedder.js';

/** Where the weights live in a Gemma 3n checkpoint. */
export const VISION_TOWER_PREFIX = 'model.vision_tower.timm_model.';
export const EMBED_VISION_PREFIX = 'model.embed_vision';
/** Soft tokens per image (16 × 16) and their width. */
export const VISION_SOFT_TOKENS = 256;
export const VISION_HIDDEN = 2048;

export interface VisionTower {
  readonly encoder: MobileNetV5Encoder;
  /** null when the checkpoint has no `model.embed_vision.*` (or no text hidden size was found). */
  readonly embedder: MultimodalEmbedder | null;
}

export interface LoadVisionOptions {
  config?: EncoderConfig;
  towerPrefix?: string;
  embedPrefix?: string;
  /** Text hidden size; read from embedding_projection's shape when the reader can tell it. */
  textHiddenSize?: number;
}

/** A checkpoint (or any reader) with `model.vision_tower.timm_model.*` and optionally `model.embed_vision.*`. */
export type VisionWeights = TensorReader & {
  info?(name: string): Promise<{ shape: readonly number[] }>;
};

export async function loadVisionTower(weights: VisionWeights, kernels: Kernels, opts: LoadVisionOptions = {}): Promise<VisionTower> {
  const encoder = await MobileNetV5Encoder.load(prefixed(weights, opts.towerPrefix ?? VISION_TOWER_PREFIX), kernels, opts.config ?? GEMMA3N_VISION);
  const ep = opts.embedPrefix ?? EMBED_VISION_PREFIX;
  const projName = `${ep}.embedding_projection.weight`;
  let embedder: MultimodalEmbedder | null = null;
  if (weights.has?.(projName) ?? true) {
    const textHidden = opts.textHiddenSize ?? (weights.info ? (await weights.info(projName)).shape[0] : undefined);
    if (textHidden !== undefined) embedder = await loadVisionEmbedder(weights, kernels, textHidden, ep, { hiddenSize: encoder.config.numFeatures });
  }
  return { encoder, embedder };
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

/** Side of a square [1, 3, S, S] float32 NCHW input (768 for Gemma 3n; smaller towers in tests). */
function pixelSide(pixelValues: Float32Array): number {
  const size = Math.round(Math.sqrt(pixelValues.length / 3));
  if (size < 1 || 3 * size * size !== pixelValues.length) throw new Error(`vision: pixel_values has ${pixelValues.length} values, expected [1, 3, ${IMAGE_SIZE}, ${IMAGE_SIZE}]`);
  return size;
}

/**
 * The tower on one image: pixel_values [1, 3, 768, 768] → soft tokens [256, 2048] (row-major
 * 16×16 grid; the reference's `reshape(B, 2048, 256).permute(0, 2, 1)`), before the √2048
 * scaling and embed_vision. `trace` sees every named intermediate (channels-last maps).
 */
export function encodeImage(tower: VisionTower, pixelValues: Float32Array, trace?: EncoderTrace): Float32Array {
  const size = pixelSide(pixelValues);
  // Channels-last [16, 16, 2048] is already [256 tokens, 2048].
  return tower.encoder.forward(fromCHW(pixelValues, 3, size, size), trace).data;
}

/** `encodeImage` that yields to the event loop between blocks (browsers, servers). */
export async function encodeImageAsync(tower: VisionTower, pixelValues: Float32Array, trace?: EncoderTrace): Promise<Float32Array> {
  const size = pixelSide(pixelValues);
  return (await tower.encoder.forwardAsync(fromCHW(pixelValues, 3, size, size), trace)).data;
}

/** Soft tokens [N, 2048] → embed_vision → [N, text hidden] (applies the √2048 scale first). */
export function embedVision(tower: VisionTower, softTokens: Float32Array, N = VISION_SOFT_TOKENS): Float32Array {
  if (!tower.embedder) throw new Error('embedVision: the checkpoint has no model.embed_vision.* weights');
  return embedSoftTokens(tower.embedder, softTokens, N);
}

export interface TracedTensor {
  dtype: 'F32';
  shape: number[];
  data: Float32Array;
}

export interface TraceVisionOptions {
  /** Also record every tower intermediate (`vision.stem`, `vision.blocks.S.J`, `vision.stageS`, `vision.msfa.*`) as NCHW. */
  intermediates?: boolean;
}

/**
 * The vision face of `gemma3n trace`: `vision.pixel_values` [1, 3, 768, 768],
 * `vision.soft_tokens` [1, 256, 2048] (tower output as tokens, before √2048 and embed_vision),
 * and `vision.embed_soft` [1, 256, text hidden] when the tower has embed_vision weights.
 */
export function traceVision(input: { pixelValues: Float32Array } | { imageBytes: Uint8Array } | { image: ImageInput }, tower: VisionTower, opts: TraceVisionOptions = {}): Map<string, TracedTensor> {
  const out = new Map<string, TracedTensor>();
  const pixelValues = 'pixelValues' in input ? input.pixelValues : preprocessImage('imageBytes' in input ? input.imageBytes : input.image);
  const size = pixelSide(pixelValues);
  out.set('vision.pixel_values', { dtype: 'F32', shape: [1, 3, size, size], data: pixelValues });
  const trace: EncoderTrace | undefined = opts.intermediates
    ? (name, data, [h, w, c]) => { if (name !== 'features') out.set(`vision.${name}`, { dtype: 'F32', shape: [1, c, h, w], data: toCHW({ h, w, c, data }) }); }
    : undefined;
  const soft = encodeImage(tower, pixelValues, trace);
  const width = tower.encoder.config.numFeatures, n = soft.length / width; // 256 tokens for Gemma 3n
  out.set('vision.soft_tokens', { dtype: 'F32', shape: [1, n, width], data: soft });
  if (tower.embedder) {
    const e = embedVision(tower, soft, n);
    out.set('vision.embed_soft', { dtype: 'F32', shape: [1, n, e.length / n], data: e });
  }
  return out;
}
