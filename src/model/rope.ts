/**
 * Rotary position embedding, default (unscaled) flavour with the half-split `rotate_half`
 * layout of Hugging Face: dims [0, d/2) pair with [d/2, d) [modeling_gemma3n.py, rotate_half].
 * Gemma 3n uses two bases: rope_local_base_freq on sliding layers, rope_theta on full ones.
 * Frequencies and angles are rounded to f32 as the reference computes them.
 */
import type { RowOps } from '../kernels/kernels.js';
import { tsRowOps } from '../kernels/row_ops.js';

export class RotaryEmbedding {
  /** inv_freq[i] = 1 / base^(2i/d), i < d/2 (0 past the rotated pairs: those channels pass through). */
  readonly invFreq: Float32Array;

  /**
   * `rotatedPairs` < d/2 is Gemma 4's proportional ("p-RoPE") flavour on full layers: only the
   * first int(p·d/2) pairs (i, i + d/2) rotate, with frequencies over the FULL head size
   * [modeling_rope_utils.py, _compute_proportional_rope_parameters].
   */
  constructor(readonly headDim: number, readonly base: number, rotatedPairs = headDim / 2) {
    const half = headDim / 2;
    this.invFreq = new Float32Array(half);
    for (let i = 0; i < Math.min(half, rotatedPairs); i++) this.invFreq[i] = 1 / Math.fround(Math.pow(base, Math.fround((2 * i) / headDim)));
  }

  /**
   * cos/sin of the angles of the rows' positions, [T, d/2]: q and k of every layer with this base
   * share them, so they are computed once per step (the positions of the last call are kept).
   */
  private tablePositions = new Int32Array(0);
  private cos = new Float32Array(0);
  private sin = new Float32Array(0);

  private angles(positions: ArrayLike<number>): void {
    const T = positions.length, half = this.headDim / 2;
    const kept = this.tablePositions;
    if (kept.length === T) {
      let same = true;
      for (let t = 0; t < T && same; t++) same = kept[t] === positions[t];
      if (same) return;
    }
    if (this.cos.length !== T * half) {
      this.cos = new Float32Array(T * half);
      this.sin = new Float32Array(T * half);
    }
    for (let t = 0; t < T; t++) {
      for (let i = 0; i < half; i++) {
        const angle = Math.fround(positions[t] * this.invFreq[i]);
        this.cos[t * half + i] = Math.cos(angle);
        this.sin[t * half + i] = Math.sin(angle);
      }
    }
    this.tablePositions = Int32Array.from(positions);
  }

  /** Rotates x [T, numHeads*headDim] in place; row t has absolute position pos0 + t. */
  apply(x: Float32Array, T: number, numHeads: number, pos0: number): void {
    const positions = new Int32Array(T);
    for (let t = 0; t < T; t++) positions[t] = pos0 + t;
    this.applyRows(x, positions, numHeads);
  }

  /**
   * Rotates x [T, numHeads*headDim] in place, row t at absolute position positions[t]: a batched
   * step's rows, which belong to several sequences at their own positions, in one call. `ops`:
   * the kernels' row ops (WASM: assembly/rope.ts), bit for bit the TypeScript ones.
   */
  applyRows(x: Float32Array, positions: ArrayLike<number>, numHeads: number, ops: Pick<RowOps, 'rope'> = tsRowOps): void {
    this.angles(positions);
    ops.rope(x, this.cos, this.sin, positions.length, numHeads, this.headDim);
  }
}
