/**
 * Per-channel symmetric int8 weights ("q8"), the towers' format where int4 measurably hurts
 * (src/encoders/tower_weights.ts), shared by TsKernels and WasmKernels.
 *
 * A linear weight W [outDim, inDim] keeps its row-major layout; each output row ("channel") has
 * one scale s = absmax / 127 and codes q = round(w / s) in [-127, 127], so every dequantized
 * value s·q is within s/2 of the original. 8 bits per weight plus one scale per row.
 *
 * Unlike q4, activations stay float32: the kernels dequantize a few rows at a time into a small
 * float32 panel and run a float32 GEMM over it (the towers multiply hundreds to thousands of
 * rows of x by each weight, so the dequantization is amortized). The only error is the
 * weight's rounding. `q8Linear` is the reference the WASM kernel is tested against.
 */

const MAGIC = 0x31433851; // 'Q8C1' little-endian
const HEADER_BYTES = 32;
/** Scale dtypes of the blob (header word 5). */
export const Q8_SCALE_F32 = 0;
export const Q8_SCALE_F16 = 1;

export class Q8Matrix {
  constructor(
    readonly outDim: number,
    readonly inDim: number,
    /** [outDim, inDim] codes in [-127, 127]. */
    readonly codes: Int8Array,
    /** [outDim] per-row scales. */
    readonly scales: Float32Array,
  ) {
    if (codes.length !== outDim * inDim || scales.length !== outDim) {
      throw new Error(`Q8Matrix [${outDim}, ${inDim}]: expected ${outDim * inDim} codes and ${outDim} scales, got ${codes.length} and ${scales.length}`);
    }
  }

  get byteLength(): number {
    return this.codes.length + this.scales.length * 4;
  }

  /** Quantizes a row-major float32 [outDim, inDim] matrix. */
  static quantize(w: Float32Array, outDim: number, inDim: number): Q8Matrix {
    if (w.length !== outDim * inDim) throw new Error(`Q8Matrix.quantize: ${w.length} values for [${outDim}, ${inDim}]`);
    const codes = new Int8Array(outDim * inDim), scales = new Float32Array(outDim);
    for (let o = 0; o < outDim; o++) {
      const r = o * inDim;
      let amax = 0;
      for (let i = 0; i < inDim; i++) amax = Math.max(amax, Math.abs(w[r + i]));
      const s = Math.fround(amax / 127);
      const inv = s > 0 ? 1 / s : 0;
      scales[o] = s;
      for (let i = 0; i < inDim; i++) codes[r + i] = Math.max(-127, Math.min(127, Math.round(w[r + i] * inv)));
    }
    return new Q8Matrix(outDim, inDim, codes, scales);
  }

  /** Row-major float32 [outDim, inDim] of the dequantized values (float32 products s·q). */
  dequantize(): Float32Array {
    const out = new Float32Array(this.outDim * this.inDim);
    for (let o = 0; o < this.outDim; o++) {
      const s = this.scales[o], r = o * this.inDim;
      for (let i = 0; i < this.inDim; i++) out[r + i] = this.codes[r + i] * s;
    }
    return out;
  }

  /**
   * [header 32 B: magic 'Q8C1', version 1, outDim, inDim, 0 (per-channel), scale dtype, 0, 0]
   * [codes: outDim·inDim int8, row-major][scales: outDim f32 or f16]. f16 scales are written
   * when every scale survives the round trip to f16 unchanged in kind (finite, non-zero stays
   * non-zero); the dequantized values then use the f16-rounded scales.
   */
  toBytes(scaleDtype: number = Q8_SCALE_F32): Uint8Array {
    const sBytes = scaleDtype === Q8_SCALE_F16 ? 2 : 4;
    const out = new Uint8Array(HEADER_BYTES + this.codes.length + this.outDim * sBytes);
    const h = new DataView(out.buffer);
    [MAGIC, 1, this.outDim, this.inDim, 0, scaleDtype, 0, 0].forEach((v, i) => h.setUint32(i * 4, v, true));
    out.set(new Uint8Array(this.codes.buffer, this.codes.byteOffset, this.codes.length), HEADER_BYTES);
    const so = HEADER_BYTES + this.codes.length;
    for (let o = 0; o < this.outDim; o++) {
      if (sBytes === 4) h.setFloat32(so + o * 4, this.scales[o], true);
      else h.setUint16(so + o * 2, f32ToF16(this.scales[o]), true);
    }
    return out;
  }

