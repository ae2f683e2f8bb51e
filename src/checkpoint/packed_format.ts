/**
 * The packed checkpoint format, versions 1 and 2 (docs/packed-format.md): the version manifest
 * in config.json, and the two int4 blob layouts — `.q4` (Q4G1: 4-row interleaved, what the int4
 * GEMV streams) and `.q4r` (Q4R1: one row after another, for tables read a row at a time).
 * Every reader checks sizes exactly and refuses non-finite scales, naming file and tensor.
 */
import { Q4Matrix, Q4_GROUP, Q4_ROWS } from '../kernels/q4.js';
import { f16ToF32 } from './dtype.js';
import { CheckpointError } from './safetensors.js';
import { decodeQ4Blocks, dequantQ4RowCompact, q4CompactBodyBytes, q4rCompactRowBytes } from './q4_compact.js';

export const PACKED_METHOD = 'gemma3n-ts-packed';
/** What the first `gemma3n quantize` wrote (no format_version): v1. */
export const PACKED_METHOD_V1 = 'gemma3n-ts-q4';
export const PACKED_VERSION = 2;
/**
 * Minor version of what this build writes: 1 = the int4 blobs with log-coded u8 scales
 * (`.q4` blob version 3, `.q4r` version 2; src/checkpoint/q4_compact.ts). Readers take any
 * minor of version 2 — each blob says its own layout — so 2.0 folders keep loading.
 */
export const PACKED_MINOR = 1;
export const Q4_SUFFIX = '.q4';
export const Q4R_SUFFIX = '.q4r';

const Q4G_MAGIC = 0x31473451; // 'Q4G1'
const Q4R_MAGIC = 0x31523451; // 'Q4R1'
export const BLOB_HEADER = 32;

export type ScaleDtype = 'f32' | 'f16';
const SCALE_CODE: Record<ScaleDtype, number> = { f32: 0, f16: 1 };
const scaleBytes = (s: ScaleDtype) => (s === 'f16' ? 2 : 4);

/**
 * The packed format version a config.json declares: 0 (not packed), 1 or 2. An unknown
 * version is an error naming the file, so a newer folder is never misread.
 */
export function packedVersionOf(raw: Record<string, unknown>, where: string): 0 | 1 | 2 {
  const q = raw.quantization_config as Record<string, unknown> | undefined;
  if (q === undefined || q === null || typeof q !== 'object') return 0;
  if (q.quant_method === PACKED_METHOD_V1) return 1;
  if (q.quant_method !== PACKED_METHOD) return 0; // someone else's quantization: the tensors decide
  const v = q.format_version;
  if (v === 1 || v === 2) return v;
  throw new CheckpointError(
    `${where}: packed format version ${JSON.stringify(v)} is not supported (this build reads 1 and 2); re-run gemma3n quantize on the original checkpoint`,
  );
}

/** The quantization_config a v2 folder's config.json carries. */
export function packedManifest(textOnly: boolean, towers: string): Record<string, unknown> {
  return {
    quant_method: PACKED_METHOD,
    format_version: PACKED_VERSION,
    format_minor: PACKED_MINOR,
    bits: 4,
    group_size: Q4_GROUP,
    scale_dtype: 'u8log',
    text_only: textOnly,
    towers,
  };
}

// ---- f16 ----

const f32Box = new Float32Array(1),
  u32Box = new Uint32Array(f32Box.buffer);

/** IEEE half bits of x, round to nearest even (overflow → ±Infinity, so callers can detect it). */
export function f32ToF16Bits(x: number): number {
  f32Box[0] = x;
  const u = u32Box[0];
  const sign = (u >>> 16) & 0x8000;
  const exp = (u >>> 23) & 0xff,
    man = u & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (man ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign; // below half the smallest subnormal
    const m = man | 0x800000,
      shift = 14 - e;
    let h = m >>> shift;
    const rem = m & ((1 << shift) - 1),
      half = 1 << (shift - 1);
    if (rem > half || (rem === half && h & 1)) h++;
    return sign | h;
  }
  let h = (e << 10) | (man >>> 13);
  const rem = man & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && h & 1)) h++; // may carry into the exponent: still right
  return sign | h;
}

