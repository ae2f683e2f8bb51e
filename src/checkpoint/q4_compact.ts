/**
 * Packed format v2.1 int4 (docs/packed-format.md): the `.q4` and `.q4r` blobs with **log-coded
 * u8 group scales** — one f32 base per row (its largest group scale) and one byte k per group,
 * scale = base · 2^(−k/32) (k = 255: the group is all zero). 4.25 bits per weight instead of
 * 4.5 with f16 scales (llama.cpp's K-quants shrink their sub-block scales the same way); the
 * scale is rounded *up* to the next code and the group re-quantized with it, so no value clips
 * and the error grows by ~1 % of itself (step ≤ 2^(1/32) = 1.022× the exact absmax/7).
 *
 * `.q4` version 3 stores each 4-row block as the WASM int4 kernel holds it in memory
 * (assembly/matmul_q4.ts: per group 64 code bytes then the 4 rows' scales), with the scales as
 * 4 bytes instead of 16 and the block's 4 bases in front:
 *
 *   block = [4 × f32 base][G × (64 code bytes, 4 u8 scale codes)]     16 + 68·G bytes
 *
 * so loading is one read of the whole blob into the weight's kernel memory and one forward
 * pass that widens each group's 4 scale bytes to 4 f32 in place (`expandQ4Blocks`).
 */
import { Q4Matrix, Q4_GROUP, Q4_ROWS } from '../kernels/q4.js';
import { CheckpointError } from './safetensors.js';

/** Scale code of an all-zero group. */
const ZERO = 255;

/** 2^(−k/32) as f32, k = 0..254; [255] = 0. */
export const LOG_SCALE: Float32Array = (() => {
  const t = new Float32Array(256);
  for (let k = 0; k < ZERO; k++) t[k] = Math.fround(2 ** (-k / 32));
  return t;
})();

/** The scale a code stands for: f32(base · 2^(−k/32)), the same rounding in every reader. */
export const logScale = (base: number, k: number): number => Math.fround(base * LOG_SCALE[k]);

/** The largest code whose scale is still ≥ s (so w / scale never exceeds 7), for s ≤ base. */
export function scaleCode(s: number, base: number): number {
  if (!(s > 0) || !(base > 0)) return ZERO;
  let k = Math.min(ZERO - 1, Math.max(0, Math.floor(-32 * Math.log2(s / base))));
  while (k > 0 && logScale(base, k) < s) k--;
  return k;
}

/** Bytes of one 4-row block of a v3 `.q4` body. */
export const q4BlockBytes = (G: number): number => 16 + 68 * G;

/** Bytes of a v3 `.q4` body for [outDim, inDim] (without the 32-byte header). */
export const q4CompactBodyBytes = (outDim: number, inDim: number): number => Math.ceil(outDim / Q4_ROWS) * q4BlockBytes(Math.ceil(inDim / Q4_GROUP));

/** Group scales absmax/7 of `n` values of one row, and the row's base (their maximum). */
function groupScales(w: Float32Array, at: number, cols: number, G: number, out: Float32Array): number {
  let base = 0;
  for (let g = 0; g < G; g++) {
    const i0 = at + g * Q4_GROUP,
      n = Math.min(Q4_GROUP, cols - g * Q4_GROUP);
    let amax = 0;
    for (let j = 0; j < n; j++) amax = Math.max(amax, Math.abs(w[i0 + j]));
    out[g] = Math.fround(amax / 7);
    base = Math.max(base, out[g]);
  }
  return base;
}

/** Codes of one group with scale s into 16 bytes at `p` (code j + 8 low nibble, j + 16 + 8 high). */
function packGroup(w: Float32Array, i0: number, n: number, s: number, out: Uint8Array, p: number): void {
  const inv = s > 0 ? 1 / s : 0;
  const q = (j: number) => (j < n ? Math.max(-7, Math.min(7, Math.round(w[i0 + j] * inv))) : 0) + 8;
  for (let j = 0; j < 16; j++) out[p + j] = q(j) | (q(j + 16) << 4);
}

/**
 * Quantizes a row-major f32 [rows, cols] matrix (rows a multiple of 4, or the matrix's last
 * rows) into v3 `.q4` blocks. Throws if a value is not finite.
 */