  static fromBytes(bytes: Uint8Array): Q8Matrix {
    if (bytes.length < HEADER_BYTES) throw new Error('Q8Matrix.fromBytes: truncated header');
    const h = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
    const word = (i: number) => h.getUint32(i * 4, true);
    if (word(0) !== MAGIC || word(1) !== 1) throw new Error('Q8Matrix.fromBytes: not a Q8C1 v1 blob');
    if (word(4) !== 0) throw new Error(`Q8Matrix.fromBytes: grouping ${word(4)} unsupported (0 = per channel)`);
    const dtype = word(5);
    if (dtype !== Q8_SCALE_F32 && dtype !== Q8_SCALE_F16) throw new Error(`Q8Matrix.fromBytes: scale dtype ${dtype} unsupported`);
    const outDim = word(2), inDim = word(3), sBytes = dtype === Q8_SCALE_F16 ? 2 : 4;
    const want = HEADER_BYTES + outDim * inDim + outDim * sBytes;
    if (bytes.length !== want) throw new Error(`Q8Matrix.fromBytes: ${bytes.length} bytes, expected ${want} for [${outDim}, ${inDim}]`);
    const codes = new Int8Array(bytes.slice(HEADER_BYTES, HEADER_BYTES + outDim * inDim).buffer);
    const scales = new Float32Array(outDim), so = HEADER_BYTES + outDim * inDim;
    for (let o = 0; o < outDim; o++) scales[o] = sBytes === 4 ? h.getFloat32(so + o * 4, true) : f16ToF32(h.getUint16(so + o * 2, true));
    return new Q8Matrix(outDim, inDim, codes, scales);
  }
}

/** Whether every scale keeps its kind (finite; non-zero stays non-zero) in f16. */
export function scalesFitF16(scales: Float32Array): boolean {
  for (const s of scales) {
    const r = f16ToF32(f32ToF16(s));
    if (!Number.isFinite(r) || (s !== 0 && r === 0)) return false;
  }
  return true;
}

/** Round-to-nearest-even float32 → IEEE half bits. */
export function f32ToF16(x: number): number {
  const f = new Float32Array([x]), u = new Uint32Array(f.buffer)[0];
  const sign = (u >>> 16) & 0x8000, exp = (u >>> 23) & 0xff, man = u & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (man ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    const m = man | 0x800000, shift = 14 - e;
    let h = m >>> shift;
    const rem = m & ((1 << shift) - 1), half = 1 << (shift - 1);
    if (rem > half || (rem === half && (h & 1))) h++;
    return sign | h;
  }
  let h = (e << 10) | (man >>> 13);
  const rem = man & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (h & 1))) h++;
  return sign | h;
}

export function f16ToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1, e = (h >>> 10) & 0x1f, m = h & 0x3ff;
  if (e === 0) return sign * m * 2 ** -24;
  if (e === 0x1f) return m ? NaN : sign * Infinity;
  return sign * (1 + m / 1024) * 2 ** (e - 15);
}

/** Reference q8 linear: y[t, o] = Σ_i x[t, i] · (s_o · q[o, i]), the dequantized value rounded to float32. */
export function q8Linear(w: Q8Matrix, x: Float32Array, T: number, y: Float32Array): void {
  const { outDim, inDim, codes, scales } = w;
  const row = new Float32Array(inDim);
  for (let o = 0; o < outDim; o++) {
    const s = scales[o], r = o * inDim;
    for (let i = 0; i < inDim; i++) row[i] = codes[r + i] * s;
    for (let t = 0; t < T; t++) {
      const xo = t * inDim;
      let acc = 0;
      for (let i = 0; i < inDim; i++) acc += x[xo + i] * row[i];
      y[t * outDim + o] = acc;
    }
  }
}
