/**
 * The Gemma 3n vision tower as one object: MobileNet-V5 (`model.vision_tower.timm_model.*`,
 * timm's `MobileNetV5Encoder`, ./encoder.ts) plus `embed_vision` (`Gemma3nMultimodalEmbedder`,
 * ./embedder.ts): pixel_values [1, 3, 768, 768] → 256 soft tokens [256, 2048] → [256, text hidden].
 */
import type { Kernels } from '../../kernels/kernels.js';
import type { MultimodalEmbedder } from '../multimodal_embedder.js';
import { GEMMA3N_VISION, type EncoderConfig } from './arch.js';
import { embedSoftTokens, loadVisionEmbedder } from './embedder.js';
import { MobileNetV5Encoder, type EncoderTrace } from './encoder.js';
import { IMAGE_SIZE } from './preprocess.js';
import { fromCHW, prefixed, type TensorReader } from './tensor.js';

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

/** Side of a square [1, 3, S, S] float32 NCHW input (768 for Gemma 3n; smaller towers in tests). */
export function pixelSide(pixelValues: Float32Array): number {
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
