/**
 * Log-mel front end, numerically following `Gemma3nAudioFeatureExtractor`
 * [transformers feature_extraction_gemma3n.py] with its default (= preprocessor_config.json) settings:
 *
 *   16 kHz mono → pad right to a multiple of 128 samples (and to the batch's longest)
 *   → frames of 513 samples every 160 (no centering) → HTK pre-emphasis 0.97 inside each frame
 *   → periodic Hann(512) → |rfft| with n = 1024 (fft_overdrive) → HTK mel bank 125–7600 Hz, 128 bins
 *   → ln(max(mel, 1e-5)).
 *
 * Precision follows the reference: framing, pre-emphasis and windowing happen in float32 (the padded
 * waveform is float32), the FFT, magnitude, mel product and log in float64, and the result is
 * rounded to float32.
 */
import { Fft } from './fft.js';

export interface FeatureExtractorOptions {
  sampleRate: number;
  /** Mel bins (feature_size). */
  featureSize: number;
  frameLengthMs: number;
  hopLengthMs: number;
  minFrequency: number;
  maxFrequency: number;
  preemphasis: number;
  /** fft_overdrive doubles the FFT size (512 → 1024). */
  fftOverdrive: boolean;
  melFloor: number;
  padToMultipleOf: number;
  /** Longer clips are truncated to this many samples (30 s). */
  maxLength: number;
}

export const DEFAULT_FEATURE_OPTIONS: Readonly<FeatureExtractorOptions> = Object.freeze({
  sampleRate: 16000,
  featureSize: 128,
  frameLengthMs: 32,
  hopLengthMs: 10,
  minFrequency: 125,
  maxFrequency: 7600,
  preemphasis: 0.97,
  fftOverdrive: true,
  melFloor: 1e-5,
  padToMultipleOf: 128,
  maxLength: 480_000,
});

/** A batch of log-mel features. */
export interface AudioFeatures {
  /** [B, T, featureSize] row-major. */
  features: Float32Array;
  /** [B, T], 1 = valid frame (the extractor's convention; the encoder wants the inverse). */
  mask: Uint8Array;
  batch: number;
  frames: number;
  featureSize: number;
}

/**
 * HTK triangular mel filters as `create_fb_matrix(norm=None)`: [nFreqs, nMels] row-major, float64.
 * Triangles are evaluated at the FFT bin frequencies k·sr/n (no area normalisation).
 */
export function melFilterBank(nFreqs: number, fMin: number, fMax: number, nMels: number, sampleRate: number, fftLength: number): Float64Array {
  const hzToMel = (f: number) => 2595 * Math.log10(1 + f / 700);
  const melToHz = (m: number) => 700 * (10 ** (m / 2595) - 1);
  const mMin = hzToMel(fMin), mMax = hzToMel(fMax);
  // np.linspace(mMin, mMax, nMels + 2): start + i*step, with the last point set to stop exactly.
  const nPts = nMels + 2, step = (mMax - mMin) / (nPts - 1);
  const fPts = new Float64Array(nPts);
  for (let i = 0; i < nPts; i++) fPts[i] = melToHz(i === nPts - 1 ? mMax : i * step + mMin);
  const fb = new Float64Array(nFreqs * nMels);
  for (let k = 0; k < nFreqs; k++) {
    // all_freqs is float32 in the reference: arange(float32) * (sr / n); exact for 16000/1024.
    const freq = Math.fround(Math.fround(k) * Math.fround(sampleRate / fftLength));
    for (let m = 0; m < nMels; m++) {
      const down = -(fPts[m] - freq) / (fPts[m + 1] - fPts[m]);
      const up = (fPts[m + 2] - freq) / (fPts[m + 2] - fPts[m + 1]);
      fb[k * nMels + m] = Math.max(0, Math.min(down, up));
    }
  }
  return fb;
}

/** Periodic Hann window 0.5·(1 − cos(2πn/N)), computed in float32 like the reference. */
export function hannWindow(n: number): Float32Array {
  const w = new Float32Array(n);
  const twoPi = Math.fround(2 * Math.PI);
  for (let i = 0; i < n; i++) {
    // numpy: 2*pi*arange(float32) → float32 products, / n → float32, cos in float32, then 0.5*(1-c).
    const arg = Math.fround(Math.fround(twoPi * i) / n);
    const c = Math.fround(Math.cos(arg));
    w[i] = Math.fround(0.5 * Math.fround(1 - c));
  }
  return w;
}

export class FeatureExtractor {
  readonly opts: FeatureExtractorOptions;
  readonly frameLength: number;
  readonly hopLength: number;
  readonly fftLength: number;
  readonly window: Float32Array;
  /** [nFreqs, nMels] float64, as create_fb_matrix. */
  readonly melFilters: Float64Array;
  /** For each mel bin, the FFT-bin range [lo, hi) where its triangle is non-zero. */
  private readonly melRanges: Int32Array;
  private readonly fft: Fft;

