// Float32 GEMV/GEMM: y[t, o] = Σ_i x[t, i] · W[o, i], W row-major [outDim, inDim] (PyTorch layout).
// Rows four at a time, tokens two at a time: 8 accumulators share each weight and input load.

import { dotTail, fma, hsum4 } from './math';

/** Rows [r0, r1) of y[T, outDim]; r0 must be a multiple of 4 unless it is the last row group. */
export function f32_gemm(w: usize, x: usize, y: usize, T: i32, outDim: i32, inDim: i32, r0: i32, r1: i32): void {
  const n4 = inDim & ~3;
  const rowBytes = <usize>inDim * 4;
  let o = r0;
  for (; o + 4 <= r1; o += 4) {
    const w0 = w + <usize>o * rowBytes, w1 = w0 + rowBytes, w2 = w1 + rowBytes, w3 = w2 + rowBytes;
    let t = 0;
    for (; t + 2 <= T; t += 2) {
      const xa = x + <usize>t * rowBytes, xb = xa + rowBytes;
      let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
      let b0 = f32x4.splat(0), b1 = f32x4.splat(0), b2 = f32x4.splat(0), b3 = f32x4.splat(0);
      for (let i = 0; i < n4; i += 4) {
        const off = <usize>i * 4;
        const va = v128.load(xa + off), vb = v128.load(xb + off);
        const v0 = v128.load(w0 + off), v1 = v128.load(w1 + off), v2 = v128.load(w2 + off), v3 = v128.load(w3 + off);
        a0 = fma(v0, va, a0); a1 = fma(v1, va, a1); a2 = fma(v2, va, a2); a3 = fma(v3, va, a3);
        b0 = fma(v0, vb, b0); b1 = fma(v1, vb, b1); b2 = fma(v2, vb, b2); b3 = fma(v3, vb, b3);
      }
      let ra = hsum4(a0, a1, a2, a3), rb = hsum4(b0, b1, b2, b3);
      if (n4 < inDim) {
        ra = f32x4.add(ra, f32x4(dotTail(w0, xa, n4, inDim), dotTail(w1, xa, n4, inDim), dotTail(w2, xa, n4, inDim), dotTail(w3, xa, n4, inDim)));
        rb = f32x4.add(rb, f32x4(dotTail(w0, xb, n4, inDim), dotTail(w1, xb, n4, inDim), dotTail(w2, xb, n4, inDim), dotTail(w3, xb, n4, inDim)));
      }
      v128.store(y + (<usize>t * outDim + o) * 4, ra);
      v128.store(y + (<usize>(t + 1) * outDim + o) * 4, rb);
    }
    for (; t < T; t++) {
      const xa = x + <usize>t * rowBytes;
      let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
      for (let i = 0; i < n4; i += 4) {
        const off = <usize>i * 4;
        const va = v128.load(xa + off);
        a0 = fma(v128.load(w0 + off), va, a0); a1 = fma(v128.load(w1 + off), va, a1);
        a2 = fma(v128.load(w2 + off), va, a2); a3 = fma(v128.load(w3 + off), va, a3);
      }
      let ra = hsum4(a0, a1, a2, a3);
      if (n4 < inDim) {
        ra = f32x4.add(ra, f32x4(dotTail(w0, xa, n4, inDim), dotTail(w1, xa, n4, inDim), dotTail(w2, xa, n4, inDim), dotTail(w3, xa, n4, inDim)));
      }
      v128.store(y + (<usize>t * outDim + o) * 4, ra);
    }
  }
  for (; o < r1; o++) {
    const wr = w + <usize>o * rowBytes;
    for (let t = 0; t < T; t++) {
      const xa = x + <usize>t * rowBytes;
      let a = f32x4.splat(0);
      for (let i = 0; i < n4; i += 4) a = fma(v128.load(wr + <usize>i * 4), v128.load(xa + <usize>i * 4), a);
      const s = f32x4.extract_lane(a, 0) + f32x4.extract_lane(a, 1) + f32x4.extract_lane(a, 2) + f32x4.extract_lane(a, 3);
      store<f32>(y + (<usize>t * outDim + o) * 4, s + dotTail(wr, xa, n4, inDim));
    }
  }
}
