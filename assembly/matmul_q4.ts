// Int4 GEMV/GEMM: y[t, o] = Σ_i x[t, i] · W[o, i] with W in the group-wise int4 layout of
// src/kernels/q4.ts and x quantized on the fly to int8 per group of 32 (like onnxruntime's
// MatMulNBits accuracy_level 4 and llama.cpp's Q8 activations).
//
// Weight layout (per block of 4 output rows, per group g of 32 inputs):
//   nibbles: [outDim/4][G][4 rows][16 bytes]; byte j holds value j (low nibble) and j+16 (high),
//            each stored as q + 8 with q in [-7, 7]
//   scales:  [outDim/4][G][4 rows] f32
// Activation scratch per token, per group: XB bytes of quantized x, then per group an f32 scale
// and an i32 correction 8·Σxq (the weights are stored unsigned, so dot(xq, q+8) - 8·Σxq = dot(xq, q)).
//   relaxed build: 32 × i8 in natural order (fed to i16x8.relaxed_dot_i8x16_i7x16_s, weights are the i7 side)
//   simd128 build: 32 × i16 in the order the nibbles unpack to i16 lanes (see unpack16 below)

/** Activation bytes per group of 32 in this build. */
export const Q4_XB: i32 = ASC_FEATURE_RELAXED_SIMD ? 32 : 64;

/** Quantizes x[T, inDim] to int8 per group: xs[t, g] = absmax / 127, xq = round-half-even(x / xs). */
export function q4_quantize_act(x: usize, T: i32, inDim: i32, G: i32, xq: usize, xs: usize, xc: usize): void {
  for (let t = 0; t < T; t++) {
    const xr = x + <usize>t * inDim * 4;
    for (let g = 0; g < G; g++) {
      const i0 = g * 32;
      const n = min(32, inDim - i0);
      let amax: f32 = 0;
      for (let j = 0; j < n; j++) amax = max(amax, abs(load<f32>(xr + <usize>(i0 + j) * 4)));
      const inv: f32 = amax > 0 ? <f32>127 / amax : 0;
      const gi = t * G + g;
      store<f32>(xs + <usize>gi * 4, amax / <f32>127);
      let sum = 0;
      const dst = xq + <usize>gi * Q4_XB;
      for (let j = 0; j < 32; j++) {
        const v: f32 = j < n ? load<f32>(xr + <usize>(i0 + j) * 4) : 0;
        const qv = <i32>nearest<f32>(v * inv);
        sum += qv;
        if (ASC_FEATURE_RELAXED_SIMD) {
          store<i8>(dst + j, <i8>qv);
        } else {
          // value j sits in i16 vector k, lane l: j = 2l (+1 if k ≥ 2) (+16 if k is odd)
          const hi = j >= 16 ? 1 : 0;
          const jj = j & 15;
          const k = ((jj & 1) << 1) | hi;
          const l = jj >> 1;
          store<i16>(dst + <usize>(k * 16 + l * 2), <i16>qv);
        }
      }
      store<i32>(xc + <usize>gi * 4, sum * 8);
    }
  }
}

// A group of one row, unpacked once and reused for every token: two v128 in the relaxed build
// (codes 0..15 and 16..31 as u8), four in the simd128 build (i16 lanes, see q4_quantize_act).
// @ts-ignore: decorator
@inline function unpackA(w: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return v128.and(w, i8x16.splat(0x0f));
  return v128.and(w, i16x8.splat(0x000f));
}
// @ts-ignore: decorator
@inline function unpackB(w: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return v128.and(i16x8.shr_u(w, 4), i8x16.splat(0x0f));
  return v128.and(i16x8.shr_u(w, 4), i16x8.splat(0x000f));
}
// @ts-ignore: decorator
@inline function unpackC(w: v128): v128 {
  return v128.and(i16x8.shr_u(w, 8), i16x8.splat(0x000f));
}
// @ts-ignore: decorator
@inline function unpackD(w: v128): v128 {
  return i16x8.shr_u(w, 12);
}

/** i32x4 whose lanes sum to Σ_j xq[j] · (q[j] + 8) for one group of one row, from its unpacked parts. */
// @ts-ignore: decorator
@inline function dotU(xp: usize, a: v128, b: v128, c: v128, d: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) {
    return i32x4.extadd_pairwise_i16x8_s(i16x8.add(
      i16x8.relaxed_dot_i8x16_i7x16_s(v128.load(xp), a),
      i16x8.relaxed_dot_i8x16_i7x16_s(v128.load(xp, 16), b)));
  } else {
    let s = i32x4.dot_i16x8_s(v128.load(xp), a);
    s = i32x4.add(s, i32x4.dot_i16x8_s(v128.load(xp, 16), b));
    s = i32x4.add(s, i32x4.dot_i16x8_s(v128.load(xp, 32), c));
    return i32x4.add(s, i32x4.dot_i16x8_s(v128.load(xp, 48), d));
  }
}