const SMALLEST_F16 = 1; // bits of 2^-24

/**
 * Scales as f16 bits. A non-zero scale that would round to 0 becomes the smallest subnormal
 * (its group's values are below 2e-7: the extra error is smaller still); a scale above the f16
 * range returns null (the caller keeps f32).
 */
export function scalesToF16(scales: Float32Array): Uint16Array | null {
  const out = new Uint16Array(scales.length);
  for (let i = 0; i < scales.length; i++) {
    let h = f32ToF16Bits(scales[i]);
    if ((h & 0x7c00) === 0x7c00) return null;
    if (h === 0 && scales[i] > 0) h = SMALLEST_F16;
    out[i] = h;
  }
  return out;
}

function firstNonFinite(s: Float32Array): number {
  for (let i = 0; i < s.length; i++) if (!Number.isFinite(s[i])) return i;
  return -1;
}

// ---- .q4 (Q4G1) ----

/** Bytes of a .q4 blob for [outDim, inDim]. */
export function q4BlobBytes(outDim: number, inDim: number, scales: ScaleDtype): number {
  const B = Math.ceil(outDim / Q4_ROWS),
    G = Math.ceil(inDim / Q4_GROUP);
  return BLOB_HEADER + B * G * 64 + B * G * 4 * scaleBytes(scales);
}

/** The 32-byte header of a .q4 blob: version 2 (f32/f16 scales) or 3 ('u8log', q4_compact.ts). */
export function q4Header(outDim: number, inDim: number, scales: ScaleDtype | 'u8log'): Uint8Array {
  const h = new Uint8Array(BLOB_HEADER);
  const dv = new DataView(h.buffer);
  const [version, code] = scales === 'u8log' ? [3, 2] : [2, SCALE_CODE[scales]];
  [Q4G_MAGIC, version, outDim, inDim, Q4_GROUP, Q4_ROWS, code, 0].forEach((v, i) => dv.setUint32(i * 4, v, true));
  return h;
}

/** Scales in the blob's dtype, as bytes. */
export function scaleBytesOf(scales: Float32Array | Uint16Array): Uint8Array {
  return new Uint8Array(scales.buffer, scales.byteOffset, scales.byteLength);
}

/** A whole v2 .q4 blob (f16 scales when they fit, else f32). */
export function encodeQ4(q: Q4Matrix, prefer: ScaleDtype = 'f16'): Uint8Array {
  const s16 = prefer === 'f16' ? scalesToF16(q.scales) : null;
  const dtype: ScaleDtype = s16 ? 'f16' : 'f32';
  const out = new Uint8Array(q4BlobBytes(q.outDim, q.inDim, dtype));
  out.set(q4Header(q.outDim, q.inDim, dtype));
  out.set(q.nibbles, BLOB_HEADER);
  out.set(scaleBytesOf(s16 ?? q.scales), BLOB_HEADER + q.nibbles.length);
  return out;
}

export interface Q4BlobInfo {
  version: 1 | 2 | 3;
  outDim: number;
  inDim: number;
  /** 'u8log': version 3 (q4_compact.ts), blocks laid out as the kernel holds them. */
  scales: ScaleDtype | 'u8log';
  /** Byte offset of the codes / the scales inside the blob. */
  codesOffset: number;
  scalesOffset: number;
  byteLength: number;
}

