/**
 * Element types of safetensors files and their conversion to float32.
 *
 * Checkpoints ship bf16 (Gemma 3n on Hugging Face), sometimes f16 or f32. The reference
 * math of this engine is float32, so every float tensor is widened on load.
 */
export type DType = 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL';

export const DTYPE_BYTES: Readonly<Record<DType, number>> = {
  F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1,
};

export function isDType(s: unknown): s is DType {
  return typeof s === 'string' && Object.hasOwn(DTYPE_BYTES, s);
}

/** bf16 is the top half of an f32: widening is a 16-bit shift. */
export function bf16ToF32(src: Uint16Array, dst: Float32Array): void {
  const d32 = new Uint32Array(dst.buffer, dst.byteOffset, dst.length);
  for (let i = 0; i < src.length; i++) d32[i] = src[i] << 16;
}

/** Rounds f32 to bf16 with round-to-nearest-even (what torch's .to(bfloat16) does). */
export function f32ToBf16(src: Float32Array, dst: Uint16Array): void {
  const s32 = new Uint32Array(src.buffer, src.byteOffset, src.length);
  for (let i = 0; i < src.length; i++) {
    const x = s32[i];
    if ((x & 0x7f800000) === 0x7f800000 && (x & 0x7fffff) !== 0) { dst[i] = (x >>> 16) | 0x40; continue; } // NaN stays NaN
    dst[i] = (x + 0x7fff + ((x >>> 16) & 1)) >>> 16;
  }
}

/** IEEE half to float, including subnormals, infinities and NaN. */
export function f16ToF32(src: Uint16Array, dst: Float32Array): void {
  for (let i = 0; i < src.length; i++) {
    const h = src[i];
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >> 10) & 0x1f;
    const frac = h & 0x3ff;
    if (exp === 0) dst[i] = sign * frac * 2 ** -24;
    else if (exp === 31) dst[i] = frac ? NaN : sign * Infinity;
    else dst[i] = sign * (1 + frac / 1024) * 2 ** (exp - 15);
  }
}

/**
 * Copies raw little-endian bytes into a fresh, aligned typed array (file data need not be
 * aligned to the element size inside the buffer it was read into).
 */
function aligned(bytes: Uint8Array): ArrayBuffer {
  const buf = new ArrayBuffer(bytes.byteLength);
  new Uint8Array(buf).set(bytes);
  return buf;
}

/** Widens any numeric dtype to float32. */
export function toFloat32(bytes: Uint8Array, dtype: DType, count: number): Float32Array {
  const buf = aligned(bytes);
  switch (dtype) {
    case 'F32': return new Float32Array(buf, 0, count);
    case 'BF16': { const out = new Float32Array(count); bf16ToF32(new Uint16Array(buf, 0, count), out); return out; }
    case 'F16': { const out = new Float32Array(count); f16ToF32(new Uint16Array(buf, 0, count), out); return out; }
    case 'F64': return Float32Array.from(new Float64Array(buf, 0, count));
    case 'I32': return Float32Array.from(new Int32Array(buf, 0, count));
    case 'I16': return Float32Array.from(new Int16Array(buf, 0, count));
    case 'I8': return Float32Array.from(new Int8Array(buf, 0, count));
    case 'U8': case 'BOOL': return Float32Array.from(new Uint8Array(buf, 0, count));
    case 'I64': return Float32Array.from(new BigInt64Array(buf, 0, count), (v) => Number(v));
  }
}
