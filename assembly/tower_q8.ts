// Per-channel int8 GEMM for the audio/vision towers (TS reference: src/kernels/q8.ts q8Linear):
// y[t, o] = Σ_i x[t, i] · (s_o · q[o, i]), codes int8 row-major [outDim, inDim], scales f32 [outDim].
//
// The towers multiply many rows of x (hundreds of audio frames, thousands of pixels) by each
// weight, so PANEL_ROWS rows are dequantized once into a float32 panel (per-thread scratch) and
// a float32 GEMM runs over it, TOKEN_BLOCK tokens at a time so the x block and the panel stay in
// cache while every row of the panel passes over them. Micro-kernel: 4 rows × 2 tokens, 8
// accumulators sharing each load (as assembly/matmul_f32.ts).

import { dotTail, fma, hsum4 } from './math';

const PANEL_ROWS: i32 = 16;
const TOKEN_BLOCK: i32 = 16;

/** Bytes of float32 panel one thread needs for a weight with `inDim` inputs. */
export function q8_panel_bytes(inDim: i32): i32 {
  return PANEL_ROWS * ((inDim + 3) & ~3) * 4;
}

/** Dequantizes one row: dst[i] = s · q[i] (float32), zero-padded to a multiple of 4. */
function dequantRow(q: usize, s: f32, dst: usize, n: i32): void {
  const vs = f32x4.splat(s);
  let i = 0;
  for (; i + 16 <= n; i += 16) {
    const c = v128.load(q + <usize>i);
    const lo = i16x8.extend_low_i8x16_s(c), hi = i16x8.extend_high_i8x16_s(c);
    const d = dst + <usize>i * 4;
    v128.store(d, f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(lo)), vs));
    v128.store(d + 16, f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(lo)), vs));
    v128.store(d + 32, f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(hi)), vs));
    v128.store(d + 48, f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(hi)), vs));
  }
  for (; i < n; i++) store<f32>(dst + <usize>i * 4, <f32>load<i8>(q + <usize>i) * s);
  for (; i & 3; i++) store<f32>(dst + <usize>i * 4, 0);
}

/**
 * Rows [r0, r1) of y[T, outDim]. `panel`: this thread's q8_panel_bytes(inDim) of scratch.
 * x rows are inDim floats apart; the panel's rows are inDim rounded up to 4.
 */
export function q8_gemm(codes: usize, scales: usize, x: usize, y: usize, T: i32, outDim: i32, inDim: i32, r0: i32, r1: i32, panel: usize): void {
  const n4 = inDim & ~3;
  const xRow = <usize>inDim * 4, pRow = <usize>((inDim + 3) & ~3) * 4;
  for (let p0 = r0; p0 < r1; p0 += PANEL_ROWS) {
    const nr = min(PANEL_ROWS, r1 - p0);
    for (let r = 0; r < nr; r++) {
      const o = p0 + r;
      dequantRow(codes + <usize>o * <usize>inDim, load<f32>(scales + <usize>o * 4), panel + <usize>r * pRow, inDim);
    }
    for (let t0 = 0; t0 < T; t0 += TOKEN_BLOCK) {
      const t1 = min(T, t0 + TOKEN_BLOCK);
      let r = 0;
      for (; r + 4 <= nr; r += 4) {
        const w0 = panel + <usize>r * pRow, w1 = w0 + pRow, w2 = w1 + pRow, w3 = w2 + pRow;
        const yo = <usize>(p0 + r) * 4;
        let t = t0;
        for (; t + 2 <= t1; t += 2) {
          const xa = x + <usize>t * xRow, xb = xa + xRow;
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
          v128.store(y + <usize>t * <usize>outDim * 4 + yo, ra);
          v128.store(y + <usize>(t + 1) * <usize>outDim * 4 + yo, rb);
        }
        for (; t < t1; t++) {
          const xa = x + <usize>t * xRow;
          let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
          for (let i = 0; i < n4; i += 4) {
            const off = <usize>i * 4;
            const va = v128.load(xa + off);
            a0 = fma(v128.load(w0 + off), va, a0); a1 = fma(v128.load(w1 + off), va, a1);
            a2 = fma(v128.load(w2 + off), va, a2); a3 = fma(v128.load(w3 + off), va, a3);
          }
          let ra = hsum4(a0, a1, a2, a3);
          if (n4 < inDim) ra = f32x4.add(ra, f32x4(dotTail(w0, xa, n4, inDim), dotTail(w1, xa, n4, inDim), dotTail(w2, xa, n4, inDim), dotTail(w3, xa, n4, inDim)));
          v128.store(y + <usize>t * <usize>outDim * 4 + yo, ra);
        }
      }
      for (; r < nr; r++) {
        const wr = panel + <usize>r * pRow, o = p0 + r;
        for (let t = t0; t < t1; t++) {
          const xa = x + <usize>t * xRow;
          let a = f32x4.splat(0);
          for (let i = 0; i < n4; i += 4) a = fma(v128.load(wr + <usize>i * 4), v128.load(xa + <usize>i * 4), a);
          const s = f32x4.extract_lane(a, 0) + f32x4.extract_lane(a, 1) + f32x4.extract_lane(a, 2) + f32x4.extract_lane(a, 3);
          store<f32>(y + (<usize>t * <usize>outDim + <usize>o) * 4, s + dotTail(wr, xa, n4, inDim));
        }
      }
    }
  }
}
