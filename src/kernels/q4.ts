/**
 * Group-wise symmetric int4 weights ("q4"), the format shared by TsKernels and WasmKernels.
 *
 * A linear weight W [outDim, inDim] is cut along the input dimension into groups of 32;
 * each group of each row has one f32 scale s = absmax / 7 and 32 codes q = round(w / s) in
 * [-7, 7], so every dequantized value s·q is within s/2 of the original. inDim is padded with
 * zeros to a multiple of 32 and outDim to a multiple of 4 (padding rows have scale 0).
 *
 * Packed layout, chosen so one 16-byte SIMD load unpacks into two vectors of 16 codes:
 *   nibbles [outPad/4 blocks][G groups][4 rows][16 bytes]: byte j of a row's group holds
 *           code j + 8 in its low nibble and code j + 16 + 8 in its high nibble;
 *   scales  [outPad/4 blocks][G groups][4 rows] f32.
 * Four rows sit side by side so the GEMV streams one contiguous array and reduces four dot
 * products at once. 32 weights take 16 + 4 bytes: 5 bits per weight.
 *
 * Activations are quantized on the fly to int8 per group of 32 (scale absmax/127, round half
 * to even), the same scheme as onnxruntime's MatMulNBits accuracy_level 4; the dot product
 * of a group is then exact in integers and scaled once. `q4Linear` below is the readable
 * reference the WASM kernel is tested against.
 */

export const Q4_GROUP = 32;
export const Q4_ROWS = 4;
const MAGIC = 0x31473451; // 'Q4G1' little-endian
const HEADER_BYTES = 32;

export class Q4Matrix {
  readonly groups: number;
  readonly blocks: number;
  constructor(
    readonly outDim: number,
    readonly inDim: number,
    /** [blocks][groups][4][16] packed codes, see the module comment. */
    readonly nibbles: Uint8Array,
    /** [blocks][groups][4] f32 scales. */
    readonly scales: Float32Array,
  ) {
    this.groups = Math.ceil(inDim / Q4_GROUP);
    this.blocks = Math.ceil(outDim / Q4_ROWS);
    if (nibbles.length !== this.blocks * this.groups * 64 || scales.length !== this.blocks * this.groups * 4) {
      throw new Error(`Q4Matrix [${outDim}, ${inDim}]: expected ${this.blocks * this.groups * 64} code bytes and ${this.blocks * this.groups * 4} scales, got ${nibbles.length} and ${scales.length}`);
    }
  }

  /** Bytes of packed codes and scales (what a GEMV streams). */
  get byteLength(): number {
    return this.nibbles.length + this.scales.length * 4;
  }

  /** Quantizes a row-major float32 [outDim, inDim] matrix (convert bf16/f16 to f32 first). */
  static quantize(w: Float32Array, outDim: number, inDim: number): Q4Matrix {
    if (w.length !== outDim * inDim) throw new Error(`Q4Matrix.quantize: ${w.length} values for [${outDim}, ${inDim}]`);
    const G = Math.ceil(inDim / Q4_GROUP), B = Math.ceil(outDim / Q4_ROWS);
    const nibbles = new Uint8Array(B * G * 64).fill(0x88); // code 0 everywhere, incl. padding
    const scales = new Float32Array(B * G * 4);
    const codes = new Int8Array(Q4_GROUP);
    for (let o = 0; o < outDim; o++) {
      const b = o >> 2, r = o & 3;
      for (let g = 0; g < G; g++) {
        const i0 = g * Q4_GROUP, n = Math.min(Q4_GROUP, inDim - i0), wo = o * inDim + i0;
        let amax = 0;
        for (let j = 0; j < n; j++) amax = Math.max(amax, Math.abs(w[wo + j]));
        const s = Math.fround(amax / 7);
        const inv = s > 0 ? 1 / s : 0;
        codes.fill(0);
        for (let j = 0; j < n; j++) codes[j] = Math.max(-7, Math.min(7, Math.round(w[wo + j] * inv)));
        const si = (b * G + g) * 4 + r;
        scales[si] = s;
        const p = si * 16;
        for (let j = 0; j < 16; j++) nibbles[p + j] = (codes[j] + 8) | ((codes[j + 16] + 8) << 4);
      }
    }
    return new Q4Matrix(outDim, inDim, nibbles, scales);
  }

  /** Code (in [-7, 7]) and scale of W[o, i]. */
  code(o: number, i: number): number {
    const si = ((o >> 2) * this.groups + (i >> 5)) * 4 + (o & 3);
    const j = i & 31;
    const byte = this.nibbles[si * 16 + (j & 15)];
    return (j < 16 ? byte & 15 : byte >> 4) - 8;
  }
  scale(o: number, i: number): number {
    return this.scales[((o >> 2) * this.groups + (i >> 5)) * 4 + (o & 3)];
  }

