/** Gemma 4's audio path: feature extractor, conformer tower (embed_audio: ../gemma4_soft_embedder.ts). */
export { Gemma4AudioFeatureExtractor, gemma4AudioTokenCount, hannWindowF64, GEMMA4_AUDIO_FEATURES, type Gemma4AudioFeatures } from './feature_extractor.js';
export { parseGemma4AudioConfig, Gemma4AudioConfigError, type Gemma4AudioConfig } from './config.js';
export { Gemma4AudioTower, type Gemma4AudioOutput } from './tower.js';
export { Gemma4AudioAttention, relativePositionSinusoid } from './attention.js';
export { Gemma4SoftEmbedder } from '../gemma4_soft_embedder.js';
