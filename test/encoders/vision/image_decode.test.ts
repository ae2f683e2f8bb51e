/**
 * Image decoding: every PNG flavour to RGB with the processor's conversion rules, JPEG, clear
 * errors for bad input and forged sizes, and a fuzz test of random mutations.
 */
import { encode as encodePng } from 'fast-png';
import jpeg from 'jpeg-js';
import { describe, expect, it } from 'vitest';
import { decodeImage, ImageDecodeError, type RgbImage } from '../../../src/encoders/vision/image_decode.js';
import { goldenBytes } from './helpers.js';

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32;
}

const W = 7, H = 5, N = W * H;

function samples(count: number, max: number, seed: number): number[] {
  const r = rng(seed);
  return Array.from({ length: count }, () => Math.floor(r() * (max + 1)));
}

function expectRgb(img: RgbImage, want: (i: number) => [number, number, number]): void {
  expect([img.width, img.height, img.data.length]).toEqual([W, H, N * 3]);
  for (let i = 0; i < N; i++) expect([img.data[3 * i], img.data[3 * i + 1], img.data[3 * i + 2]]).toEqual(want(i));
}

/** Packs one row-major sample per pixel at `depth` bits, rows byte-aligned. */
function pack(vals: number[], depth: number): Uint8Array {
  const rowBytes = Math.ceil((W * depth) / 8);
  const out = new Uint8Array(rowBytes * H);
  for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) {
    const bit = x * depth;
    out[y * rowBytes + (bit >> 3)] |= vals[y * W + x] << (8 - depth - (bit & 7));
  }
  return out;
}

describe('PNG decoding to RGB', () => {
  it('RGB 8-bit, and Adam7 interlaced', () => {
    const v = samples(N * 3, 255, 1);
    for (const interlace of ['null', 'Adam7'] as const) {
      const png = encodePng({ width: W, height: H, channels: 3, depth: 8, data: Uint8Array.from(v) }, { interlace });
      expectRgb(decodeImage(png), (i) => [v[3 * i], v[3 * i + 1], v[3 * i + 2]]);
    }
  });
  it('RGBA 8-bit: alpha dropped, no compositing', () => {
    const v = samples(N * 4, 255, 2);
    const png = encodePng({ width: W, height: H, channels: 4, depth: 8, data: Uint8Array.from(v) });
    expectRgb(decodeImage(png), (i) => [v[4 * i], v[4 * i + 1], v[4 * i + 2]]);
  });
  it('RGB and RGBA 16-bit: high byte', () => {
    for (const ch of [3, 4]) {
      const v = samples(N * ch, 65535, 3 + ch);
      const png = encodePng({ width: W, height: H, channels: ch, depth: 16, data: Uint16Array.from(v) });
      expectRgb(decodeImage(png), (i) => [v[ch * i] >> 8, v[ch * i + 1] >> 8, v[ch * i + 2] >> 8]);
    }
  });
  it('grey 8/16-bit and grey+alpha: R = G = B', () => {
    const g = samples(N, 255, 4);
    expectRgb(decodeImage(encodePng({ width: W, height: H, channels: 1, depth: 8, data: Uint8Array.from(g) })), (i) => [g[i], g[i], g[i]]);
    const g16 = samples(N, 65535, 5);
    expectRgb(decodeImage(encodePng({ width: W, height: H, channels: 1, depth: 16, data: Uint16Array.from(g16) })), (i) => [g16[i] >> 8, g16[i] >> 8, g16[i] >> 8]);
    const ga = samples(N * 2, 255, 6);
    expectRgb(decodeImage(encodePng({ width: W, height: H, channels: 2, depth: 8, data: Uint8Array.from(ga) })), (i) => [ga[2 * i], ga[2 * i], ga[2 * i]]);
  });
  it('grey 1/2/4-bit: scaled to 0..255', () => {
    for (const depth of [1, 2, 4] as const) {
      const g = samples(N, (1 << depth) - 1, 10 + depth);
      const s = 255 / ((1 << depth) - 1);
      expectRgb(decodeImage(encodePng({ width: W, height: H, channels: 1, depth, data: pack(g, depth) })), (i) => [g[i] * s, g[i] * s, g[i] * s]);
      // Sub-byte Adam7 is refused clearly rather than decoded wrongly.
      const interlaced = encodePng({ width: W, height: H, channels: 1, depth, data: pack(g, depth) }, { interlace: 'Adam7' });
      expect(() => decodeImage(interlaced)).toThrow(/interlaced \(Adam7\) with bit depth/);
    }
  });
  it('palette 8-bit and 4-bit (with transparency): looked up, alpha dropped', () => {
    const pal = Array.from({ length: 16 }, (_, k) => [k * 13, 255 - k * 7, (k * 37) % 256]);
    const idx = samples(N, 15, 20);
    expectRgb(decodeImage(encodePng({ width: W, height: H, channels: 1, depth: 8, data: Uint8Array.from(idx), palette: pal })), (i) => pal[idx[i]] as [number, number, number]);
    const palA = pal.map((c, k) => [...c, k * 16]);
    expectRgb(decodeImage(encodePng({ width: W, height: H, channels: 1, depth: 4, data: pack(idx, 4), palette: palA })), (i) => pal[idx[i]] as [number, number, number]);
  });
});

