import { describe, it, expect } from 'vitest';
import { decodeWav, encodeWav, mixdown, WavError, type WavSampleFormat } from '../../../src/encoders/audio/wav.js';
import { decodeAudioFile, fromAudioBuffer } from '../../../src/encoders/audio/load.js';
import { mulberry32 as rng } from '../../helpers.js';

function tone(n: number, f: number, sr: number, amp = 0.5, phase = 0): Float32Array {
  return Float32Array.from({ length: n }, (_, i) => amp * Math.sin((2 * Math.PI * f * i) / sr + phase));
}

const STEP: Record<WavSampleFormat, number> = { pcm8: 1 / 128, pcm16: 1 / 32768, pcm24: 1 / 8388608, pcm32: 1 / 2147483648, float32: 0, float64: 0 };

describe('WAV reader', () => {
  it.each(Object.keys(STEP) as WavSampleFormat[])('%s mono and stereo round trip within one quantisation step', (format) => {
    const left = tone(1000, 440, 16000), right = tone(1000, 1000, 16000, 0.3, 1);
    for (const chans of [[left], [left, right]]) {
      const wav = decodeWav(encodeWav(chans, 22050, format), 'x.wav');
      expect(wav.sampleRate).toBe(22050);
      expect(wav.format).toBe(format);
      expect(wav.frames).toBe(1000);
      expect(wav.channels.length).toBe(chans.length);
      for (let c = 0; c < chans.length; c++) {
        let err = 0;
        for (let i = 0; i < 1000; i++) err = Math.max(err, Math.abs(wav.channels[c][i] - chans[c][i]));
        expect(err).toBeLessThanOrEqual(STEP[format] / 2 + 1e-7);
      }
    }
  });

  it('integer full scale maps to [-1, 1)', () => {
    const wav = decodeWav(encodeWav([Float32Array.of(-1, 0, 1)], 8000, 'pcm16'));
    expect(Array.from(wav.channels[0])).toEqual([-1, 0, 32767 / 32768]);
    const w8 = decodeWav(encodeWav([Float32Array.of(-1, 0, 1)], 8000, 'pcm8'));
    expect(Array.from(w8.channels[0])).toEqual([-1, 0, 127 / 128]);
  });

  it('32-bit float 16 kHz mono passes through bit-exact, including odd values', () => {
    const r = rng(7);
    const x = Float32Array.from({ length: 5000 }, () => (r() - 0.5) * 3);
    x[0] = 1e-40; x[1] = -0; x[2] = 12345.678; // subnormal, negative zero, out of [-1, 1]
    const y = decodeAudioFile(encodeWav([x], 16000, 'float32'), 'f.wav');
    expect(new Uint32Array(y.buffer, y.byteOffset, y.length)).toEqual(new Uint32Array(x.buffer));
  });

  it('stereo is mixed down by averaging', () => {
    const m = mixdown([Float32Array.of(1, 0.5), Float32Array.of(0, -0.5)]);
    expect(Array.from(m)).toEqual([0.5, 0]);
    const y = decodeAudioFile(encodeWav([Float32Array.of(0.25, 1), Float32Array.of(0.75, 0)], 16000, 'float32'));
    expect(Array.from(y)).toEqual([0.5, 0.5]);
  });

  it('skips unknown chunks, honours odd-size padding, and reads WAVE_FORMAT_EXTENSIBLE', () => {
    const base = encodeWav([Float32Array.of(0.5, -0.5, 0.25)], 16000, 'pcm16');
    // Insert a 3-byte 'LIST' chunk (padded to 4) before 'fmt ', and rewrite fmt as EXTENSIBLE.
    const ext = new Uint8Array(8 + 40);
    const dv = new DataView(ext.buffer);
    ext.set([0x66, 0x6d, 0x74, 0x20]); dv.setUint32(4, 40, true);
    dv.setUint16(8, 0xfffe, true); dv.setUint16(10, 1, true); dv.setUint32(12, 16000, true);
    dv.setUint32(16, 32000, true); dv.setUint16(20, 2, true); dv.setUint16(22, 16, true);
    dv.setUint16(24, 22, true); dv.setUint16(26, 16, true); dv.setUint32(28, 4, true); dv.setUint16(32, 1, true);
    const list = Uint8Array.of(0x4c, 0x49, 0x53, 0x54, 3, 0, 0, 0, 1, 2, 3, 0);
    const file = new Uint8Array([...base.subarray(0, 12), ...list, ...ext, ...base.subarray(36)]);
    const wav = decodeWav(file);
    expect(wav.format).toBe('pcm16');
    expect(Array.from(wav.channels[0])).toEqual([0.5, -0.5, 0.25]);
  });

  it('reads a truncated data chunk up to the last whole frame', () => {
    const f = encodeWav([tone(100, 440, 16000), tone(100, 440, 16000)], 16000, 'pcm24');
    const wav = decodeWav(f.subarray(0, f.length - 7));
    expect(wav.frames).toBe(98);
  });

  it.each([
    [new Uint8Array(4), /shorter than a RIFF header/],
    [new TextEncoder().encode('RIFF\0\0\0\0AVI LIST'), /not a WAV file/],
    [new TextEncoder().encode('RF64\0\0\0\0WAVE'), /RF64/],
  ])('rejects non-WAV input clearly (%#)', (bytes, msg) => {
    expect(() => decodeWav(bytes, 'bad.wav')).toThrow(msg);
  });

  it('rejects unsupported encodings with the reason', () => {
    const f = encodeWav([tone(10, 440, 16000)], 16000, 'pcm16');
    const dv = new DataView(f.buffer);
    const g = f.slice(); new DataView(g.buffer).setUint16(20, 2, true); // ADPCM
    expect(() => decodeWav(g, 'a.wav')).toThrow(/a\.wav: unsupported WAV encoding \(format tag 0x2/);
    const h = f.slice(); new DataView(h.buffer).setUint16(34, 12, true); new DataView(h.buffer).setUint16(32, 2, true);
    expect(() => decodeWav(h)).toThrow(/bit depth 12/);
    const k = f.slice(); new DataView(k.buffer).setUint16(22, 0, true);
    expect(() => decodeWav(k)).toThrow(/channel count 0/);
    expect(dv.getUint16(20, true)).toBe(1);
  });

  it('fuzz: 5000 random mutations each load or throw a WavError, quickly and without huge allocations', () => {
    const r = rng(12345);
    const seeds = (['pcm8', 'pcm16', 'pcm24', 'pcm32', 'float32'] as const).map((fmt, i) =>
      encodeWav(i % 2 ? [tone(300, 440, 16000)] : [tone(300, 440, 16000), tone(300, 660, 16000)], [8000, 16000, 44100, 48000, 22050][i], fmt));
    let loaded = 0, rejected = 0;
    const t0 = Date.now();
    for (let it = 0; it < 5000; it++) {
      const src = seeds[it % seeds.length];
      let f = src.slice();
      const kind = Math.floor(r() * 6);
      const nMut = 1 + Math.floor(r() * 4);
      for (let m = 0; m < nMut; m++) {
        if (kind === 0) f[Math.floor(r() * f.length)] = Math.floor(r() * 256); // random byte
        else if (kind === 1) f = f.subarray(0, Math.floor(r() * f.length)); // truncation
        else if (kind === 2) { // forge a 32-bit field in the header
          const o = Math.floor(r() * 44) & ~1;
          if (o + 4 <= f.length) new DataView(f.buffer, f.byteOffset).setUint32(o, r() < 0.5 ? 0xffffffff : Math.floor(r() * 2 ** 32), true);
        } else if (kind === 3) { // forge a 16-bit header field
          const o = 20 + 2 * Math.floor(r() * 8);
          new DataView(f.buffer, f.byteOffset).setUint16(o, Math.floor(r() * 65536), true);
        } else if (kind === 4) f[Math.floor(r() * Math.min(44, f.length))] ^= 1 << Math.floor(r() * 8); // bit flip in header
        else { // splice random bytes in
          const at = Math.floor(r() * f.length);
          const junk = Uint8Array.from({ length: Math.floor(r() * 16) }, () => Math.floor(r() * 256));
          f = new Uint8Array([...f.subarray(0, at), ...junk, ...f.subarray(at)]);
        }
      }
      try {
        const wav = decodeWav(f, 'fuzz.wav');
        // Never more samples than the file has bytes for.
        expect(wav.frames * wav.channels.length).toBeLessThanOrEqual(f.length);
        loaded++;
      } catch (e) {
        expect(e).toBeInstanceOf(WavError);
        expect((e as Error).message).toMatch(/^fuzz\.wav: /);
        rejected++;
      }
    }
    expect(loaded).toBeGreaterThan(100);
    expect(rejected).toBeGreaterThan(100);
    expect(Date.now() - t0).toBeLessThan(20000);
  });

  it('AudioBuffer input is mixed down and resampled', () => {
    const l = tone(4800, 440, 48000), rr = tone(4800, 440, 48000);
    const y = fromAudioBuffer({ numberOfChannels: 2, sampleRate: 48000, getChannelData: (c) => (c ? rr : l) });
    expect(y.length).toBe(1600);
  });
});
