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
 * Nothing here imports a Node module; file bytes come from the caller or a FileProvider.
 */
import type { FileProvider } from '../../io/byte_source.js';
import type { Kernels } from '../../kernels/kernels.js';
import { TsKernels } from '../../kernels/ts_kernels.js';
import type { TensorStore } from '../../checkpoint/checkpoint.js';
import { FeatureExtractor, type AudioFeatures } from './feature_extractor.js';
import { decodeAudioFile } from './load.js';
import { AudioModel } from './model.js';
import { traceAudio, type TraceOptions, type TracedTensor } from './trace.js';

export { parseAudioConfig, DEFAULT_AUDIO_CONFIG, type AudioConfig, type AudioModelConfig } from './config.js';
export { FeatureExtractor, DEFAULT_FEATURE_OPTIONS, melFilterBank, hannWindow, type AudioFeatures, type FeatureExtractorOptions } from './feature_extractor.js';
export { AudioEncoder, type AudioEncoding, type EncoderHook } from './encoder.js';
export { AudioEmbedder } from './embedder.js';
export { AudioModel } from './model.js';
export { traceAudio, type TracedTensor, type TraceOptions } from './trace.js';
export { decodeWav, encodeWav, mixdown, WavError, type WavAudio, type WavSampleFormat } from './wav.js';
export { Resampler, resample } from './resample.js';
export { decodeAudioFile, fromAudioBuffer, AUDIO_SAMPLE_RATE, type AudioBufferLike } from './load.js';

/** Loads `model.audio_tower.*` and `model.embed_audio.*` given the parsed full gemma3n config.json. */
export function loadAudioEncoder(checkpoint: TensorStore, fullConfig: unknown, kernels: Kernels = new TsKernels()): Promise<AudioModel> {
  return AudioModel.load(checkpoint, fullConfig, kernels);
}

let defaultExtractor: FeatureExtractor | null = null;

/** Log-mel features of 16 kHz mono clips with the Gemma 3n defaults, batched like the reference. */
export function extractFeatures(waveforms: readonly Float32Array[]): AudioFeatures {
  defaultExtractor ??= new FeatureExtractor();
  return defaultExtractor.extract(waveforms);
}

/**
 * What `gemma3n trace --model DIR --audio a.wav [--audio b.wav ...]` writes: opens the model folder
 * (full gemma3n config.json, checkpoint with the audio weights), decodes each WAV to 16 kHz mono and
 * traces the batch. Pass the result's entries to `writeSafetensors` as `{name, ...tensor}`.
 */
export async function traceAudioFiles(
  folder: FileProvider,
  files: readonly { name: string; bytes: Uint8Array }[],
  kernels: Kernels = new TsKernels(),
  opts: TraceOptions = {},
): Promise<Map<string, TracedTensor>> {
  if (files.length === 0) throw new Error('trace: no --audio files given');
  const waves = files.map((f) => decodeAudioFile(f.bytes, f.name));
  const model = await AudioModel.open(folder, kernels);
  try {
    return traceAudio(model, waves, opts);
  } finally {
    model.release();
  }
}