describe('JPEG decoding', () => {
  it('decodes a baseline JPEG to RGB close to the source', () => {
    const w = 32, h = 24;
    const rgba = new Uint8Array(w * h * 4);
    for (let i = 0; i < w * h; i++) rgba.set([(i % w) * 8, Math.floor(i / w) * 10, 128, 255], 4 * i);
    const jpg = jpeg.encode({ width: w, height: h, data: rgba }, 100).data;
    const img = decodeImage(new Uint8Array(jpg));
    expect([img.width, img.height, img.data.length]).toEqual([w, h, w * h * 3]);
    let maxErr = 0;
    for (let i = 0; i < w * h; i++) for (let c = 0; c < 3; c++) maxErr = Math.max(maxErr, Math.abs(img.data[3 * i + c] - rgba[4 * i + c]));
    expect(maxErr).toBeLessThan(12);
  });
});

describe('errors', () => {
  const png = encodePng({ width: W, height: H, channels: 3, depth: 8, data: new Uint8Array(N * 3) });
  it('unknown format, empty, truncated', () => {
    expect(() => decodeImage(new Uint8Array(0))).toThrow(/not a PNG or JPEG/);
    expect(() => decodeImage(new TextEncoder().encode('GIF89a....'))).toThrow(/not a PNG or JPEG/);
    expect(() => decodeImage(png.subarray(0, 20))).toThrow(ImageDecodeError);
    expect(() => decodeImage(png.subarray(0, png.length - 20))).toThrow(ImageDecodeError);
  });
  it('forged PNG size is refused before decoding', () => {
    const forged = png.slice();
    new DataView(forged.buffer).setUint32(16, 100000);
    new DataView(forged.buffer).setUint32(20, 100000);
    expect(() => decodeImage(forged)).toThrow(/exceeds the limit/);
    expect(() => decodeImage(png, { maxPixels: 10 })).toThrow(/exceeds the limit/);
  });
  it('a deflate bomb (IDAT inflating far past the header size) is refused', () => {
    // A 4×4 header with 50 MB of zeros as image data (a valid zlib stream of ~50 KB).
    const big = encodePng({ width: 2000, height: 2000, channels: 3, depth: 8, data: new Uint8Array(2000 * 2000 * 3) });
    const bomb = big.slice();
    new DataView(bomb.buffer).setUint32(16, 4);
    new DataView(bomb.buffer).setUint32(20, 4);
    expect(big.length).toBeLessThan(200_000);
    expect(() => decodeImage(bomb)).toThrow(/inflates past/);
  });
  it('forged JPEG size is refused before decoding', () => {
    const jpg = new Uint8Array(jpeg.encode({ width: 16, height: 16, data: new Uint8Array(16 * 16 * 4) }, 90).data);
    // Find SOF0 (FFC0) and set height/width to 65535.
    let p = 2;
    while (!(jpg[p] === 0xff && jpg[p + 1] === 0xc0)) p += 2 + ((jpg[p + 2] << 8) | jpg[p + 3]);
    jpg.set([0xff, 0xff, 0xff, 0xff], p + 5);
    expect(() => decodeImage(jpg)).toThrow(/exceeds the limit/);
  });
});