  /** Row-major float32 [outDim, inDim] of the dequantized values s·q. */
  dequantize(): Float32Array {
    const out = new Float32Array(this.outDim * this.inDim);
    for (let o = 0; o < this.outDim; o++) {
      for (let i = 0; i < this.inDim; i++) out[o * this.inDim + i] = this.scale(o, i) * this.code(o, i);
    }
    return out;
  }

  /**
   * Serialises to [header 32 B: magic 'Q4G1', version 1, outDim, inDim, group 32, rows 4, 0, 0]
   * [codes][scales f32 LE]; fromBytes reads it back without re-quantizing.
   */
  toBytes(): Uint8Array {
    const out = new Uint8Array(HEADER_BYTES + this.nibbles.length + this.scales.length * 4);
    const h = new DataView(out.buffer);
    [MAGIC, 1, this.outDim, this.inDim, Q4_GROUP, Q4_ROWS, 0, 0].forEach((v, i) => h.setUint32(i * 4, v, true));
    out.set(this.nibbles, HEADER_BYTES);
    out.set(new Uint8Array(this.scales.buffer, this.scales.byteOffset, this.scales.byteLength), HEADER_BYTES + this.nibbles.length);
    return out;
  }

  static fromBytes(bytes: Uint8Array): Q4Matrix {
    if (bytes.length < HEADER_BYTES) throw new Error('Q4Matrix.fromBytes: truncated header');
    const h = new DataView(bytes.buffer, bytes.byteOffset, HEADER_BYTES);
    const word = (i: number) => h.getUint32(i * 4, true);
    if (word(0) !== MAGIC || word(1) !== 1) throw new Error('Q4Matrix.fromBytes: not a Q4G1 v1 blob');
    if (word(4) !== Q4_GROUP || word(5) !== Q4_ROWS) throw new Error(`Q4Matrix.fromBytes: group ${word(4)} / rows ${word(5)} unsupported`);
    const outDim = word(2), inDim = word(3);
    const G = Math.ceil(inDim / Q4_GROUP), B = Math.ceil(outDim / Q4_ROWS);
    const nb = B * G * 64, ns = B * G * 4;
    if (bytes.length !== HEADER_BYTES + nb + ns * 4) throw new Error(`Q4Matrix.fromBytes: ${bytes.length} bytes, expected ${HEADER_BYTES + nb + ns * 4}`);
    const nibbles = bytes.slice(HEADER_BYTES, HEADER_BYTES + nb);
    const scales = new Float32Array(bytes.slice(HEADER_BYTES + nb).buffer); // copy: aligned, little-endian hosts
    return new Q4Matrix(outDim, inDim, nibbles, scales);
  }
}

/** Round half to even, as WebAssembly's f32.nearest. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return r - x === 0.5 && (r & 1) !== 0 ? r - 1 : r;
}

/** Per-group int8 quantization of one activation row: codes, scales absmax/127 (f32 math as in WASM). */
export function quantizeActivations(x: Float32Array, xo: number, inDim: number, xq: Int8Array, xs: Float32Array): void {
  const G = Math.ceil(inDim / Q4_GROUP);
  for (let g = 0; g < G; g++) {
    const i0 = g * Q4_GROUP, n = Math.min(Q4_GROUP, inDim - i0);
    let amax = 0;
    for (let j = 0; j < n; j++) amax = Math.max(amax, Math.abs(x[xo + i0 + j]));
    const inv = amax > 0 ? Math.fround(127 / amax) : 0;
    xs[g] = Math.fround(amax / 127);
    for (let j = 0; j < Q4_GROUP; j++) xq[i0 + j] = j < n ? roundHalfEven(Math.fround(x[xo + i0 + j] * inv)) : 0;
  }
}

/** Reference q4 linear: y[t, o] = Σ_g sw[o,g]·sx[t,g]·Σ_j q[o,32g+j]·xq[t,32g+j]. */
export function q4Linear(w: Q4Matrix, x: Float32Array, T: number, y: Float32Array): void {
  const { outDim, inDim, groups: G } = w;
  const xq = new Int8Array(G * Q4_GROUP), xs = new Float32Array(G);
  for (let t = 0; t < T; t++) {
    quantizeActivations(x, t * inDim, inDim, xq, xs);
    for (let o = 0; o < outDim; o++) {
      const b = o >> 2, r = o & 3;
      let acc = 0;
      for (let g = 0; g < G; g++) {
        const si = (b * G + g) * 4 + r, p = si * 16, xo = g * Q4_GROUP;
        let d = 0;
        for (let j = 0; j < 16; j++) {
          const byte = w.nibbles[p + j];
          d += xq[xo + j] * ((byte & 15) - 8) + xq[xo + j + 16] * ((byte >> 4) - 8);
        }
        acc += d * w.scales[si] * xs[g];
      }
      y[t * outDim + o] = acc;
    }
  }
}
