/**
 * From a sound file (or a Web Audio AudioBuffer) to what the feature extractor wants:
 * 16 kHz mono float32.
 */
import { decodeWav, mixdown } from './wav.js';
import { resample } from './resample.js';

export const AUDIO_SAMPLE_RATE = 16000;

/** Decodes a WAV file, mixes it to mono and resamples it to 16 kHz. A 16 kHz mono float32 file passes through bit-exact. */
export function decodeAudioFile(bytes: Uint8Array | ArrayBuffer, name?: string): Float32Array {
  const wav = decodeWav(bytes, name);
  return resample(mixdown(wav.channels), wav.sampleRate, AUDIO_SAMPLE_RATE);
}

/** The part of the Web Audio `AudioBuffer` interface used here. */
export interface AudioBufferLike {
  readonly numberOfChannels: number;
  readonly sampleRate: number;
  getChannelData(channel: number): Float32Array;
}

/** A browser AudioBuffer (e.g. from `decodeAudioData`) → 16 kHz mono. */
export function fromAudioBuffer(buf: AudioBufferLike): Float32Array {
  const channels = Array.from({ length: buf.numberOfChannels }, (_, c) => buf.getChannelData(c));
  return resample(mixdown(channels), Math.round(buf.sampleRate), AUDIO_SAMPLE_RATE);
}
