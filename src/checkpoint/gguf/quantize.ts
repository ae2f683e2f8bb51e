/**
 * Between our formats and ggml's block types.
 *
 * Q4_0 is our int4 format in another packing: a block is 32 consecutive inputs of one row with
 * one f16 scale d and 16 bytes whose byte j holds code j in the low nibble and code j+16 in
 * the high one, value = d·(nibble − 8) [ggml-common.h block_q4_0]. Our Q4Matrix
 * (src/kernels/q4.ts) stores exactly those bytes, four rows interleaved, with an f32 scale.
 * So Q4_0 → Q4Matrix is a copy (lossless: an f16 is exactly an f32; nibble 0, code −8, runs
 * through the same integer dot product), and Q4Matrix → Q4_0 rounds the scale to f16.
 */
import { Q4Matrix, Q4_GROUP } from '../../kernels/q4.js';
import { floatToHalf, halfToFloat } from './dequant.js';

/** Q4_0 bytes of a [outDim, inDim] weight (inDim a multiple of 32) → Q4Matrix, without loss. */
export function q4_0ToQ4Matrix(src: Uint8Array, outDim: number, inDim: number): Q4Matrix {
  if (inDim % Q4_GROUP !== 0) throw new Error(`Q4_0: rows of ${inDim} values are not whole blocks of 32`);
  const G = inDim / Q4_GROUP, B = Math.ceil(outDim / 4);
  if (src.length !== outDim * G * 18) throw new Error(`Q4_0 [${outDim}, ${inDim}]: ${src.length} bytes, expected ${outDim * G * 18}`);
  const nibbles = new Uint8Array(B * G * 64).fill(0x88);
  const scales = new Float32Array(B * G * 4);
  for (let o = 0; o < outDim; o++) {
    const b = o >> 2, r = o & 3;
    for (let g = 0; g < G; g++) {
      const p = (o * G + g) * 18, si = (b * G + g) * 4 + r;
      scales[si] = halfToFloat(src[p] | (src[p + 1] << 8));
      nibbles.set(src.subarray(p + 2, p + 18), si * 16);
    }
  }
  return new Q4Matrix(outDim, inDim, nibbles, scales);
}

/** Q4Matrix → Q4_0 bytes (row-major blocks); scales round to f16, codes are copied. */
export function q4MatrixToQ4_0(q: Q4Matrix): Uint8Array {
  if (q.inDim % Q4_GROUP !== 0) throw new Error(`Q4_0: rows of ${q.inDim} values are not whole blocks of 32`);
  const G = q.groups, out = new Uint8Array(q.outDim * G * 18);
  for (let o = 0; o < q.outDim; o++) {
    const b = o >> 2, r = o & 3;
    for (let g = 0; g < G; g++) {
      const p = (o * G + g) * 18, si = (b * G + g) * 4 + r;
      const h = floatToHalf(q.scales[si]);
      out[p] = h & 255;
      out[p + 1] = h >> 8;
      out.set(q.nibbles.subarray(si * 16, si * 16 + 16), p + 2);
    }
  }
  return out;
}

/**
 * Q4_0 from float weights with our int4 quantizer (absmax/7 per 32, codes in [-7, 7]); only the
 * scale is rounded to f16, so the codes are exactly those of our int4 model.
 */
export function quantizeQ4_0(w: Float32Array, rows: number, cols: number): Uint8Array {
  return q4MatrixToQ4_0(Q4Matrix.quantize(w, rows, cols));
}

/** Q8_0 as ggml quantizes it: d = absmax/127, q = roundf(x/d) [ggml-quants.c quantize_row_q8_0_ref]. */
export function quantizeQ8_0(w: Float32Array): Uint8Array {
  if (w.length % 32 !== 0) throw new Error(`Q8_0: ${w.length} values are not whole blocks of 32`);
  const out = new Uint8Array((w.length / 32) * 34);
  for (let blk = 0, p = 0; blk < w.length; blk += 32, p += 34) {
    let amax = 0;
    for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(w[blk + j]));
    const d = Math.fround(amax / 127), id = d ? Math.fround(1 / d) : 0;
    const h = floatToHalf(d);
    out[p] = h & 255;
    out[p + 1] = h >> 8;
    for (let j = 0; j < 32; j++) {
      const x = Math.fround(w[blk + j] * id);
      out[p + 2 + j] = (Math.sign(x) * Math.round(Math.abs(x))) & 255; // roundf: half away from zero
    }
  }
  return out;
}

export function toF16Bytes(w: Float32Array): Uint8Array {
  const out = new Uint16Array(w.length);
  for (let i = 0; i < w.length; i++) out[i] = floatToHalf(w[i]);
  return new Uint8Array(out.buffer);
}

export function toF32Bytes(w: Float32Array): Uint8Array {
  return new Uint8Array(w.buffer, w.byteOffset, w.byteLength);
}