export function quantizeQ4Blocks(w: Float32Array, rows: number, cols: number, where: string): Uint8Array {
  const G = Math.ceil(cols / Q4_GROUP),
    B = Math.ceil(rows / Q4_ROWS),
    bb = q4BlockBytes(G);
  const out = new Uint8Array(B * bb);
  const dv = new DataView(out.buffer);
  const s = new Float32Array(G);
  for (let b = 0; b < B; b++) {
    const at = b * bb;
    for (let r = 0; r < Q4_ROWS; r++) {
      const row = b * Q4_ROWS + r;
      if (row >= rows) {
        // padding row: base 0, every group zero
        for (let g = 0; g < G; g++) {
          out.fill(0x88, at + 16 + g * 68 + r * 16, at + 16 + g * 68 + r * 16 + 16);
          out[at + 16 + g * 68 + 64 + r] = ZERO;
        }
        continue;
      }
      const base = groupScales(w, row * cols, cols, G, s);
      if (!Number.isFinite(base)) throw new CheckpointError(`${where}: row ${row} has a value that is not finite`);
      dv.setFloat32(at + r * 4, base, true);
      for (let g = 0; g < G; g++) {
        const k = scaleCode(s[g], base),
          p = at + 16 + g * 68;
        out[p + 64 + r] = k;
        packGroup(w, row * cols + g * Q4_GROUP, Math.min(Q4_GROUP, cols - g * Q4_GROUP), k === ZERO ? 0 : logScale(base, k), out, p + r * 16);
      }
    }
  }
  return out;
}

/**
 * A Q4Matrix (an older `.q4` blob, decoded) as v3 blocks with the same codes: each scale s
 * becomes the next code up, s' ∈ [s, 2^(1/32)·s], and every code q stays q (|q|·s/s' ≥ 6.85
 * for |q| = 7, so rounding again would give q back).
 */
export function q4MatrixToBlocks(q: Q4Matrix): Uint8Array {
  const G = q.groups,
    B = q.blocks,
    bb = q4BlockBytes(G);
  const out = new Uint8Array(B * bb);
  const dv = new DataView(out.buffer);
  for (let b = 0; b < B; b++) {
    for (let r = 0; r < Q4_ROWS; r++) {
      let base = 0;
      for (let g = 0; g < G; g++) base = Math.max(base, q.scales[(b * G + g) * 4 + r]);
      dv.setFloat32(b * bb + r * 4, base, true);
      for (let g = 0; g < G; g++) out[b * bb + 16 + g * 68 + 64 + r] = scaleCode(q.scales[(b * G + g) * 4 + r], base);
    }
    for (let g = 0; g < G; g++) {
      const p = b * bb + 16 + g * 68,
        i = b * G + g;
      out.set(q.nibbles.subarray(i * 64, (i + 1) * 64), p);
      for (let r = 0; r < Q4_ROWS; r++) {
        // A group below 2^(-254/32) of its row's largest scale gets the smallest code: re-round its codes.
        const s = q.scales[i * 4 + r],
          k = out[p + 64 + r],
          s2 = k === ZERO ? 0 : logScale(dv.getFloat32(b * bb + r * 4, true), k);
        if (s2 <= s * 2 ** (1 / 32)) continue;
        const c = p + r * 16,
          f = s / s2;
        const re = (v: number) => Math.round((v - 8) * f) + 8;
        for (let j = 0; j < 16; j++) out[c + j] = re(out[c + j] & 15) | (re(out[c + j] >> 4) << 4);
      }
    }
  }
  return out;
}

/** Reads and checks the 4 bases of a block (f32 at `at` in `bytes`), naming the row on failure. */
function blockBases(dv: DataView, at: number, b: number, where: string): [number, number, number, number] {
  const v: number[] = [];
  for (let r = 0; r < 4; r++) {
    const x = dv.getFloat32(at + r * 4, true);
    if (!Number.isFinite(x) || x < 0) throw new CheckpointError(`${where}: scale base of row ${b * 4 + r} is ${x} (must be finite and ≥ 0)`);
    v.push(x);
  }
  return v as [number, number, number, number];
}

/**
 * Widens a v3 `.q4` body that sits at byte `srcAt` of `region` into the kernel layout at byte 0
 * of `region` ([B][G][16 code words, 4 f32 scales]), in place: the body must end where the
 * widened matrix ends (srcAt = B·G·80 − body bytes), then every write lands at or before the
 * bytes it replaces and each group is read before it is overwritten. `from` > 0 resumes at that
 * block (blocks before it already widened, e.g. by Kernels' Q4Reservation.expandCompact).
 */
export function expandQ4Blocks(region: Uint8Array, srcAt: number, B: number, G: number, where: string, from = 0): void {
  if (region.byteOffset % 4 !== 0 || srcAt % 4 !== 0) throw new Error('expandQ4Blocks: region and body must be 4-byte aligned');
  const u32 = new Uint32Array(region.buffer, region.byteOffset, (B * G * 80) >> 2);
  const f32 = new Float32Array(region.buffer, region.byteOffset, (B * G * 80) >> 2);
  const dv = new DataView(region.buffer, region.byteOffset, region.byteLength);
  const T = LOG_SCALE;
  let s = (srcAt + from * q4BlockBytes(G)) >> 2,
    d = from * G * 20;
  for (let b = from; b < B; b++) {
    const [b0, b1, b2, b3] = blockBases(dv, s * 4, b, where);
    s += 4;
    for (let g = 0; g < G; g++) {
      const k = u32[s + 16];
      for (let j = 0; j < 16; j++) u32[d + j] = u32[s + j];
      f32[d + 16] = b0 * T[k & 255];
      f32[d + 17] = b1 * T[(k >>> 8) & 255];
      f32[d + 18] = b2 * T[(k >>> 16) & 255];
      f32[d + 19] = b3 * T[k >>> 24];
      s += 17;
      d += 20;
    }
  }
}

