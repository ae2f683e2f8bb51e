/** Gemma 4's vision path: image processor, ViT tower, soft-token embedder. */
export { parseGemma4VisionConfig, Gemma4VisionConfigError, type Gemma4VisionConfig } from './config.js';
export { preprocessGemma4Image, gemma4TargetSize, patchify, planarRgb, GEMMA4_SOFT_TOKEN_BUDGETS, type Gemma4ImageOptions, type Gemma4PixelInput } from './preprocess.js';
export { resizeBicubicU8 } from './resize_bicubic.js';
export { AxialRope } from './axial_rope.js';
export { Gemma4VisionTower, type Gemma4VisionInput, type Gemma4VisionOutput } from './tower.js';
export { Gemma4SoftEmbedder } from '../gemma4_soft_embedder.js';
