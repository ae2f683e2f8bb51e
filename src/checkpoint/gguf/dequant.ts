/**
 * Dequantization of ggml block types to float32, value for value as ggml does it
 * [ggml/src/ggml-quants.c dequantize_row_*; gguf-py quants.py]. Every block starts (or ends,
 * for Q2_K/Q3_K/Q6_K) with f16 scales; codes are packed nibbles, plus high bits for the 5- and
 * 6-bit types. Blocks are read from a byte array at any alignment.
 */
import type { GgmlType } from './ggml_types.js';

let HALF: Float32Array | null = null;
/** f16 → f32 for all 65536 bit patterns (built once, 256 KB). */
function halfTable(): Float32Array {
  if (HALF) return HALF;
  HALF = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1, exp = (h >> 10) & 0x1f, frac = h & 0x3ff;
    HALF[h] = exp === 0 ? sign * frac * 2 ** -24 : exp === 31 ? (frac ? NaN : sign * Infinity) : sign * (1 + frac / 1024) * 2 ** (exp - 15);
  }
  return HALF;
}

export function halfToFloat(h: number): number {
  return halfTable()[h & 0xffff];
}

/** f32 → f16 bits, round to nearest even (numpy's astype(float16), ggml's GGML_FP32_TO_FP16). */
export function floatToHalf(x: number): number {
  BFF[0] = x;
  const u = BF[0];
  const sign = (u >>> 16) & 0x8000;
  const exp = (u >>> 23) & 0xff, mant = u & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    const m = mant | 0x800000, shift = 14 - e;
    let r = m >>> shift;
    const rem = m & ((1 << shift) - 1), half = 1 << (shift - 1);
    if (rem > half || (rem === half && (r & 1))) r++;
    return sign | r;
  }
  let r = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (r & 1))) r++;
  return sign | r;
}

const u16 = (b: Uint8Array, p: number): number => b[p] | (b[p + 1] << 8);
const f16 = (b: Uint8Array, p: number): number => halfTable()[b[p] | (b[p + 1] << 8)];
const i8 = (v: number): number => (v << 24) >> 24;

