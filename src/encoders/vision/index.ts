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
 * Nothing here imports a Node module: bytes come from the caller. This file only re-exports:
 * tower.ts (load, encode, embed), trace.ts (`gemma3n trace`), preprocess.ts (the image processor),
 * encoder.ts (timm's MobileNetV5Encoder) and its blocks.
 */
export { decodeImage, decodePng, decodeJpeg, rgbFromRgba, rgbFromCanvasSource, sniffImageFormat, ImageDecodeError, type RgbImage, type DecodeOptions } from './image_decode.js';
export { preprocessImage, preprocessRgb, resizeToModelInput, resizeBilinearAntialiasU8, rescaleU8, IMAGE_SIZE, type ImageInput } from './preprocess.js';
export { MobileNetV5Encoder, type EncoderTrace } from './encoder.js';
export { GEMMA3N_VISION, MOBILENETV5_300M_ENC, type EncoderConfig } from './arch.js';
export { formulaWeights, formulaTensor } from './formula_weights.js';
export { BlockedTsKernels } from './blocked_kernels.js';
export { fromCHW, toCHW, prefixed, type FeatureMap, type TensorReader } from './tensor.js';
export { embedSoftTokens, loadVisionEmbedder } from './embedder.js';
export {
  loadVisionTower, encodeImage, encodeImageAsync, embedVision, VISION_TOWER_PREFIX, EMBED_VISION_PREFIX, VISION_SOFT_TOKENS, VISION_HIDDEN,
  type VisionTower, type LoadVisionOptions, type VisionWeights,
} from './tower.js';
export { traceVision, type TracedTensor, type TraceVisionOptions } from './trace.js';