/** A v3 `.q4` body as a Q4Matrix (nibbles and f32 scales), for kernels without the in-place path. */
export function decodeQ4Blocks(body: Uint8Array, outDim: number, inDim: number, where: string): Q4Matrix {
  const G = Math.ceil(inDim / Q4_GROUP),
    B = Math.ceil(outDim / Q4_ROWS),
    bb = q4BlockBytes(G);
  const nibbles = new Uint8Array(B * G * 64),
    scales = new Float32Array(B * G * 4);
  const dv = new DataView(body.buffer, body.byteOffset, body.byteLength);
  for (let b = 0; b < B; b++) {
    const bases = blockBases(dv, b * bb, b, where);
    for (let g = 0; g < G; g++) {
      const p = b * bb + 16 + g * 68,
        i = b * G + g;
      nibbles.set(body.subarray(p, p + 64), i * 64);
      for (let r = 0; r < 4; r++) scales[i * 4 + r] = logScale(bases[r], body[p + 64 + r]);
    }
  }
  return new Q4Matrix(outDim, inDim, nibbles, scales);
}

/** Row r (0..3) of one v3 block (`block` = its 16 + 68·G bytes) dequantized into out[0, cols). */
export function dequantQ4CompactBlockRow(block: Uint8Array, G: number, cols: number, r: number, out: Float32Array, where: string, row: number): void {
  const dv = new DataView(block.buffer, block.byteOffset, block.byteLength);
  const base = blockBases(dv, 0, row >> 2, where)[r];
  for (let g = 0; g < G; g++) {
    const p = 16 + g * 68,
      s = logScale(base, block[p + 64 + r]),
      c = p + r * 16;
    const o = g * Q4_GROUP,
      n = Math.min(Q4_GROUP, cols - o);
    for (let j = 0; j < 16 && j < n; j++) out[o + j] = s * ((block[c + j] & 15) - 8);
    for (let j = 16; j < n; j++) out[o + j] = s * ((block[c + j - 16] >> 4) - 8);
  }
}

// ---- .q4r version 2: [f32 base][G scale codes][G × 16 code bytes] per row ----

export const q4rCompactRowBytes = (cols: number): number => {
  const G = Math.ceil(cols / Q4_GROUP);
  return 4 + G + 16 * G;
};

/** Rows of a row-major f32 [rows, cols] table as v2 `.q4r` row records. */
export function quantizeQ4RowsCompact(w: Float32Array, rows: number, cols: number, where: string): Uint8Array {
  const G = Math.ceil(cols / Q4_GROUP),
    rb = q4rCompactRowBytes(cols);
  const out = new Uint8Array(rows * rb);
  const dv = new DataView(out.buffer);
  const s = new Float32Array(G);
  for (let r = 0; r < rows; r++) {
    const at = r * rb,
      base = groupScales(w, r * cols, cols, G, s);
    if (!Number.isFinite(base)) throw new CheckpointError(`${where}: row ${r} has a value that is not finite`);
    dv.setFloat32(at, base, true);
    for (let g = 0; g < G; g++) {
      const k = scaleCode(s[g], base);
      out[at + 4 + g] = k;
      packGroup(w, r * cols + g * Q4_GROUP, Math.min(Q4_GROUP, cols - g * Q4_GROUP), k === ZERO ? 0 : logScale(base, k), out, at + 4 + G + g * 16);
    }
  }
  return out;
}

/** One v2 `.q4r` row record dequantized into out[0, cols). */
export function dequantQ4RowCompact(rec: Uint8Array, cols: number, out: Float32Array, where: string, row: number): void {
  const G = Math.ceil(cols / Q4_GROUP);
  const base = new DataView(rec.buffer, rec.byteOffset, 4).getFloat32(0, true);
  if (!Number.isFinite(base) || base < 0) throw new CheckpointError(`${where}: scale base of row ${row} is ${base} (must be finite and ≥ 0)`);
  for (let g = 0; g < G; g++) {
    const s = logScale(base, rec[4 + g]),
      c = 4 + G + g * 16,
      o = g * Q4_GROUP,
      n = Math.min(Q4_GROUP, cols - o);
    for (let j = 0; j < 16 && j < n; j++) out[o + j] = s * ((rec[c + j] & 15) - 8);
    for (let j = 16; j < n; j++) out[o + j] = s * ((rec[c + j - 16] >> 4) - 8);
  }
}