// @ts-ignore: decorator
@inline function dotGroup(xp: usize, w: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return dotU(xp, unpackA(w), unpackB(w), w, w);
  return dotU(xp, unpackA(w), unpackB(w), unpackC(w), unpackD(w));
}

/** [Σ lanes of a, Σ b, Σ c, Σ d] */
// @ts-ignore: decorator
@inline function hsum4(a: v128, b: v128, c: v128, d: v128): v128 {
  const ab = i32x4.add(v128.shuffle<i32>(a, b, 0, 4, 1, 5), v128.shuffle<i32>(a, b, 2, 6, 3, 7));
  const cd = i32x4.add(v128.shuffle<i32>(c, d, 0, 4, 1, 5), v128.shuffle<i32>(c, d, 2, 6, 3, 7));
  return i32x4.add(v128.shuffle<i32>(ab, cd, 0, 1, 4, 5), v128.shuffle<i32>(ab, cd, 2, 3, 6, 7));
}

// @ts-ignore: decorator
@inline function fma(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_madd(a, b, c);
  return f32x4.add(f32x4.mul(a, b), c);
}

// @ts-ignore: decorator
@inline function store4(y: usize, o: i32, outDim: i32, v: v128): void {
  if (o + 4 <= outDim) {
    v128.store(y + <usize>o * 4, v);
  } else {
    const p = y + <usize>o * 4;
    store<f32>(p, f32x4.extract_lane(v, 0));
    if (o + 1 < outDim) store<f32>(p, f32x4.extract_lane(v, 1), 4);
    if (o + 2 < outDim) store<f32>(p, f32x4.extract_lane(v, 2), 8);
  }
}

/**
 * Row blocks [b0, b1) of y[T, outDim] = x · Wᵀ, x already quantized by q4_quantize_act.
 * Tokens are taken two at a time so each unpacked weight group serves both.
 */
