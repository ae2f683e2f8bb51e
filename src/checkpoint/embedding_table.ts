/**
 * Embedding tables looked up by row.
 *
 * A table keeps its rows in the dtype the checkpoint stored them in (bf16 for real Gemma 3n)
 * and widens only the rows a token needs. This halves the memory of the big tables and is the
 * seam where the per-layer embedding table can move out of memory entirely (a streamed table
 * reads rows from disk on demand: "selective parameter activation").
 */
import { DTYPE_BYTES, bf16ToF32, f16ToF32, type DType } from './dtype.js';

export interface EmbeddingTable {
  readonly rows: number;
  readonly cols: number;
  /** Writes rows `ids` (widened to f32) into out[i*cols ..]; ids must be in [0, rows). */
  lookup(ids: ArrayLike<number>, out: Float32Array): Promise<void>;
}

/** A table held in memory, in its stored dtype (F32, BF16 or F16). */
export class InMemoryTable implements EmbeddingTable {
  private readonly u16: Uint16Array | null;
  private readonly f32: Float32Array | null;

  constructor(
    readonly rows: number,
    readonly cols: number,
    readonly dtype: DType,
    data: Uint8Array | Float32Array,
  ) {
    if (data instanceof Float32Array) {
      if (dtype !== 'F32') throw new Error('InMemoryTable: Float32Array data must be F32');
      this.f32 = data;
      this.u16 = null;
    } else {
      if (dtype !== 'BF16' && dtype !== 'F16' && dtype !== 'F32') throw new Error(`InMemoryTable: unsupported dtype ${dtype}`);
      const copy = new Uint8Array(data.byteLength); // own, aligned copy
      copy.set(data);
      this.f32 = dtype === 'F32' ? new Float32Array(copy.buffer) : null;
      this.u16 = dtype === 'F32' ? null : new Uint16Array(copy.buffer);
    }
    const expected = rows * cols * DTYPE_BYTES[dtype];
    const have = (this.f32 ?? this.u16)!.byteLength;
    if (have !== expected) throw new Error(`InMemoryTable: ${have} bytes for ${rows}x${cols} ${dtype}`);
  }

  /** The whole table as f32, when stored as f32 (the tied LM head reuses it without a copy). */
  get float32(): Float32Array | null {
    return this.f32;
  }

  async lookup(ids: ArrayLike<number>, out: Float32Array): Promise<void> {
    const c = this.cols;
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      if (!(id >= 0 && id < this.rows)) throw new RangeError(`embedding lookup: id ${id} outside [0, ${this.rows})`);
      const dst = out.subarray(i * c, (i + 1) * c);
      if (this.f32) dst.set(this.f32.subarray(id * c, (id + 1) * c));
      else if (this.dtype === 'BF16') bf16ToF32(this.u16!.subarray(id * c, (id + 1) * c), dst);
      else f16ToF32(this.u16!.subarray(id * c, (id + 1) * c), dst);
    }
  }

  /** Widens the whole table (used to build the tied LM head when stored as bf16/f16). */
  toFloat32(): Float32Array {
    if (this.f32) return this.f32;
    const out = new Float32Array(this.rows * this.cols);
    if (this.dtype === 'BF16') bf16ToF32(this.u16!, out);
    else f16ToF32(this.u16!, out);
    return out;
  }
}
