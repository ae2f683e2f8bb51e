/**
 * Rotary position embedding, default (unscaled) flavour with the half-split `rotate_half`
 * layout of Hugging Face: dims [0, d/2) pair with [d/2, d) [modeling_gemma3n.py, rotate_half].
 * Gemma 3n uses two bases: rope_local_base_freq on sliding layers, rope_theta on full ones.
 * Frequencies and angles are rounded to f32 as the reference computes them.
 */
export class RotaryEmbedding {
  /** inv_freq[i] = 1 / base^(2i/d), i < d/2. */
  readonly invFreq: Float32Array;

  constructor(readonly headDim: number, readonly base: number) {
    const half = headDim / 2;
    this.invFreq = new Float32Array(half);
    for (let i = 0; i < half; i++) this.invFreq[i] = 1 / Math.fround(Math.pow(base, Math.fround((2 * i) / headDim)));
  }

  /** Rotates x [T, numHeads*headDim] in place; row t has absolute position pos0 + t. */
  apply(x: Float32Array, T: number, numHeads: number, pos0: number): void {
    const d = this.headDim, half = d / 2;
    for (let t = 0; t < T; t++) {
      const pos = pos0 + t;
      for (let i = 0; i < half; i++) {
        const angle = Math.fround(pos * this.invFreq[i]);
        const cos = Math.fround(Math.cos(angle)), sin = Math.fround(Math.sin(angle));
        for (let h = 0; h < numHeads; h++) {
          const o = (t * numHeads + h) * d;
          const x1 = x[o + i], x2 = x[o + half + i];
          // x·cos + rotate_half(x)·sin, rotate_half(x) = [-x2, x1]
          x[o + i] = x1 * cos - x2 * sin;
          x[o + half + i] = x2 * cos + x1 * sin;
        }
      }
    }
  }
}
