/**
 * Gemma 4's audio feature extractor [feature_extraction_gemma4.py, Gemma4AudioFeatureExtractor]:
 * 128 log-mel bins every 10 ms from 16 kHz mono. It reuses Gemma 3n's FFT and HTK mel filters
 * (src/encoders/audio/) and differs in its settings and three semantics:
 *
 *   - 20 ms frames (320 samples) in a 512-point FFT, mel 0–8000 Hz, no pre-emphasis;
 *   - semicausal padding: 160 zeros in front, windows of 321 samples (the 321st only has to exist);
 *   - log(mel + 1e-3) (an added floor, not a max), and a frame is valid only when the LAST sample
 *     of its window is real audio; invalid frames are exactly 0.
 */
import { Fft } from '../audio/fft.js';
import { melFilterBank } from '../audio/feature_extractor.js';

export interface Gemma4AudioFeatures {
  /** [B, T, 128] log-mel; invalid frames are 0. */
  features: Float32Array;
  /** [B, T], 1 = valid (Gemma 4 masks are True = valid everywhere). */
  mask: Uint8Array;
  batch: number;
  frames: number;
  featureSize: number;
}

export const GEMMA4_AUDIO_FEATURES = Object.freeze({
  sampleRate: 16000, featureSize: 128, frameLength: 320, hopLength: 160, fftLength: 512,
  minFrequency: 0, maxFrequency: 8000, melFloor: 1e-3, padToMultipleOf: 128, maxLength: 480000,
});

/** Periodic Hann 0.5 − 0.5·cos(2πn/N), computed in float64 and stored as float32. */
export function hannWindowF64(n: number): Float32Array {
  const w = new Float32Array(n);
  for (let i = 0; i < n; i++) w[i] = 0.5 - 0.5 * Math.cos((2 * Math.PI * i) / n);
  return w;
}

export class Gemma4AudioFeatureExtractor {
  readonly window: Float32Array;
  /** [257, 128] float64 (FFT bins × mel bins). */
  readonly melFilters: Float64Array;
  private readonly fft: Fft;
  private readonly s = GEMMA4_AUDIO_FEATURES;

  constructor() {
    const s = this.s;
    this.window = hannWindowF64(s.frameLength);
    this.melFilters = melFilterBank(s.fftLength / 2 + 1, s.minFrequency, s.maxFrequency, s.featureSize, s.sampleRate, s.fftLength);
    this.fft = new Fft(s.fftLength);
  }

  /** Frames of a padded length L: windows of frameLength + 1 samples after frameLength/2 zeros. */
  numFrames(paddedLength: number): number {
    const s = this.s, L = paddedLength + s.frameLength / 2;
    return L < s.frameLength + 1 ? 0 : Math.floor((L - s.frameLength - 1) / s.hopLength) + 1;
  }

  /** `fe(waveforms, padding="longest", pad_to_multiple_of=128, truncation=True, max_length=480000)`. */
  extract(waveforms: readonly Float32Array[]): Gemma4AudioFeatures {
    const s = this.s;
    if (waveforms.length === 0) throw new RangeError('audio features: no waveforms given');
    const lengths = waveforms.map((w) => Math.min(w.length, s.maxLength));
    const padded = Math.ceil(Math.max(...lengths) / s.padToMultipleOf) * s.padToMultipleOf;
    const T = this.numFrames(padded), F = s.featureSize, B = waveforms.length, front = s.frameLength / 2;
    const features = new Float32Array(B * T * F), mask = new Uint8Array(B * T);
    const wave = new Float32Array(front + padded);
    const re = new Float64Array(s.fftLength), im = new Float64Array(s.fftLength), mag = new Float64Array(s.fftLength / 2 + 1);
    for (let b = 0; b < B; b++) {
      wave.fill(0);
      wave.set(waveforms[b].subarray(0, lengths[b]), front);
      for (let t = 0; t < T; t++) {
        // valid iff the last sample of the 321-sample window (index t·hop + frameLength in the
        // front-padded wave, i.e. t·hop + 160 in the real one) is real audio
        const valid = t * s.hopLength + front < lengths[b];
        mask[b * T + t] = valid ? 1 : 0;
        if (!valid) continue;
        const start = t * s.hopLength;
        for (let j = 0; j < s.frameLength; j++) re[j] = Math.fround(wave[start + j] * this.window[j]);
        re.fill(0, s.frameLength);
        im.fill(0);
        this.fft.transform(re, im);
        for (let k = 0; k < mag.length; k++) mag[k] = Math.fround(Math.hypot(re[k], im[k]));
        const o = (b * T + t) * F;
        for (let m = 0; m < F; m++) {
          let acc = 0;
          for (let k = 0; k < mag.length; k++) acc += mag[k] * this.melFilters[k * F + m];
          features[o + m] = Math.log(acc + s.melFloor);
        }
      }
    }
    return { features, mask, batch: B, frames: T, featureSize: F };
  }
}

/**
 * Soft tokens of a clip with `validFrames` valid feature frames: two rounds of
 * `mask = mask[::2][:(t + 2 − 3)//2 + 1]` (the subsampler's two stride-2 convs), counted
 * [processing_gemma4.py]; about 25 per second.
 */
export function gemma4AudioTokenCount(frameMask: ArrayLike<number>): number {
  let m = Array.from(frameMask);
  for (let r = 0; r < 2; r++) {
    const t = m.length;
    m = m.filter((_, i) => i % 2 === 0).slice(0, Math.floor((t + 2 - 3) / 2) + 1);
  }
  return m.reduce((a, v) => a + (v ? 1 : 0), 0);
}
