/**
 * Packed v2.1 int4 blobs (src/checkpoint/q4_compact.ts): log-coded u8 group scales, `.q4`
 * version 3 in the kernel's group order, `.q4r` version 2 — the error bound of every value,
 * the in-place widening into the kernel layout, old codes kept on conversion, and bad input.
 */
import { describe, expect, it } from 'vitest';
import { Q4Matrix } from '../../src/kernels/q4.js';
import { decodeQ4, parseQ4Header, parseQ4RHeader, q4Header, q4rHeader, dequantQ4Row } from '../../src/checkpoint/packed_format.js';
import {
  decodeQ4Blocks,
  expandQ4Blocks,
  q4BlockBytes,
  q4CompactBodyBytes,
  q4MatrixToBlocks,
  q4rCompactRowBytes,
  quantizeQ4Blocks,
  quantizeQ4RowsCompact,
  dequantQ4CompactBlockRow,
} from '../../src/checkpoint/q4_compact.js';

/** Seeded values with a spread of group magnitudes (incl. an all-zero group and tiny ones). */
function weights(rows: number, cols: number, seed: number): Float32Array {
  const w = new Float32Array(rows * cols);
  let s = seed;
  for (let i = 0; i < w.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    const g = Math.floor((i % cols) / 32);
    w[i] = (s / 2 ** 32 - 0.5) * (g === 1 ? 0 : g === 2 ? 1e-4 : 1 + (g % 3));
  }
  return w;
}

/** Every value within half its group's scale, the scale in [absmax/7, 2^(1/32)·absmax/7]. */
function checkBounds(w: Float32Array, rows: number, cols: number, value: (r: number, c: number) => number, scale: (r: number, c: number) => number): void {
  for (let r = 0; r < rows; r++) {
    for (let g = 0; g < cols; g += 32) {
      let a = 0;
      for (let c = g; c < Math.min(cols, g + 32); c++) a = Math.max(a, Math.abs(w[r * cols + c]));
      const s = scale(r, g),
        lo = Math.fround(a / 7);
      if (a === 0) expect(s).toBe(0);
      else {
        expect(s).toBeGreaterThanOrEqual(lo);
        // a group far below its row's largest (here 1e-4 of it) gets the smallest code, 2^(-254/32) of the base
        if (a > 1e-3) expect(s).toBeLessThanOrEqual(lo * 2 ** (1 / 32) * (1 + 1e-6));
      }
      for (let c = g; c < Math.min(cols, g + 32); c++) expect(Math.abs(value(r, c) - w[r * cols + c])).toBeLessThanOrEqual(s * 0.5 * (1 + 1e-6));
    }
  }
}