/** Dequantizes `count` values (whole blocks) of type `t` from `src` into `out[outOffset..]`. */
export function dequantize(t: GgmlType, src: Uint8Array, count: number, out: Float32Array, outOffset = 0): void {
  if (count % t.blockSize !== 0) throw new Error(`dequantize ${t.name}: ${count} values is not a whole number of ${t.blockSize}-value blocks`);
  const nb = count / t.blockSize;
  if (src.length < nb * t.typeSize) throw new Error(`dequantize ${t.name}: ${src.length} bytes for ${count} values (need ${nb * t.typeSize})`);
  const T = halfTable();
  const dv = new DataView(src.buffer, src.byteOffset, src.byteLength);
  let y = outOffset;
  switch (t.name) {
    case 'F32': for (let i = 0; i < count; i++) out[y + i] = dv.getFloat32(i * 4, true); return;
    case 'F64': for (let i = 0; i < count; i++) out[y + i] = dv.getFloat64(i * 8, true); return;
    case 'F16': for (let i = 0; i < count; i++) out[y + i] = T[u16(src, i * 2)]; return;
    case 'BF16': for (let i = 0; i < count; i++) out[y + i] = bf16(src, i * 2); return;
    case 'Q4_0':
      for (let b = 0, p = 0; b < nb; b++, p += 18, y += 32) {
        const d = f16(src, p);
        for (let j = 0; j < 16; j++) {
          const q = src[p + 2 + j];
          out[y + j] = d * ((q & 15) - 8);
          out[y + j + 16] = d * ((q >> 4) - 8);
        }
      }
      return;
    case 'Q4_1':
      for (let b = 0, p = 0; b < nb; b++, p += 20, y += 32) {
        const d = f16(src, p), m = f16(src, p + 2);
        for (let j = 0; j < 16; j++) {
          const q = src[p + 4 + j];
          out[y + j] = d * (q & 15) + m;
          out[y + j + 16] = d * (q >> 4) + m;
        }
      }
      return;
    case 'Q5_0':
      for (let b = 0, p = 0; b < nb; b++, p += 22, y += 32) {
        const d = f16(src, p), qh = dv.getUint32(p + 2, true);
        for (let j = 0; j < 16; j++) {
          const q = src[p + 6 + j];
          out[y + j] = d * (((q & 15) | (((qh >>> j) & 1) << 4)) - 16);
          out[y + j + 16] = d * (((q >> 4) | (((qh >>> (j + 16)) & 1) << 4)) - 16);
        }
      }
      return;
    case 'Q5_1':
      for (let b = 0, p = 0; b < nb; b++, p += 24, y += 32) {
        const d = f16(src, p), m = f16(src, p + 2), qh = dv.getUint32(p + 4, true);
        for (let j = 0; j < 16; j++) {
          const q = src[p + 8 + j];
          out[y + j] = d * ((q & 15) | (((qh >>> j) & 1) << 4)) + m;
          out[y + j + 16] = d * ((q >> 4) | (((qh >>> (j + 16)) & 1) << 4)) + m;
        }
      }
      return;
    case 'Q8_0':
      for (let b = 0, p = 0; b < nb; b++, p += 34, y += 32) {
        const d = f16(src, p);
        for (let j = 0; j < 32; j++) out[y + j] = d * i8(src[p + 2 + j]);
      }
      return;
    case 'Q2_K': // scales[16] qs[64] d dmin
      for (let b = 0, p = 0; b < nb; b++, p += 84) {
        const d = f16(src, p + 80), dmin = f16(src, p + 82);
        let is = 0;
        for (let n = 0; n < 2; n++) {
          const q = p + 16 + n * 32;
          for (let shift = 0; shift < 8; shift += 2) {
            for (let half = 0; half < 2; half++) {
              const sc = src[p + is++];
              const dl = d * (sc & 15), ml = dmin * (sc >> 4);
              for (let l = 0; l < 16; l++) out[y++] = dl * ((src[q + half * 16 + l] >> shift) & 3) - ml;
            }
          }
        }
      }
      return;
    case 'Q3_K': // hmask[32] qs[64] scales[12] d
      for (let b = 0, p = 0; b < nb; b++, p += 110) {
        const d = f16(src, p + 108), sp = p + 96;
        const scales = new Int8Array(16);
        for (let k = 0; k < 16; k++) {
          const low = k < 8 ? src[sp + k] & 15 : src[sp + k - 8] >> 4;
          const high = (src[sp + 8 + (k & 3)] >> (2 * (k >> 2))) & 3;
          scales[k] = (low | (high << 4)) - 32;
        }
        for (let v = 0; v < 256; v++) {
          const r = v >> 7, s = (v >> 5) & 3, l = v & 31;
          const low = (src[p + 32 + r * 32 + l] >> (2 * s)) & 3;
          const hbit = (src[p + l] >> (v >> 5)) & 1; // an unset high bit subtracts 4
          out[y + v] = d * scales[v >> 4] * (low - (hbit ? 0 : 4));
        }
        y += 256;
      }
      return;
    case 'Q4_K': // d dmin scales[12] qs[128]
      for (let b = 0, p = 0; b < nb; b++, p += 144) {
        const d = f16(src, p), dmin = f16(src, p + 2);
        for (let j = 0; j < 4; j++) {
          const [sc1, m1] = scaleMinK4(src, p + 4, 2 * j), [sc2, m2] = scaleMinK4(src, p + 4, 2 * j + 1);
          const q = p + 16 + j * 32;
          for (let l = 0; l < 32; l++) out[y + l] = d * sc1 * (src[q + l] & 15) - dmin * m1;
          for (let l = 0; l < 32; l++) out[y + 32 + l] = d * sc2 * (src[q + l] >> 4) - dmin * m2;
          y += 64;
        }
      }
      return;
    case 'Q5_K': // d dmin scales[12] qh[32] qs[128]
      for (let b = 0, p = 0; b < nb; b++, p += 176) {
        const d = f16(src, p), dmin = f16(src, p + 2);
        for (let j = 0; j < 4; j++) {
          const [sc1, m1] = scaleMinK4(src, p + 4, 2 * j), [sc2, m2] = scaleMinK4(src, p + 4, 2 * j + 1);
          const q = p + 48 + j * 32;
          for (let l = 0; l < 32; l++) out[y + l] = d * sc1 * ((src[q + l] & 15) | (((src[p + 16 + l] >> (2 * j)) & 1) << 4)) - dmin * m1;
          for (let l = 0; l < 32; l++) out[y + 32 + l] = d * sc2 * ((src[q + l] >> 4) | (((src[p + 16 + l] >> (2 * j + 1)) & 1) << 4)) - dmin * m2;
          y += 64;
        }
      }
      return;
    case 'Q6_K': // ql[128] qh[64] scales[16] (int8) d
      for (let b = 0, p = 0; b < nb; b++, p += 210) {
        const d = f16(src, p + 208);
        for (let n = 0; n < 2; n++) {
          const ql = p + n * 64, qh = p + 128 + n * 32, sc = p + 192 + n * 8;
          for (let l = 0; l < 32; l++) {
            const is = l >> 4, h = src[qh + l];
            const q1 = ((src[ql + l] & 15) | ((h & 3) << 4)) - 32;
            const q2 = ((src[ql + l + 32] & 15) | (((h >> 2) & 3) << 4)) - 32;
            const q3 = ((src[ql + l] >> 4) | (((h >> 4) & 3) << 4)) - 32;
            const q4 = ((src[ql + l + 32] >> 4) | (((h >> 6) & 3) << 4)) - 32;
            out[y + l] = d * i8(src[sc + is]) * q1;
            out[y + l + 32] = d * i8(src[sc + is + 2]) * q2;
            out[y + l + 64] = d * i8(src[sc + is + 4]) * q3;
            out[y + l + 96] = d * i8(src[sc + is + 6]) * q4;
          }
          y += 128;
        }
      }
      return;
    default:
      throw new Error(`tensor type ${t.name} is not supported (supported: F32, F16, BF16, F64, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K)`);
  }
}

function bf16(b: Uint8Array, p: number): number {
  BF[0] = (b[p] << 16) | (b[p + 1] << 24);
  return BFF[0];
}
const BF = new Uint32Array(1);
const BFF = new Float32Array(BF.buffer);

/** The 6-bit scale and min of sub-block j of a Q4_K/Q5_K block [ggml-quants.c get_scale_min_k4]. */
function scaleMinK4(b: Uint8Array, q: number, j: number): [number, number] {
  if (j < 4) return [b[q + j] & 63, b[q + j + 4] & 63];
  return [(b[q + j + 4] & 15) | ((b[q + j - 4] >> 6) << 4), (b[q + j + 4] >> 4) | ((b[q + j] >> 6) << 4)];
}

export function isSupportedType(t: GgmlType): boolean {
  return ['F32', 'F64', 'F16', 'BF16', 'Q4_0', 'Q4_1', 'Q5_0', 'Q5_1', 'Q8_0', 'Q2_K', 'Q3_K', 'Q4_K', 'Q5_K', 'Q6_K'].includes(t.name);
}