describe('decoder fuzz: random mutations decode or fail with ImageDecodeError', () => {
  const seeds: [string, Uint8Array][] = [
    ['png rgb', goldenBytes('preprocess/rgb_64x48.png')],
    ['png palette', encodePng({ width: 9, height: 6, channels: 1, depth: 4, data: new Uint8Array(Math.ceil(9 / 2) * 6).fill(0x3c), palette: [[1, 2, 3], [4, 5, 6], [7, 8, 9], [10, 11, 12], [13, 14, 15]] })],
    ['png 16-bit grey+alpha interlaced', encodePng({ width: 11, height: 7, channels: 2, depth: 16, data: Uint16Array.from({ length: 154 }, (_, i) => i * 400) }, { interlace: 'Adam7' })],
    ['jpeg', new Uint8Array(jpeg.encode({ width: 40, height: 24, data: Uint8Array.from({ length: 40 * 24 * 4 }, (_, i) => (i * 37) & 255) }, 80).data)],
  ];
  const ITER = 250;
  for (const [name, seed] of seeds) {
    it(`${name}: ${ITER} mutants`, () => {
      const r = rng(name.length * 7919);
      let ok = 0, failed = 0, slowest = 0;
      for (let it = 0; it < ITER; it++) {
        const m = mutate(seed, r);
        const t0 = performance.now();
        try {
          const img = decodeImage(m, { maxPixels: 1 << 20 });
          expect(img.data.length).toBe(img.width * img.height * 3);
          expect(img.width * img.height).toBeLessThanOrEqual(1 << 20);
          ok++;
        } catch (e) {
          if (!(e instanceof ImageDecodeError)) throw new Error(`mutant ${it} threw a non-ImageDecodeError: ${String(e)}`);
          expect(e.message.length).toBeGreaterThan(10);
          failed++;
        }
        slowest = Math.max(slowest, performance.now() - t0);
      }
      expect(ok + failed).toBe(ITER);
      expect(slowest).toBeLessThan(2000);
    }, 60_000);
  }
});

/** 1–4 random edits: byte flips, random bytes, truncation, duplication, big-endian size fields set to large values. */
function mutate(src: Uint8Array, r: () => number): Uint8Array {
  let b = src.slice();
  const edits = 1 + Math.floor(r() * 4);
  for (let e = 0; e < edits; e++) {
    const p = Math.floor(r() * b.length);
    switch (Math.floor(r() * 6)) {
      case 0: b[p] ^= 1 << Math.floor(r() * 8); break;
      case 1: b[p] = Math.floor(r() * 256); break;
      case 2: b = b.slice(0, Math.max(1, p)); break;
      case 3: { const q = Math.floor(r() * b.length); const n = new Uint8Array(b.length + 16); n.set(b.subarray(0, q)); n.set(b.subarray(q, q + 16), q); n.set(b.subarray(q), q + 16); b = n.subarray(0, b.length + Math.min(16, b.length - q)); break; }
      case 4: if (p + 2 <= b.length) { b[p] = 0xff; b[p + 1] = 0xff; } break;
      default: { const n = new Uint8Array(b.length + 8); n.set(b.subarray(0, p)); for (let k = 0; k < 8; k++) n[p + k] = Math.floor(r() * 256); n.set(b.subarray(p), p + 8); b = n; }
    }
  }
  return b;
}
