/**
 * Gemma 3n audio path: sound file → 16 kHz mono → log-mel → USM conformer (`audio_tower`)
 * → `embed_audio` → soft tokens in the text model's embedding space.
 *
 *   const model = await loadAudioEncoder(checkpoint, configJson, kernels);
 *   const features = extractFeatures([decodeAudioFile(wavBytes)]);
 *   const enc = model.encode(features);          // [B, T', 1536], paddedMask [B, T']
 *   const soft = model.embed(enc);               // [B, T', text hidden]
 *   const prompt = model.mergeForPrompt(enc);    // [B, 188, text hidden], what the audio tokens become
 *
 * Nothing here imports a Node module; file bytes come from the caller or a FileProvider. This file
 * only re-exports: model.ts (the whole path), encoder.ts (`audio_tower`), trace.ts (`gemma3n trace`).
 */
export { parseAudioConfig, DEFAULT_AUDIO_CONFIG, type AudioConfig, type AudioModelConfig } from './config.js';
export { FeatureExtractor, extractFeatures, DEFAULT_FEATURE_OPTIONS, melFilterBank, hannWindow, type AudioFeatures, type FeatureExtractorOptions } from './feature_extractor.js';
export { AudioEncoder, type AudioEncoding, type EncoderHook } from './encoder.js';
export { AudioEmbedder } from './embedder.js';
export { AudioModel, loadAudioEncoder } from './model.js';
export { traceAudio, traceAudioFiles, type TracedTensor, type TraceOptions } from './trace.js';
export { decodeWav, encodeWav, mixdown, WavError, type WavAudio, type WavSampleFormat } from './wav.js';
export { Resampler, resample } from './resample.js';
export { decodeAudioFile, fromAudioBuffer, AUDIO_SAMPLE_RATE, type AudioBufferLike } from './load.js';