/** Parses and checks a .q4 header (v1: f32 scales; v2: word 6 gives the scale dtype). */
export function parseQ4Header(h: Uint8Array, totalBytes: number, where: string): Q4BlobInfo {
  if (h.length < BLOB_HEADER || totalBytes < BLOB_HEADER)
    throw new CheckpointError(`${where}: truncated packed int4 tensor (${totalBytes} bytes, the header alone is ${BLOB_HEADER})`);
  const dv = new DataView(h.buffer, h.byteOffset, BLOB_HEADER);
  const w = (i: number) => dv.getUint32(i * 4, true);
  if (w(0) !== Q4G_MAGIC) throw new CheckpointError(`${where}: not a packed int4 tensor (magic 0x${w(0).toString(16)}, expected 'Q4G1')`);
  const version = w(1);
  if (version !== 1 && version !== 2 && version !== 3)
    throw new CheckpointError(`${where}: packed int4 blob version ${version} is not supported (1, 2, 3); re-run gemma3n quantize with this build`);
  if (w(4) !== Q4_GROUP || w(5) !== Q4_ROWS) throw new CheckpointError(`${where}: group ${w(4)} / rows ${w(5)} unsupported (32 / 4)`);
  const code = version === 1 ? 0 : w(6);
  if (version === 3 ? code !== 2 : code !== 0 && code !== 1)
    throw new CheckpointError(`${where}: unknown scale dtype code ${code} for blob version ${version}`);
  const scales = code === 2 ? 'u8log' : code === 1 ? 'f16' : 'f32';
  const outDim = w(2),
    inDim = w(3);
  if (outDim === 0 || inDim === 0) throw new CheckpointError(`${where}: empty packed int4 tensor [${outDim}, ${inDim}]`);
  const byteLength = scales === 'u8log' ? BLOB_HEADER + q4CompactBodyBytes(outDim, inDim) : q4BlobBytes(outDim, inDim, scales);
  if (totalBytes !== byteLength)
    throw new CheckpointError(`${where}: packed int4 tensor [${outDim}, ${inDim}] must be ${byteLength} bytes, it has ${totalBytes} (truncated or mis-sized)`);
  const codesOffset = BLOB_HEADER,
    scalesOffset = BLOB_HEADER + Math.ceil(outDim / Q4_ROWS) * Math.ceil(inDim / Q4_GROUP) * 64;
  return { version: version as 1 | 2, outDim, inDim, scales, codesOffset, scalesOffset, byteLength };
}

let f16Table: Float32Array | null = null;

/** All 65,536 halves as f32 (256 KiB, built once): widening 76 M E2B scales is one lookup each. */
function halfTable(): Float32Array {
  if (!f16Table) {
    f16Table = new Float32Array(65536);
    f16ToF32(
      Uint16Array.from({ length: 65536 }, (_, i) => i),
      f16Table,
    );
  }
  return f16Table;
}

/** Scales of a blob widened to f32 (copied: aligned). */
export function readScales(bytes: Uint8Array, dtype: ScaleDtype, count: number): Float32Array {
  const out = new Float32Array(count);
  const n = count * scaleBytes(dtype);
  const src = bytes.byteOffset % scaleBytes(dtype) === 0 ? bytes : bytes.slice(0, n);
  if (dtype === 'f32') {
    out.set(new Float32Array(src.buffer, src.byteOffset, count));
  } else {
    const h = new Uint16Array(src.buffer, src.byteOffset, count),
      t = halfTable();
    for (let i = 0; i < count; i++) out[i] = t[h[i]];
  }
  return out;
}

/** A whole .q4 blob (v1 or v2) as a Q4Matrix with f32 scales, every scale checked finite. */
export function decodeQ4(bytes: Uint8Array, where: string): Q4Matrix {
  const info = parseQ4Header(bytes, bytes.length, where);
  if (info.scales === 'u8log') return decodeQ4Blocks(bytes.subarray(BLOB_HEADER), info.outDim, info.inDim, where);
  const nib = bytes.subarray(info.codesOffset, info.scalesOffset); // a view: no second copy of a 300 MB LM head
  const n = (info.byteLength - info.scalesOffset) / scaleBytes(info.scales as ScaleDtype);
  const scales = readScales(bytes.subarray(info.scalesOffset), info.scales as ScaleDtype, n);
  const bad = firstNonFinite(scales);
  if (bad >= 0) {
    const G = Math.ceil(info.inDim / Q4_GROUP);
    const row = Math.floor(bad / (4 * G)) * 4 + (bad % 4),
      group = Math.floor(bad / 4) % G;
    throw new CheckpointError(`${where}: scale of row ${row}, group ${group} is ${scales[bad]} (scales must be finite)`);
  }
  return new Q4Matrix(info.outDim, info.inDim, nib, scales);
}

