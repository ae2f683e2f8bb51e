/**
 * Rotary position embedding of q or k rows with given cos/sin tables, the reference the WASM
 * kernel of assembly/rope.ts reproduces bit for bit (Kernels.rowOps); src/model/rope.ts builds
 * the tables and explains the layout.
 */

/**
 * Rotates x [T, numHeads·d] in place with the half-split layout: row t's pairs (i, i + d/2) of
 * every head by the angle whose cos/sin are cos[t·d/2 + i], sin[t·d/2 + i] (float32 tables):
 * x·cos + rotate_half(x)·sin, each value one float64 expression rounded once.
 */
export function ropeRows(x: Float32Array, cos: Float32Array, sin: Float32Array, T: number, numHeads: number, headDim: number): void {
  const d = headDim, half = d / 2;
  for (let t = 0; t < T; t++) {
    for (let i = 0; i < half; i++) {
      const c = cos[t * half + i], s = sin[t * half + i];
      for (let h = 0; h < numHeads; h++) {
        const o = (t * numHeads + h) * d;
        const x1 = x[o + i], x2 = x[o + half + i];
        // x·cos + rotate_half(x)·sin, rotate_half(x) = [-x2, x1]
        x[o + i] = x1 * c - x2 * s;
        x[o + half + i] = x2 * c + x1 * s;
      }
    }
  }
}