describe('.q4 version 3 (log-coded scales, kernel group order)', () => {
  for (const [rows, cols] of [
    [8, 96],
    [7, 70],
    [1, 32],
  ] as const) {
    it(`[${rows}, ${cols}]: every value within half a scale; padding rows and columns are zero`, () => {
      const w = weights(rows, cols, rows * 100 + cols);
      const body = quantizeQ4Blocks(w, rows, cols, 'test');
      expect(body.length).toBe(q4CompactBodyBytes(rows, cols));
      const blob = new Uint8Array(32 + body.length);
      blob.set(q4Header(rows, cols, 'u8log'));
      blob.set(body, 32);
      const q = decodeQ4(blob, 'test');
      const d = q.dequantize();
      checkBounds(
        w,
        rows,
        cols,
        (r, c) => d[r * cols + c],
        (r, c) => q.scale(r, c),
      );
      const G = Math.ceil(cols / 32),
        B = Math.ceil(rows / 4);
      for (let o = rows; o < B * 4; o++) for (let g = 0; g < G; g++) expect(q.scales[(Math.floor(o / 4) * G + g) * 4 + (o & 3)]).toBe(0);
      // a row read from its block alone (the embedding lookup) is the same row
      const row = new Float32Array(cols);
      for (let r = 0; r < rows; r++) {
        const b = r >> 2,
          bb = q4BlockBytes(G);
        dequantQ4CompactBlockRow(body.subarray(b * bb, (b + 1) * bb), G, cols, r & 3, row, 'test', r);
        expect(Array.from(row)).toEqual(Array.from(d.subarray(r * cols, (r + 1) * cols)));
      }
    });
  }

  it('widens in place into exactly the layout the WASM kernel holds (codes, then 4 f32 scales per group)', () => {
    const rows = 12,
      cols = 160,
      w = weights(rows, cols, 5);
    const body = quantizeQ4Blocks(w, rows, cols, 'test');
    const q = decodeQ4Blocks(body, rows, cols, 'test');
    const n = q.blocks * q.groups;
    const region = new Uint8Array(n * 80 + 64).subarray(0, n * 80); // a view into a larger buffer, like kernel memory
    region.set(body, n * 80 - body.length);
    expandQ4Blocks(region, n * 80 - body.length, q.blocks, q.groups, 'test');
    const want = new Uint8Array(n * 80);
    const sc = new Uint8Array(q.scales.buffer);
    for (let i = 0; i < n; i++) {
      want.set(q.nibbles.subarray(i * 64, i * 64 + 64), i * 80);
      want.set(sc.subarray(i * 16, i * 16 + 16), i * 80 + 64);
    }
    expect(Buffer.from(region).equals(Buffer.from(want))).toBe(true);
  });

  it('an older Q4Matrix converts keeping its codes, each scale rounded up by at most 2^(1/32)', () => {
    const rows = 9,
      cols = 64,
      w = weights(rows, cols, 9).map((x) => x + 0.01); // no all-zero group
    const old = Q4Matrix.quantize(w, rows, cols);
    const q = decodeQ4Blocks(q4MatrixToBlocks(old), rows, cols, 'test');
    for (let i = 0; i < old.scales.length; i++) {
      if (old.scales[i] < 1e-3) continue; // the tiny groups (1e-4 of their row) re-round their codes
      const g = Math.floor(i / 4) % q.groups,
        o = Math.floor(i / (4 * q.groups)) * 4 + (i % 4);
      for (let j = 0; j < 32; j++) if (o < rows && g * 32 + j < cols) expect(q.code(o, g * 32 + j)).toBe(old.code(o, g * 32 + j));
      expect(q.scales[i]).toBeGreaterThanOrEqual(old.scales[i]);
      expect(q.scales[i]).toBeLessThanOrEqual(old.scales[i] * 2 ** (1 / 32) * (1 + 1e-6));
    }
  });

  it('bad input: a non-finite or negative scale base, a truncated blob, a wrong scale code (fuzz: every header cut)', () => {
    const rows = 8,
      cols = 64,
      body = quantizeQ4Blocks(weights(rows, cols, 3), rows, cols, 'test');
    const blob = new Uint8Array(32 + body.length);
    blob.set(q4Header(rows, cols, 'u8log'));
    blob.set(body, 32);
    for (const bad of [NaN, Infinity, -1]) {
      const b = blob.slice();
      new DataView(b.buffer).setFloat32(32 + q4BlockBytes(2) + 8, bad, true); // block 1, row 2 = row 6
      expect(() => decodeQ4(b, "F: tensor 'x.q4'")).toThrow(new RegExp(`F: tensor 'x\\.q4': scale base of row 6 is ${bad} \\(must be finite and ≥ 0\\)`));
      const region = new Uint8Array(2 * 2 * 80);
      region.set(b.subarray(32), region.length - body.length);
      expect(() => expandQ4Blocks(region, region.length - body.length, 2, 2, "F: tensor 'x.q4'")).toThrow(/scale base of row 6/);
    }
    expect(() => decodeQ4(blob.subarray(0, blob.length - 1), 'W')).toThrow(
      /W: packed int4 tensor \[8, 64\] must be \d+ bytes, it has \d+ \(truncated or mis-sized\)/,
    );
    const wrong = blob.slice();
    wrong[24] = 1; // version 3 with f16 scale code
    expect(() => parseQ4Header(wrong, wrong.length, 'W')).toThrow(/W: unknown scale dtype code 1 for blob version 3/);
    const future = blob.slice();
    future[4] = 4;
    expect(() => parseQ4Header(future, future.length, 'W')).toThrow(/W: packed int4 blob version 4 is not supported/);
    for (let cut = 0; cut < 32; cut += 3) expect(() => decodeQ4(blob.subarray(0, cut), 'W')).toThrow(/W: truncated packed int4 tensor/);
  });
});

describe('.q4r version 2 (log-coded scales, one row per record)', () => {
  it('every value within half a scale; a NaN base is refused naming the row', () => {
    const rows = 5,
      cols = 200,
      w = weights(rows, cols, 11);
    const recs = quantizeQ4RowsCompact(w, rows, cols, 'test');
    const rb = q4rCompactRowBytes(cols);
    expect(recs.length).toBe(rows * rb);
    const blob = new Uint8Array(32 + recs.length);
    blob.set(q4rHeader(rows, cols, 'u8log'));
    blob.set(recs, 32);
    const info = parseQ4RHeader(blob, blob.length, 'test');
    expect(info.rowBytes).toBe(rb);
    const d = new Float32Array(rows * cols);
    for (let r = 0; r < rows; r++) dequantQ4Row(recs.subarray(r * rb, (r + 1) * rb), info, d.subarray(r * cols, (r + 1) * cols), 'test', r);
    // the documented record: f32 base, then one byte k per group, scale = base·2^(−k/32) (255: zero)
    const scale = (r: number, c: number) => {
      const k = recs[r * rb + 4 + c / 32],
        base = new DataView(recs.buffer, r * rb, 4).getFloat32(0, true);
      return k === 255 ? 0 : Math.fround(base * Math.fround(2 ** (-k / 32)));
    };
    checkBounds(w, rows, cols, (r, c) => d[r * cols + c], scale);
    const bad = recs.slice(rb * 3, rb * 4);
    new DataView(bad.buffer).setFloat32(0, NaN, true);
    expect(() => dequantQ4Row(bad, info, new Float32Array(cols), "F: tensor 'ple.q4r'", 3)).toThrow(/F: tensor 'ple\.q4r': scale base of row 3 is NaN/);
    expect(() => parseQ4RHeader(blob.subarray(0, blob.length - 2), blob.length - 2, 'W')).toThrow(/truncated or mis-sized/);
  });
});