// ---- .q4r (Q4R1) ----

export interface Q4RInfo {
  rows: number;
  cols: number;
  groups: number;
  /** 'u8log': version 2 row records (q4_compact.ts). */
  scales: ScaleDtype | 'u8log';
  rowBytes: number;
  byteLength: number;
}

export function q4rRowBytes(cols: number, scales: ScaleDtype): number {
  const G = Math.ceil(cols / Q4_GROUP);
  return G * scaleBytes(scales) + G * 16;
}

export function q4rHeader(rows: number, cols: number, scales: ScaleDtype | 'u8log'): Uint8Array {
  const h = new Uint8Array(BLOB_HEADER);
  const dv = new DataView(h.buffer);
  const [version, code] = scales === 'u8log' ? [2, 2] : [1, SCALE_CODE[scales]];
  [Q4R_MAGIC, version, rows, cols, Q4_GROUP, code, 0, 0].forEach((v, i) => dv.setUint32(i * 4, v, true));
  return h;
}

export function parseQ4RHeader(h: Uint8Array, totalBytes: number, where: string): Q4RInfo {
  if (h.length < BLOB_HEADER || totalBytes < BLOB_HEADER)
    throw new CheckpointError(`${where}: truncated int4 table (${totalBytes} bytes, the header alone is ${BLOB_HEADER})`);
  const dv = new DataView(h.buffer, h.byteOffset, BLOB_HEADER);
  const w = (i: number) => dv.getUint32(i * 4, true);
  if (w(0) !== Q4R_MAGIC) throw new CheckpointError(`${where}: not an int4 row table (magic 0x${w(0).toString(16)}, expected 'Q4R1')`);
  if (w(1) !== 1 && w(1) !== 2)
    throw new CheckpointError(`${where}: int4 row table version ${w(1)} is not supported (1, 2); re-run gemma3n quantize with this build`);
  if (w(4) !== Q4_GROUP) throw new CheckpointError(`${where}: group ${w(4)} unsupported (32)`);
  if (w(1) === 2 ? w(5) !== 2 : w(5) !== 0 && w(5) !== 1) throw new CheckpointError(`${where}: unknown scale dtype code ${w(5)} for table version ${w(1)}`);
  const scales = w(5) === 2 ? 'u8log' : w(5) === 1 ? 'f16' : 'f32';
  const rows = w(2),
    cols = w(3);
  if (rows === 0 || cols === 0) throw new CheckpointError(`${where}: empty int4 row table [${rows}, ${cols}]`);
  const rowBytes = scales === 'u8log' ? q4rCompactRowBytes(cols) : q4rRowBytes(cols, scales),
    byteLength = BLOB_HEADER + rows * rowBytes;
  if (totalBytes !== byteLength)
    throw new CheckpointError(`${where}: int4 row table [${rows}, ${cols}] must be ${byteLength} bytes, it has ${totalBytes} (truncated or mis-sized)`);
  return { rows, cols, groups: Math.ceil(cols / Q4_GROUP), scales, rowBytes, byteLength };
}

/**
 * Quantizes rows of a row-major f32 [rows, cols] table into .q4r row records (scales first,
 * then 16 code bytes per group: code j + 8 low nibble, code j + 16 + 8 high nibble). Codes are
 * computed with the stored (f16-rounded) scale. Returns null if a scale overflows f16.
 */
