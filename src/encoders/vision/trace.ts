/**
 * The vision face of `gemma3n trace`: pixel_values, the tower's soft tokens and embed_vision's
 * output under the golden files' names (test/golden/vision/README.md), and with
 * `intermediates: true` every named tower intermediate as NCHW.
 */
import { preprocessImage, type ImageInput } from './preprocess.js';
import { toCHW } from './tensor.js';
import { embedVision, encodeImage, pixelSide, type VisionTower } from './tower.js';
import type { EncoderTrace } from './encoder.js';

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
