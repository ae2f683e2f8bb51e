import { describe, it, expect } from 'vitest';
import { resample, Resampler } from '../../../src/encoders/audio/resample.js';
import { Fft } from '../../../src/encoders/audio/fft.js';

function tone(n: number, f: number, sr: number, amp: number): Float32Array {
  return Float32Array.from({ length: n }, (_, i) => amp * Math.sin((2 * Math.PI * f * i) / sr));
}

/** Magnitude spectrum (Hann-windowed) of x[from, from + n), n a power of two, scaled so a full-scale sine at a bin centre reads its amplitude. */
function spectrum(x: Float32Array, from: number, n: number): Float64Array {
  const re = new Float64Array(n), im = new Float64Array(n);
  for (let i = 0; i < n; i++) re[i] = x[from + i] * 0.5 * (1 - Math.cos((2 * Math.PI * i) / n));
  new Fft(n).transform(re, im);
  const mag = new Float64Array(n / 2);
  for (let k = 0; k < n / 2; k++) mag[k] = (Math.hypot(re[k], im[k]) * 4) / n;
  return mag;
}

function peak(mag: Float64Array): number {
  let k = 0;
  for (let i = 1; i < mag.length; i++) if (mag[i] > mag[k]) k = i;
  return k;
}

describe('resampler', () => {
  it('16 kHz → 16 kHz is the identity (same array)', () => {
    const x = tone(100, 440, 16000, 0.5);
    expect(resample(x, 16000)).toBe(x);
  });

  it('44.1 kHz sine at 1 kHz keeps its frequency and amplitude', () => {
    const x = tone(44100, 1000, 44100, 0.5);
    const y = resample(x, 44100, 16000);
    expect(y.length).toBe(16000);
    // Away from the edges: compare to the ideal 16 kHz sine sample by sample.
    let err = 0;
    for (let i = 200; i < 15800; i++) err = Math.max(err, Math.abs(y[i] - 0.5 * Math.sin((2 * Math.PI * 1000 * i) / 16000)));
    expect(err).toBeLessThan(1e-3);
    const mag = spectrum(y, 4000, 8192);
    expect(peak(mag) * (16000 / 8192)).toBeCloseTo(1000, -1);
  });

  it('passband edge tone at 7 kHz survives with amplitude within 1%', () => {
    const y = resample(tone(48000, 7000, 48000, 0.5), 48000, 16000);
    let max = 0;
    for (let i = 1000; i < 15000; i++) max = Math.max(max, Math.abs(y[i]));
    expect(Math.abs(max - 0.5)).toBeLessThan(0.005);
  });

  it('a tone above the new Nyquist is suppressed (no aliasing)', () => {
    // 12 kHz at 44.1 kHz would alias to 4 kHz at 16 kHz.
    const y = resample(tone(44100, 12000, 44100, 0.5), 44100, 16000);
    let max = 0;
    for (let i = 300; i < 15700; i++) max = Math.max(max, Math.abs(y[i]));
    expect(max).toBeLessThan(0.5 * 1e-3); // < -60 dB
    // 9 kHz (just past 8 kHz) too.
    const z = resample(tone(44100, 9000, 44100, 0.5), 44100, 16000);
    let mz = 0;
    for (let i = 300; i < 15700; i++) mz = Math.max(mz, Math.abs(z[i]));
    expect(mz).toBeLessThan(0.5 * 1e-3);
  });

  it('upsamples 8 kHz → 16 kHz and handles an odd ratio without a table', () => {
    const y = resample(tone(8000, 440, 8000, 0.5), 8000, 16000);
    expect(y.length).toBe(16000);
    let err = 0;
    for (let i = 200; i < 15800; i++) err = Math.max(err, Math.abs(y[i] - 0.5 * Math.sin((2 * Math.PI * 440 * i) / 16000)));
    expect(err).toBeLessThan(1e-3);
    const r = new Resampler(44123, 16000); // 16000/gcd = 16000 phases → per-sample taps
    const z = r.process(tone(4412, 500, 44123, 0.5));
    expect(z.length).toBe(r.outputLength(4412));
    let e2 = 0;
    for (let i = 200; i < z.length - 200; i++) e2 = Math.max(e2, Math.abs(z[i] - 0.5 * Math.sin((2 * Math.PI * 500 * i) / 16000)));
    expect(e2).toBeLessThan(1e-3);
  });

  it('rejects non-integer or non-positive rates', () => {
    expect(() => new Resampler(0, 16000)).toThrow(/positive integers/);
    expect(() => new Resampler(44100.5, 16000)).toThrow(/positive integers/);
  });
});