export function q4_gemm(wq: usize, ws: usize, G: i32, xq: usize, xs: usize, xc: usize, T: i32, y: usize, outDim: i32, b0: i32, b1: i32): void {
  const xStride = <usize>G * Q4_XB;
  for (let b = b0; b < b1; b++) {
    const wBlk = wq + <usize>b * G * 64;
    const sBlk = ws + <usize>b * G * 16;
    let t = 0;
    if (ASC_FEATURE_RELAXED_SIMD) {
      // four tokens per unpacked group: prefill is compute-bound, the unpack is shared
      for (; t + 4 <= T; t += 4) {
        let acc0 = f32x4.splat(0), acc1 = f32x4.splat(0), acc2 = f32x4.splat(0), acc3 = f32x4.splat(0);
        let xp = xq + <usize>t * xStride;
        const sp = xs + <usize>t * G * 4, cp = xc + <usize>t * G * 4;
        const gs = <usize>G * 4;
        for (let g = 0; g < G; g++) {
          const wp = wBlk + <usize>g * 64;
          const w0 = v128.load(wp), w1 = v128.load(wp, 16), w2 = v128.load(wp, 32), w3 = v128.load(wp, 48);
          const a0 = unpackA(w0), b0 = unpackB(w0), a1 = unpackA(w1), b1 = unpackB(w1);
          const a2 = unpackA(w2), b2 = unpackB(w2), a3 = unpackA(w3), b3 = unpackB(w3);
          const sw = v128.load(sBlk + <usize>g * 16);
          const g4 = <usize>g * 4;
          let s0 = hsum4(dotU(xp, a0, b0, w0, w0), dotU(xp, a1, b1, w1, w1), dotU(xp, a2, b2, w2, w2), dotU(xp, a3, b3, w3, w3));
          acc0 = fma(f32x4.convert_i32x4_s(i32x4.sub(s0, v128.load32_splat(cp + g4))), f32x4.mul(sw, v128.load32_splat(sp + g4)), acc0);
          let xp1 = xp + xStride;
          s0 = hsum4(dotU(xp1, a0, b0, w0, w0), dotU(xp1, a1, b1, w1, w1), dotU(xp1, a2, b2, w2, w2), dotU(xp1, a3, b3, w3, w3));
          acc1 = fma(f32x4.convert_i32x4_s(i32x4.sub(s0, v128.load32_splat(cp + gs + g4))), f32x4.mul(sw, v128.load32_splat(sp + gs + g4)), acc1);
          xp1 += xStride;
          s0 = hsum4(dotU(xp1, a0, b0, w0, w0), dotU(xp1, a1, b1, w1, w1), dotU(xp1, a2, b2, w2, w2), dotU(xp1, a3, b3, w3, w3));
          acc2 = fma(f32x4.convert_i32x4_s(i32x4.sub(s0, v128.load32_splat(cp + 2 * gs + g4))), f32x4.mul(sw, v128.load32_splat(sp + 2 * gs + g4)), acc2);
          xp1 += xStride;
          s0 = hsum4(dotU(xp1, a0, b0, w0, w0), dotU(xp1, a1, b1, w1, w1), dotU(xp1, a2, b2, w2, w2), dotU(xp1, a3, b3, w3, w3));
          acc3 = fma(f32x4.convert_i32x4_s(i32x4.sub(s0, v128.load32_splat(cp + 3 * gs + g4))), f32x4.mul(sw, v128.load32_splat(sp + 3 * gs + g4)), acc3);
          xp += Q4_XB;
        }
        store4(y + <usize>t * outDim * 4, b * 4, outDim, acc0);
        store4(y + <usize>(t + 1) * outDim * 4, b * 4, outDim, acc1);
        store4(y + <usize>(t + 2) * outDim * 4, b * 4, outDim, acc2);
        store4(y + <usize>(t + 3) * outDim * 4, b * 4, outDim, acc3);
      }
    }
    for (; t + 2 <= T; t += 2) {
      let acc0 = f32x4.splat(0), acc1 = f32x4.splat(0);
      let xp0 = xq + <usize>t * xStride;
      let xp1 = xp0 + xStride;
      const sp0 = xs + <usize>t * G * 4, cp0 = xc + <usize>t * G * 4;
      const sp1 = sp0 + <usize>G * 4, cp1 = cp0 + <usize>G * 4;
      for (let g = 0; g < G; g++) {
        const wp = wBlk + <usize>g * 64;
        const w0 = v128.load(wp), w1 = v128.load(wp, 16), w2 = v128.load(wp, 32), w3 = v128.load(wp, 48);
        const sw = v128.load(sBlk + <usize>g * 16);
        const g4 = <usize>g * 4;
        let s0: v128, s1: v128;
        if (ASC_FEATURE_RELAXED_SIMD) {
          const a0 = unpackA(w0), b0 = unpackB(w0), a1 = unpackA(w1), b1 = unpackB(w1);
          const a2 = unpackA(w2), b2 = unpackB(w2), a3 = unpackA(w3), b3 = unpackB(w3);
          s0 = hsum4(dotU(xp0, a0, b0, w0, w0), dotU(xp0, a1, b1, w1, w1), dotU(xp0, a2, b2, w2, w2), dotU(xp0, a3, b3, w3, w3));
          s1 = hsum4(dotU(xp1, a0, b0, w0, w0), dotU(xp1, a1, b1, w1, w1), dotU(xp1, a2, b2, w2, w2), dotU(xp1, a3, b3, w3, w3));
        } else {
          s0 = hsum4(dotGroup(xp0, w0), dotGroup(xp0, w1), dotGroup(xp0, w2), dotGroup(xp0, w3));
          s1 = hsum4(dotGroup(xp1, w0), dotGroup(xp1, w1), dotGroup(xp1, w2), dotGroup(xp1, w3));
        }
        s0 = i32x4.sub(s0, v128.load32_splat(cp0 + g4));
        acc0 = fma(f32x4.convert_i32x4_s(s0), f32x4.mul(sw, v128.load32_splat(sp0 + g4)), acc0);
        s1 = i32x4.sub(s1, v128.load32_splat(cp1 + g4));
        acc1 = fma(f32x4.convert_i32x4_s(s1), f32x4.mul(sw, v128.load32_splat(sp1 + g4)), acc1);
        xp0 += Q4_XB;
        xp1 += Q4_XB;
      }
      store4(y + <usize>t * outDim * 4, b * 4, outDim, acc0);
      store4(y + <usize>(t + 1) * outDim * 4, b * 4, outDim, acc1);
    }
    for (; t < T; t++) {
      let acc = f32x4.splat(0);
      let xp = xq + <usize>t * xStride;
      const sp = xs + <usize>t * G * 4, cp = xc + <usize>t * G * 4;
      for (let g = 0; g < G; g++) {
        const wp = wBlk + <usize>g * 64;
        const g4 = <usize>g * 4;
        let s = hsum4(dotGroup(xp, v128.load(wp)), dotGroup(xp, v128.load(wp, 16)), dotGroup(xp, v128.load(wp, 32)), dotGroup(xp, v128.load(wp, 48)));
        s = i32x4.sub(s, v128.load32_splat(cp + g4));
        acc = fma(f32x4.convert_i32x4_s(s), f32x4.mul(v128.load(sBlk + <usize>g * 16), v128.load32_splat(sp + g4)), acc);
        xp += Q4_XB;
      }
      store4(y + <usize>t * outDim * 4, b * 4, outDim, acc);
    }
  }
}