  constructor(options: Partial<FeatureExtractorOptions> = {}) {
    const o = (this.opts = { ...DEFAULT_FEATURE_OPTIONS, ...options });
    this.frameLength = Math.round((o.sampleRate * o.frameLengthMs) / 1000); // 512
    this.hopLength = Math.round((o.sampleRate * o.hopLengthMs) / 1000); // 160
    this.fftLength = 2 ** Math.ceil(Math.log2(this.frameLength)) * (o.fftOverdrive ? 2 : 1); // 1024
    this.window = hannWindow(this.frameLength);
    const nFreqs = this.fftLength / 2 + 1;
    this.melFilters = melFilterBank(nFreqs, o.minFrequency, o.maxFrequency, o.featureSize, o.sampleRate, this.fftLength);
    this.melRanges = new Int32Array(2 * o.featureSize);
    for (let m = 0; m < o.featureSize; m++) {
      let lo = nFreqs, hi = 0;
      for (let k = 0; k < nFreqs; k++) if (this.melFilters[k * o.featureSize + m] !== 0) { lo = Math.min(lo, k); hi = k + 1; }
      this.melRanges[2 * m] = lo;
      this.melRanges[2 * m + 1] = Math.max(lo, hi);
    }
    this.fft = new Fft(this.fftLength);
  }

  /** Frames T for a padded length: each frame needs frameLength + 1 samples (the 513th is unused). */
  numFrames(paddedLength: number): number {
    return paddedLength < this.frameLength + 1 ? 0 : Math.floor((paddedLength - this.frameLength - 1) / this.hopLength) + 1;
  }

  /**
   * Log-mel features of a batch of 16 kHz mono waveforms, padded like
   * `fe(waveforms, padding="longest", pad_to_multiple_of=128, truncation=True, max_length=480000)`.
   */
  extract(waveforms: readonly Float32Array[]): AudioFeatures {
    const o = this.opts;
    if (waveforms.length === 0) throw new Error('extractFeatures: no waveforms given');
    // SequenceFeatureExtractor.pad: truncate to max_length, then pad to the longest, rounded up.
    const lengths = waveforms.map((w) => Math.min(w.length, o.maxLength));
    const longest = Math.max(...lengths);
    const padded = Math.ceil(longest / o.padToMultipleOf) * o.padToMultipleOf;
    const T = this.numFrames(padded), F = o.featureSize, B = waveforms.length;
    const features = new Float32Array(B * T * F);
    const mask = new Uint8Array(B * T);
    const wave = new Float32Array(padded);
    for (let b = 0; b < B; b++) {
      wave.fill(0);
      wave.set(waveforms[b].subarray(0, lengths[b]));
      this.logMel(wave, T, features.subarray(b * T * F, (b + 1) * T * F));
      // mask = attention_mask[::hop][:T]: a frame is valid iff its first sample is.
      for (let t = 0; t < T; t++) mask[b * T + t] = t * this.hopLength < lengths[b] ? 1 : 0;
    }
    return { features, mask, batch: B, frames: T, featureSize: F };
  }

  /** Log-mel of one padded waveform into out [T, F]. */
  private logMel(wave: Float32Array, T: number, out: Float32Array): void {
    const { frameLength: N, hopLength: hop, fftLength: nfft, window, melFilters, melRanges } = this;
    const F = this.opts.featureSize, nFreqs = nfft / 2 + 1;
    const pre = Math.fround(this.opts.preemphasis);
    const firstScale = Math.fround(1 - this.opts.preemphasis); // (1.0 - 0.97) cast to float32
    const floor = this.opts.melFloor;
    const re = new Float64Array(nfft), im = new Float64Array(nfft), mag = new Float64Array(nFreqs);
    for (let t = 0; t < T; t++) {
      const s = t * hop;
      // HTK pre-emphasis inside the frame, then the window; all float32 as in numpy.
      re[0] = Math.fround(Math.fround(wave[s] * firstScale) * window[0]);
      for (let j = 1; j < N; j++) {
        const y = Math.fround(wave[s + j] - Math.fround(pre * wave[s + j - 1]));
        re[j] = Math.fround(y * window[j]);
      }
      re.fill(0, N);
      im.fill(0);
      this.fft.transform(re, im);
      for (let k = 0; k < nFreqs; k++) mag[k] = Math.hypot(re[k], im[k]);
      const o = t * F;
      for (let m = 0; m < F; m++) {
        let acc = 0;
        for (let k = melRanges[2 * m], hi = melRanges[2 * m + 1]; k < hi; k++) acc += mag[k] * melFilters[k * F + m];
        out[o + m] = Math.log(Math.max(acc, floor));
      }
    }
  }
}

let defaultExtractor: FeatureExtractor | null = null;

/** Log-mel features of 16 kHz mono clips with the Gemma 3n defaults, batched like the reference. */
export function extractFeatures(waveforms: readonly Float32Array[]): AudioFeatures {
  defaultExtractor ??= new FeatureExtractor();
  return defaultExtractor.extract(waveforms);
}