export function quantizeQ4Rows(w: Float32Array, rows: number, cols: number, scales: ScaleDtype): Uint8Array | null {
  const G = Math.ceil(cols / Q4_GROUP),
    rb = q4rRowBytes(cols, scales),
    sb = scaleBytes(scales);
  const out = new Uint8Array(rows * rb);
  const dv = new DataView(out.buffer);
  const codes = new Int8Array(Q4_GROUP);
  const f16Box = new Uint16Array(1),
    f16Val = new Float32Array(1);
  for (let r = 0; r < rows; r++) {
    const base = r * rb;
    for (let g = 0; g < G; g++) {
      const i0 = r * cols + g * Q4_GROUP,
        n = Math.min(Q4_GROUP, cols - g * Q4_GROUP);
      let amax = 0;
      for (let j = 0; j < n; j++) amax = Math.max(amax, Math.abs(w[i0 + j]));
      let s = Math.fround(amax / 7);
      if (scales === 'f16') {
        let h = f32ToF16Bits(s);
        if ((h & 0x7c00) === 0x7c00) return null;
        if (h === 0 && s > 0) h = SMALLEST_F16;
        f16Box[0] = h;
        f16ToF32(f16Box, f16Val);
        s = f16Val[0];
        dv.setUint16(base + g * 2, h, true);
      } else {
        dv.setFloat32(base + g * 4, s, true);
      }
      const inv = s > 0 ? 1 / s : 0;
      codes.fill(0);
      for (let j = 0; j < n; j++) codes[j] = Math.max(-7, Math.min(7, Math.round(w[i0 + j] * inv)));
      const p = base + G * sb + g * 16;
      for (let j = 0; j < 16; j++) out[p + j] = (codes[j] + 8) | ((codes[j + 16] + 8) << 4);
    }
  }
  return out;
}

/** Dequantizes one .q4r row record into out[0, cols); throws on a non-finite scale. */
export function dequantQ4Row(rec: Uint8Array, info: Q4RInfo, out: Float32Array, where: string, row: number): void {
  if (info.scales === 'u8log') return dequantQ4RowCompact(rec, info.cols, out, where, row);
  const G = info.groups,
    sb = scaleBytes(info.scales);
  const scales = readScales(rec, info.scales, G);
  const codes = G * sb;
  for (let g = 0; g < G; g++) {
    const s = scales[g];
    if (!Number.isFinite(s)) throw new CheckpointError(`${where}: scale of row ${row}, group ${g} is ${s} (scales must be finite)`);
    const p = codes + g * 16,
      o = g * Q4_GROUP,
      n = Math.min(Q4_GROUP, info.cols - o);
    for (let j = 0; j < 16 && j < n; j++) out[o + j] = s * ((rec[p + j] & 15) - 8);
    for (let j = 16; j < n; j++) out[o + j] = s * ((rec[p + j - 16] >> 4) - 8);
  }
}

/**
 * Dequantizes row `o` of a .q4 blob from its block alone: `codes` = the block's G·64 code bytes,
 * `scales` = its 4·G scales (f32). Used by the embedding lookup on the tied LM head.
 */
export function dequantQ4BlockRow(
  codes: Uint8Array,
  scales: Float32Array,
  G: number,
  cols: number,
  r: number,
  out: Float32Array,
  where: string,
  row: number,
): void {
  for (let g = 0; g < G; g++) {
    const s = scales[g * 4 + r];
    if (!Number.isFinite(s)) throw new CheckpointError(`${where}: scale of row ${row}, group ${g} is ${s} (scales must be finite)`);
    const p = (g * 4 + r) * 16,
      o = g * Q4_GROUP,
      n = Math.min(Q4_GROUP, cols - o);
    for (let j = 0; j < 16 && j < n; j++) out[o + j] = s * ((codes[p + j] & 15) - 8);
    for (let j = 16; j < n; j++) out[o + j] = s * ((codes[p + j - 16] >> 4) - 8);
  }
}
