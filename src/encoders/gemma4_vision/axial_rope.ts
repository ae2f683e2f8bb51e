/**
 * The vision tower's 2-D RoPE (`rope_type: axial`) [modeling_gemma4.py, Gemma4VisionRotaryEmbedding
 * and apply_multidimensional_rope]. The head is cut in two halves: channels [0, hd/2) rotate
 * with the patch's x (column), [hd/2, hd) with its y (row); inside each half, rotate_half pairs
 * channel j with j + hd/4:
 *
 *   inv_freq_i = θ^(−2i/(hd/2)),  i < hd/4
 *   cos = cat(cos(x·f), cos(x·f), cos(y·f), cos(y·f)),  sin likewise
 *
 * Angles are float32 products of the position and the float32 inv_freq, as in the reference.
 */
export class AxialRope {
  readonly invFreq: Float32Array;
  private readonly quarter: number;

  constructor(readonly headDim: number, theta: number) {
    this.quarter = headDim / 4;
    this.invFreq = new Float32Array(this.quarter);
    const half = headDim / 2;
    for (let i = 0; i < this.quarter; i++) this.invFreq[i] = Math.fround(1 / Math.fround(theta ** Math.fround((2 * i) / half)));
  }

  /** cos/sin tables [N, hd] for N patches with (x, y) positions (padding rows keep their −1, as the reference). */
  tables(positions: Int32Array, N: number): { cos: Float32Array; sin: Float32Array } {
    const D = this.headDim, Q = this.quarter;
    const cos = new Float32Array(N * D), sin = new Float32Array(N * D);
    for (let n = 0; n < N; n++) {
      const x = positions[2 * n], y = positions[2 * n + 1];
      for (let i = 0; i < Q; i++) {
        const ax = Math.fround(x * this.invFreq[i]), ay = Math.fround(y * this.invFreq[i]);
        const cx = Math.fround(Math.cos(ax)), sx = Math.fround(Math.sin(ax));
        const cy = Math.fround(Math.cos(ay)), sy = Math.fround(Math.sin(ay));
        const o = n * D;
        cos[o + i] = cx; cos[o + Q + i] = cx; cos[o + 2 * Q + i] = cy; cos[o + 3 * Q + i] = cy;
        sin[o + i] = sx; sin[o + Q + i] = sx; sin[o + 2 * Q + i] = sy; sin[o + 3 * Q + i] = sy;
      }
    }
    return { cos, sin };
  }

  /** Rotates x [N, heads, hd] in place with the tables of `tables()`. */
  apply(x: Float32Array, N: number, heads: number, cos: Float32Array, sin: Float32Array): void {
    const D = this.headDim, Q = this.quarter;
    for (let n = 0; n < N; n++) {
      const t = n * D;
      for (let h = 0; h < heads; h++) {
        const o = (n * heads + h) * D;
        for (let half = 0; half < 2; half++) {
          const b = half * 2 * Q;
          for (let i = 0; i < Q; i++) {
            const a = x[o + b + i], c = x[o + b + Q + i];
            x[o + b + i] = Math.fround(a * cos[t + b + i]) - Math.fround(c * sin[t + b + i]);
            x[o + b + Q + i] = Math.fround(c * cos[t + b + Q + i]) + Math.fround(a * sin[t + b + Q + i]);
          }
        }
      }
    }
  }
}
