// Int4 GEMV/GEMM: y[t, o] = Σ_i x[t, i] · W[o, i] with W in the group-wise int4 layout of
// src/kernels/q4.ts and x quantized on the fly to int8 per group of 32 (like onnxruntime's
// MatMulNBits accuracy_level 4 and llama.cpp's Q8 activations).
//
// Weight layout in WASM memory: Q4Matrix's nibbles and scales (src/kernels/q4.ts) interleaved
// per group, so decode reads one sequential stream: [outDim/4 blocks][G groups][80 bytes] with
//   bytes 0..63:  4 rows × 16 bytes; byte j holds value j (low nibble) and j+16 (high),
//                 each stored as q + 8 with q in [-7, 7]
//   bytes 64..79: the 4 rows' f32 scales
// Activation scratch per token, per group: XB bytes of quantized x, then per group an f32 scale
// and an i32 correction 8·Σxq (the weights are stored unsigned, so dot(xq, q+8) - 8·Σxq = dot(xq, q)).
//   relaxed build: 32 × i8 in natural order (fed to i16x8.relaxed_dot_i8x16_i7x16_s, weights are the i7 side)
//   simd128 build: 32 × i16 in the order the nibbles unpack to i16 lanes (see unpack16 below)

import { fma } from './math';

// Decode streams every weight byte once from DRAM while doing ~50 SIMD instructions per 80
// bytes, which leaves too few misses in flight for the hardware prefetcher alone (measured on a
// 2-core Xeon VM: 7.6 GB/s per thread against 12.3 for a bare read loop). WebAssembly has no
// prefetch instruction, so the GEMV loop touches (loads one byte of) every cache line PF bytes
// ahead: four groups per iteration span exactly five lines, each touched once. The touches run
// past the rows a thread owns, up to PF + 320 bytes past the weight, so WasmKernels allocates
// that much slack after every int4 weight. (One touch per group, which misses a line in five,
// streamed ~10-15% slower; none at all ~30% slower.)
const PF: usize = 1024;

/** Bytes the GEMV may read past the end of an int4 weight (its touches ahead). */
export const Q4_TOUCH_SLACK: i32 = <i32>PF + 5 * 64;

/** Bytes of one group of a 4-row block: 64 of codes, then 4 f32 scales. */
export const GROUP_BYTES: usize = 80;
let prefetchSink: u32 = 0;

/** Activation bytes per group of 32 in this build. */
export const Q4_XB: i32 = ASC_FEATURE_RELAXED_SIMD ? 32 : 64;

/**
 * Relaxed build: one full group of 32 activations quantized with SIMD, the same arithmetic as
 * the scalar loop below (f32 absmax, inv = 127 / absmax, round half to even): 32 int8 codes,
 * the scale and the correction 8·Σq.
 */
// @ts-ignore: decorator
@inline function quantizeGroup32(src: usize, dst: usize, scale: usize, corr: usize): void {
  const v0 = v128.load(src), v1 = v128.load(src, 16), v2 = v128.load(src, 32), v3 = v128.load(src, 48);
  const v4 = v128.load(src, 64), v5 = v128.load(src, 80), v6 = v128.load(src, 96), v7 = v128.load(src, 112);
  let m = f32x4.max(f32x4.max(f32x4.abs(v0), f32x4.abs(v1)), f32x4.max(f32x4.abs(v2), f32x4.abs(v3)));
  m = f32x4.max(m, f32x4.max(f32x4.max(f32x4.abs(v4), f32x4.abs(v5)), f32x4.max(f32x4.abs(v6), f32x4.abs(v7))));
  const amax = max(max(f32x4.extract_lane(m, 0), f32x4.extract_lane(m, 1)), max(f32x4.extract_lane(m, 2), f32x4.extract_lane(m, 3)));
  const inv: f32 = amax > 0 ? <f32>127 / amax : 0;
  store<f32>(scale, amax / <f32>127);
  const iv = f32x4.splat(inv);
  const q0 = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v0, iv))), q1 = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v1, iv)));
  const q2 = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v2, iv))), q3 = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v3, iv)));
  const q4 = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v4, iv))), q5 = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v5, iv)));
  const q6 = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v6, iv))), q7 = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v7, iv)));
  v128.store(dst, i8x16.narrow_i16x8_s(i16x8.narrow_i32x4_s(q0, q1), i16x8.narrow_i32x4_s(q2, q3)));
  v128.store(dst, i8x16.narrow_i16x8_s(i16x8.narrow_i32x4_s(q4, q5), i16x8.narrow_i32x4_s(q6, q7)), 16);
  const sv = i32x4.add(i32x4.add(i32x4.add(q0, q1), i32x4.add(q2, q3)), i32x4.add(i32x4.add(q4, q5), i32x4.add(q6, q7)));
  const sum = i32x4.extract_lane(sv, 0) + i32x4.extract_lane(sv, 1) + i32x4.extract_lane(sv, 2) + i32x4.extract_lane(sv, 3);
  store<i32>(corr, sum * 8);
}

/** Quantizes x[T, inDim] to int8 per group: xs[t, g] = absmax / 127, xq = round-half-even(x / xs). */
export function q4_quantize_act(x: usize, T: i32, inDim: i32, G: i32, xq: usize, xs: usize, xc: usize): void {
  for (let t = 0; t < T; t++) {
    const xr = x + <usize>t * inDim * 4;
    for (let g = 0; g < G; g++) {
      const i0 = g * 32;
      const n = min(32, inDim - i0);
      if (ASC_FEATURE_RELAXED_SIMD && n == 32) {
        quantizeGroup32(xr + <usize>i0 * 4, xq + <usize>(t * G + g) * Q4_XB, xs + <usize>(t * G + g) * 4, xc + <usize>(t * G + g) * 4);
        continue;
      }
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

/** [Σ lanes of a, Σ b, Σ c, Σ d] in i32 (the f32 one is math.ts hsum4) */
// @ts-ignore: decorator
@inline function hsum4i(a: v128, b: v128, c: v128, d: v128): v128 {
  const ab = i32x4.add(v128.shuffle<i32>(a, b, 0, 4, 1, 5), v128.shuffle<i32>(a, b, 2, 6, 3, 7));
  const cd = i32x4.add(v128.shuffle<i32>(c, d, 0, 4, 1, 5), v128.shuffle<i32>(c, d, 2, 6, 3, 7));
  return i32x4.add(v128.shuffle<i32>(ab, cd, 0, 1, 4, 5), v128.shuffle<i32>(ab, cd, 2, 3, 6, 7));
}

/**
 * Relaxed build: [Σ d0, Σ d1, Σ d2, Σ d3] for four rows' i16x8 dot products of one group.
 * The sums are folded in i16 first (a row's 8 lanes each hold ≤ 2·2·127·15 = 7620, so four
 * of them fit in i16: 30480 < 32767) and widened once, instead of widening every row and
 * transposing i32 vectors: 10 instructions instead of 13 + constant loads.
 */
// @ts-ignore: decorator
@inline function rowSums4(d0: v128, d1: v128, d2: v128, d3: v128): v128 {
  // [r0 r0 | r1 r1 | r0 r0 | r1 r1] (i16 pairs) and the same for rows 2, 3
  const t01 = i16x8.add(v128.shuffle<i32>(d0, d1, 0, 4, 1, 5), v128.shuffle<i32>(d0, d1, 2, 6, 3, 7));
  const t23 = i16x8.add(v128.shuffle<i32>(d2, d3, 0, 4, 1, 5), v128.shuffle<i32>(d2, d3, 2, 6, 3, 7));
  // [r0 r0 | r1 r1 | r2 r2 | r3 r3], then each i16 pair widened and added
  const u = i16x8.add(v128.shuffle<i64>(t01, t23, 0, 2), v128.shuffle<i64>(t01, t23, 1, 3));
  return i32x4.extadd_pairwise_i16x8_s(u);
}

/** Relaxed build: i16x8 partial dot of one group of one row (codes unpacked to a = 0..15, b = 16..31). */
// @ts-ignore: decorator
@inline function dot16(x0: v128, x1: v128, a: v128, b: v128): v128 {
  return i16x8.add(i16x8.relaxed_dot_i8x16_i7x16_s(x0, a), i16x8.relaxed_dot_i8x16_i7x16_s(x1, b));
}

/** Relaxed build, one token: acc + the scaled dot products of one group of a 4-row block. */
// @ts-ignore: decorator
@inline function gemvGroup(wp: usize, xp: usize, sp: usize, cp: usize, acc: v128): v128 {
  const w0 = v128.load(wp), w1 = v128.load(wp, 16), w2 = v128.load(wp, 32), w3 = v128.load(wp, 48);
  const s = dot4rows(xp, unpackA(w0), unpackB(w0), unpackA(w1), unpackB(w1), unpackA(w2), unpackB(w2), unpackA(w3), unpackB(w3));
  return fma(f32x4.convert_i32x4_s(i32x4.sub(s, v128.load32_splat(cp))), f32x4.mul(v128.load(wp, 64), v128.load32_splat(sp)), acc);
}

/** Relaxed build: the four rows' integer dot products of one group, from their unpacked codes. */
// @ts-ignore: decorator
@inline function dot4rows(xp: usize, a0: v128, b0: v128, a1: v128, b1: v128, a2: v128, b2: v128, a3: v128, b3: v128): v128 {
  const x0 = v128.load(xp), x1 = v128.load(xp, 16);
  return rowSums4(dot16(x0, x1, a0, b0), dot16(x0, x1, a1, b1), dot16(x0, x1, a2, b2), dot16(x0, x1, a3, b3));
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

// Batched decode and prefill (relaxed build, T ≥ 2). The GEMV's lanes are one row's inputs,
// so every (row block, token, group) ends in a transposing reduction (rowSums4, 10 of the ~60
// instructions of a group). Here each thread unpacks QB row blocks once per call into a
// scratch whose code vectors hold two rows × 8 inputs ("row pairs": [r0 i..i+7 | r1 i..i+7]),
// and the tokens' codes are laid out as 8 inputs repeated ([x i..i+7 | x i..i+7]), so
// i16x8.relaxed_dot yields [r0 ×4 | r1 ×4] partial sums directly: 4 dots per row pair and
// group add up in i16 (4 · 2 · 15 · 127 = 15240), one shuffle-add gives [r0 r0 r1 r1 r2 r2 r3
// r3] (30480 < 32767) and one widening the 4 rows' sums.
//
// V8 (TurboFan) emits one accumulator's expression tree after another, each tree's loads
// first (it folds no load into a SIMD instruction), so a value shared by several accumulators
// stays live from its first use to its last, and a tree's 8 code vectors are live at once: a
// token's 4 activation vectors (and its scale, correction and the widening's ones) are shared
// by the QB row blocks, the codes loaded where used; the accumulators V8 spills (x64 has 15
// allocatable xmm registers) cost less than reloading the activations per block.
//
// The float part follows the GEMV's order exactly (a token's row is bit-identical alone or
// batched): group g into accumulator g % 4 (the groups after the last full four into
// accumulator 0), combined as (0 + 1) + (2 + 3). Each accumulator is a chain of its own, so
// the four chains run one after another (chain c: groups c, c + 4, ...) with one accumulator
// per row block live.

/** Row blocks (of 4 rows) unpacked together; the activations' loads are shared by them. */
const QB: i32 = 8;
/** Bytes of one group of one row block in the batched scratch: 8 row-pair code vectors. */
const UCODE_BYTES: usize = 128;
/** Bytes of one group of 4 row blocks in the batched scratch: their scales, then their codes. */
const HALF_BYTES: usize = 4 * (UCODE_BYTES + 16);
/** Bytes of one group of QB row blocks in the batched scratch: two halves. */
const UGROUP_BYTES: usize = 2 * HALF_BYTES;
/** Bytes of one group of one token in the batched layout: 4 repeated-code vectors, the correction and the scale splat. */
const XGROUP_BYTES: usize = 96;

/** Most tokens per tile of the batched path. */
const TILE_MAX: i32 = 64;

/** Per-thread scratch q4_gemm wants for G groups (relaxed build, T ≥ 2): QB unpacked row blocks, 4 × QB accumulators per token of a tile, a constant. */
export function q4_gemm_scratch_bytes(G: i32): i32 {
  return ASC_FEATURE_RELAXED_SIMD ? G * <i32>UGROUP_BYTES + TILE_MAX * 512 + 16 : 0;
}

/** Bytes per token of the batched activation layout (q4_tokens_batched), 0 if this build has none. */
export function q4_tokens_bytes(G: i32): i32 {
  return ASC_FEATURE_RELAXED_SIMD ? G * <i32>XGROUP_BYTES : 0;
}

/**
 * Relaxed build: T tokens quantized by q4_quantize_act, laid out for the batched path at dst:
 * per token and group the codes as [x 8i..8i+7 twice] for i = 0..3, then the correction and the
 * scale each in 4 lanes.
 */
export function q4_tokens_batched(xq: usize, xs: usize, xc: usize, T: i32, G: i32, dst: usize): void {
  if (!ASC_FEATURE_RELAXED_SIMD) return;
  const n = T * G;
  for (let i = 0; i < n; i++) {
    const a = v128.load(xq + <usize>i * 32), b = v128.load(xq + <usize>i * 32, 16);
    const d = dst + <usize>i * XGROUP_BYTES;
    v128.store(d, v128.shuffle<i64>(a, a, 0, 0));
    v128.store(d, v128.shuffle<i64>(a, a, 1, 1), 16);
    v128.store(d, v128.shuffle<i64>(b, b, 0, 0), 32);
    v128.store(d, v128.shuffle<i64>(b, b, 1, 1), 48);
    v128.store(d, i32x4.splat(load<i32>(xc + <usize>i * 4)), 64);
    v128.store(d, f32x4.splat(load<f32>(xs + <usize>i * 4)), 80);
  }
}

/** One group of a 4-row block (packed at wp) into its 8 row-pair code vectors at up. */
// @ts-ignore: decorator
@inline function unpackRowPairs(wp: usize, up: usize): void {
  const v0 = v128.load(wp), v1 = v128.load(wp, 16), v2 = v128.load(wp, 32), v3 = v128.load(wp, 48);
  // bytes 0..7 of a row hold codes 0..7 (low nibbles) and 16..23 (high); bytes 8..15: 8..15 and 24..31
  const l01 = v128.shuffle<i64>(v0, v1, 0, 2), h01 = v128.shuffle<i64>(v0, v1, 1, 3);
  const l23 = v128.shuffle<i64>(v2, v3, 0, 2), h23 = v128.shuffle<i64>(v2, v3, 1, 3);
  // vector 2i: rows 0, 1 × inputs 8i..8i+7; vector 2i + 1: rows 2, 3
  v128.store(up, unpackA(l01)); v128.store(up, unpackA(l23), 16);
  v128.store(up, unpackA(h01), 32); v128.store(up, unpackA(h23), 48);
  v128.store(up, unpackB(l01), 64); v128.store(up, unpackB(l23), 80);
  v128.store(up, unpackB(h01), 96); v128.store(up, unpackB(h23), 112);
}

/**
 * acc + one group's scaled dot products of row block q of the unpacked group at up with one
 * token (x0..x3, corr, xScale). Q ∈ u8, u16, u32, u64 stands for q = log2(sizeof<Q>()): a
 * load's offset must be a compile-time constant, and offsets (not pointer adds) keep V8 from
 * spending an instruction on every block's address.
 */
// @ts-ignore: decorator
@inline function batchedGroup<Q>(up: usize, x0: v128, x1: v128, x2: v128, x3: v128, corr: v128, xScale: v128, ones: v128, acc: v128): v128 {
  const q = ctz<usize>(sizeof<Q>()), cp = 64 + q * UCODE_BYTES;
  const d01 = i16x8.add(
    i16x8.add(i16x8.relaxed_dot_i8x16_i7x16_s(x0, v128.load(up, cp)), i16x8.relaxed_dot_i8x16_i7x16_s(x1, v128.load(up, cp + 32))),
    i16x8.add(i16x8.relaxed_dot_i8x16_i7x16_s(x2, v128.load(up, cp + 64)), i16x8.relaxed_dot_i8x16_i7x16_s(x3, v128.load(up, cp + 96))));
  const d23 = i16x8.add(
    i16x8.add(i16x8.relaxed_dot_i8x16_i7x16_s(x0, v128.load(up, cp + 16)), i16x8.relaxed_dot_i8x16_i7x16_s(x1, v128.load(up, cp + 48))),
    i16x8.add(i16x8.relaxed_dot_i8x16_i7x16_s(x2, v128.load(up, cp + 80)), i16x8.relaxed_dot_i8x16_i7x16_s(x3, v128.load(up, cp + 112))));
  // [r0 r0 | r1 r1 | r2 r2 | r3 r3] (i16 pairs), widened
  const u = i16x8.add(v128.shuffle<i32>(d01, d23, 0, 2, 4, 6), v128.shuffle<i32>(d01, d23, 1, 3, 5, 7));
  const s = i32x4.dot_i16x8_s(u, ones);
  return fma(f32x4.convert_i32x4_s(i32x4.sub(s, corr)), f32x4.mul(v128.load(up, q * 16), xScale), acc);
}

/**
 * Relaxed build, one token and one accumulator chain c of the batched path: the unpacked row
 * blocks at ws (4, or 8 if H is u64: two halves of HALF_BYTES per group) times the token's
 * groups c, c + 4, ... at xBase (chain 0 also the groups after the last full four), the 8
 * blocks' sums stored at pp. (A type parameter, not a flag: a branch in the loop made V8
 * compute the first half after it, with every loaded code vector spilled meanwhile.)
 */
// @ts-ignore: decorator
@inline function batchedChain<H>(ws: usize, xBase: usize, G: i32, c: usize, pp: usize, onesAt: usize): void {
  const two = sizeof<H>() == 8;
  const Gf = <usize>(G & ~3);
  let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
  let a4 = f32x4.splat(0), a5 = f32x4.splat(0), a6 = f32x4.splat(0), a7 = f32x4.splat(0);
  let up = ws + c * UGROUP_BYTES, xp = xBase + c * XGROUP_BYTES;
  let upEnd = ws + Gf * UGROUP_BYTES, upStep = 4 * UGROUP_BYTES, xpStep = 4 * XGROUP_BYTES;
  for (;;) {
    for (; up < upEnd; up += upStep, xp += xpStep) {
      const x0 = v128.load(xp), x1 = v128.load(xp, 16), x2 = v128.load(xp, 32), x3 = v128.load(xp, 48);
      const corr = v128.load(xp, 64), xScale = v128.load(xp, 80), ones = v128.load(onesAt);
      a0 = batchedGroup<u8>(up, x0, x1, x2, x3, corr, xScale, ones, a0);
      a1 = batchedGroup<u16>(up, x0, x1, x2, x3, corr, xScale, ones, a1);
      a2 = batchedGroup<u32>(up, x0, x1, x2, x3, corr, xScale, ones, a2);
      a3 = batchedGroup<u64>(up, x0, x1, x2, x3, corr, xScale, ones, a3);
      if (two) {
        const uh = up + HALF_BYTES;
        a4 = batchedGroup<u8>(uh, x0, x1, x2, x3, corr, xScale, ones, a4);
        a5 = batchedGroup<u16>(uh, x0, x1, x2, x3, corr, xScale, ones, a5);
        a6 = batchedGroup<u32>(uh, x0, x1, x2, x3, corr, xScale, ones, a6);
        a7 = batchedGroup<u64>(uh, x0, x1, x2, x3, corr, xScale, ones, a7);
      }
    }
    // chain 0 goes on with the groups after the last full four, one at a time
    if (c != 0 || upStep == UGROUP_BYTES) break;
    upEnd = ws + <usize>G * UGROUP_BYTES; upStep = UGROUP_BYTES; xpStep = XGROUP_BYTES;
  }
  v128.store(pp, a0); v128.store(pp, a1, 16); v128.store(pp, a2, 32); v128.store(pp, a3, 48);
  if (two) { v128.store(pp, a4, 64); v128.store(pp, a5, 80); v128.store(pp, a6, 96); v128.store(pp, a7, 112); }
}

/**
 * Relaxed build, T ≥ 2: row blocks [b0, b1), 8 at a time (a last set of 1-4 takes the 4-block
 * loop; a ragged set repeats its last block), × T tokens in the batched layout at xt
 * (q4_tokens_batched).
 */
function q4GemmBatched(wq: usize, G: i32, xt: usize, T: i32, y: usize, outDim: i32, b0: i32, b1: i32, scratch: usize): void {
  const ws = scratch, part = scratch + <usize>G * UGROUP_BYTES;
  const rowBytes = <usize>G * GROUP_BYTES;
  // i16 ones for the widening, loaded in the loop (V8 would rebuild the constant in 3 instructions)
  const onesAt = part + <usize>TILE_MAX * 512;
  v128.store(onesAt, i16x8.splat(1));
  // Prefill: tokens in tiles of ~192 KiB of activations (they stay in L2 while the row blocks
  // stream past), each tile unpacking the row blocks anew.
  const tile = min(TILE_MAX, max(8, 196608 / (G * <i32>XGROUP_BYTES)));
  let pf: u32 = 0;
  for (let t0 = 0; t0 < T; t0 += tile) for (let b = b0; b < b1; b += QB) {
    const two = b1 - b > QB / 2, nq = two ? QB : QB / 2;
    for (let q = 0; q < nq; q++) {
      let wp = wq + <usize>min(b + q, b1 - 1) * rowBytes;
      const wEnd = wp + rowBytes;
      // block q: scales at (q / 4) · HALF_BYTES + (q % 4) · 16, codes 64 + (q % 4) · 128 after its half
      const h = <usize>(q >> 2) * HALF_BYTES, r = <usize>(q & 3);
      for (let up = ws + h + r * 16; wp < wEnd; wp += GROUP_BYTES, up += UGROUP_BYTES) {
        v128.store(up, v128.load(wp, 64));
        unpackRowPairs(wp, up + 64 + r * (UCODE_BYTES - 16));
      }
    }
    // chain by chain, each over all the tile's tokens: a chain touches a quarter of the
    // unpacked groups, which stay in L1 while the tokens stream past
    const t1 = min(T, t0 + tile);
    // Meanwhile touch the next set's weights, a slice after each chain of a token, so they come
    // from DRAM while this set computes instead of stalling the next unpack (no overlap otherwise).
    let tp = wq + <usize>min(b + QB, b1) * rowBytes;
    const tEnd = wq + <usize>min(b + 2 * QB, b1) * rowBytes;
    const slice = (((tEnd - tp) / <usize>(4 * (t1 - t0))) + 63) & ~<usize>63;
    for (let c: usize = 0; c < 4; c++) {
      for (let t = t0; t < t1; t++) {
        const xBase = xt + <usize>t * G * XGROUP_BYTES, pp = part + <usize>(t - t0) * 512 + c * 128;
        if (two) batchedChain<u64>(ws, xBase, G, c, pp, onesAt);
        else batchedChain<u32>(ws, xBase, G, c, pp, onesAt);
        for (const e = min(tp + slice, tEnd); tp < e; tp += 64) pf |= load<u8>(tp);
      }
    }
    // (chain 0 + chain 1) + (chain 2 + chain 3) per token and row block
    for (let t = t0; t < t1; t++) {
      const yt = y + <usize>t * outDim * 4;
      for (let q = 0; q < QB && b + q < b1; q++) {
        const pq = part + <usize>(t - t0) * 512 + <usize>q * 16;
        const r = f32x4.add(f32x4.add(v128.load(pq), v128.load(pq, 128)), f32x4.add(v128.load(pq, 256), v128.load(pq, 384)));
        store4(yt, (b + q) * 4, outDim, r);
      }
    }
  }
  if (pf == 0xdeadbeef) prefetchSink = pf; // keeps the touch loads; never true for bytes
}

/**
 * Most tokens of the multi-token GEMV (relaxed build): 2..Q4_FUSED_MAX_T tokens take it, more
 * the batched GEMM above. A decode batch is memory-bound at B = 1 and turns compute-bound as B
 * grows. The batched GEMM runs fewer instructions per multiply-add (no per-token fold of four
 * rows) but writes and rereads its unpacked codes and reads a set of row blocks in bursts; the
 * multi-token GEMV streams the weights as the GEMV does, touching lines ahead, with every token's
 * arithmetic between the loads. Measured on a 2-core AMD Zen 5 VM (decode steps of B sequences,
 * whole E2B decoder, builds alternated): B = 2 / 4 / 8 took 242 / 308 / 452 ms through the batched
 * GEMM, 106-112 / 168-207 / 322-392 through this; the batched GEMM with the next set touched
 * during the compute (below) still 298-403 / 438-551 at B = 4 / 8.
 */
export const Q4_FUSED_MAX_T: i32 = 8;

/** Groups of a row block unpacked at a time by the multi-token GEMV (a multiple of 4). */
const CHUNK_G: i32 = 16;
/** Bytes of one unpacked group of a row block: 8 code vectors (the GEMV's a/b per row), the 4 scales. */
const UNPACKED_GROUP: usize = 144;

/** The GEMV's gemvGroup (the same operations in the same order) on a group unpacked at up. */
// @ts-ignore: decorator
@inline function gemvGroupU(up: usize, xp: usize, sp: usize, cp: usize, acc: v128): v128 {
  const s = dot4rows(xp, v128.load(up), v128.load(up, 16), v128.load(up, 32), v128.load(up, 48),
    v128.load(up, 64), v128.load(up, 80), v128.load(up, 96), v128.load(up, 112));
  return fma(f32x4.convert_i32x4_s(i32x4.sub(s, v128.load32_splat(cp))), f32x4.mul(v128.load(up, 128), v128.load32_splat(sp)), acc);
}

/**
 * Relaxed build, 2 ≤ T ≤ Q4_FUSED_MAX_T tokens (quantized by q4_quantize_act, plain layout): the
 * decode GEMV with each row block unpacked once for all tokens, CHUNK_G groups at a time into the
 * thread's scratch (2.3 KB, stays in L1; the unpack touches the weights PF ahead as the GEMV
 * does), then every token runs the GEMV's loop over the chunk with code loads in place of the
 * unpack. Each token's four accumulators (group g into g % 4, the groups after the last full
 * four into 0, combined (0 + 1) + (2 + 3)) are the GEMV's, kept in the scratch between chunks,
 * so every row is bit-identical to the GEMV's.
 */
function q4GemvMulti(wq: usize, G: i32, xq: usize, xs: usize, xc: usize, T: i32, y: usize, outDim: i32, b0: i32, b1: i32, scratch: usize): void {
  const xStride = <usize>G * Q4_XB, gStride = <usize>G * 4;
  const acc = scratch, ub = scratch + <usize>T * 64;
  const Gf = G & ~3;
  let pf: u32 = 0;
  for (let b = b0; b < b1; b++) {
    const wBlk = wq + <usize>b * G * GROUP_BYTES;
    for (let i = 0; i < T * 4; i++) v128.store(acc + <usize>i * 16, f32x4.splat(0));
    for (let g0 = 0; g0 < G; g0 += CHUNK_G) {
      const n = min(CHUNK_G, G - g0);
      let wp = wBlk + <usize>g0 * GROUP_BYTES, up = ub;
      for (let i = 0; i < n; i++, wp += GROUP_BYTES, up += UNPACKED_GROUP) {
        pf |= load<u8>(wp + PF) | load<u8>(wp + PF + 64);
        const w0 = v128.load(wp), w1 = v128.load(wp, 16), w2 = v128.load(wp, 32), w3 = v128.load(wp, 48);
        v128.store(up, unpackA(w0)); v128.store(up, unpackB(w0), 16);
        v128.store(up, unpackA(w1), 32); v128.store(up, unpackB(w1), 48);
        v128.store(up, unpackA(w2), 64); v128.store(up, unpackB(w2), 80);
        v128.store(up, unpackA(w3), 96); v128.store(up, unpackB(w3), 112);
        v128.store(up, v128.load(wp, 64), 128);
      }
      // groups of this chunk in full fours (g < Gf; g0 and Gf are multiples of 4), then single ones
      const nf = min(n, max(0, Gf - g0));
      for (let t = 0; t < T; t++) {
        const ap = acc + <usize>t * 64;
        let a0 = v128.load(ap), a1 = v128.load(ap, 16), a2 = v128.load(ap, 32), a3 = v128.load(ap, 48);
        let xp = xq + <usize>t * xStride + <usize>g0 * Q4_XB;
        let sp = xs + <usize>t * gStride + <usize>g0 * 4;
        let cp = xc + <usize>t * gStride + <usize>g0 * 4;
        up = ub;
        const uEnd4 = ub + <usize>nf * UNPACKED_GROUP, uEnd = ub + <usize>n * UNPACKED_GROUP;
        for (; up < uEnd4; up += 4 * UNPACKED_GROUP) {
          a0 = gemvGroupU(up, xp, sp, cp, a0);
          a1 = gemvGroupU(up + UNPACKED_GROUP, xp + Q4_XB, sp + 4, cp + 4, a1);
          a2 = gemvGroupU(up + 2 * UNPACKED_GROUP, xp + 2 * Q4_XB, sp + 8, cp + 8, a2);
          a3 = gemvGroupU(up + 3 * UNPACKED_GROUP, xp + 3 * Q4_XB, sp + 12, cp + 12, a3);
          xp += 4 * Q4_XB; sp += 16; cp += 16;
        }
        for (; up < uEnd; up += UNPACKED_GROUP) {
          a0 = gemvGroupU(up, xp, sp, cp, a0);
          xp += Q4_XB; sp += 4; cp += 4;
        }
        v128.store(ap, a0); v128.store(ap, a1, 16); v128.store(ap, a2, 32); v128.store(ap, a3, 48);
      }
    }
    for (let t = 0; t < T; t++) {
      const ap = acc + <usize>t * 64;
      store4(y + <usize>t * outDim * 4, b * 4, outDim, f32x4.add(f32x4.add(v128.load(ap), v128.load(ap, 16)), f32x4.add(v128.load(ap, 32), v128.load(ap, 48))));
    }
  }
  if (pf == 0xdeadbeef) prefetchSink = pf; // keeps the touch loads; never true for bytes
}

/**
 * Row blocks [b0, b1) of y[T, outDim] = x · Wᵀ, x already quantized by q4_quantize_act.
 * Batched decode and prefill (relaxed build, T ≥ 2, `scratch` holding q4_gemm_scratch_bytes(G)):
 * q4GemmBatched, with x at xq in the batched layout (q4_tokens_batched; xs, xc unused).
 * SIMD128 build: tokens two at a time so each unpacked weight group serves both. One token is
 * the decode GEMV (and every relaxed-build call without a scratch).
 */
export function q4_gemm(wq: usize, G: i32, xq: usize, xs: usize, xc: usize, T: i32, y: usize, outDim: i32, b0: i32, b1: i32, scratch: usize = 0): void {
  const xStride = <usize>G * Q4_XB;
  if (ASC_FEATURE_RELAXED_SIMD && T >= 2 && scratch != 0) {
    if (T <= Q4_FUSED_MAX_T) q4GemvMulti(wq, G, xq, xs, xc, T, y, outDim, b0, b1, scratch);
    else q4GemmBatched(wq, G, xq, T, y, outDim, b0, b1, scratch);
    return;
  }
  for (let b = b0; b < b1; b++) {
    const wBlk = wq + <usize>b * G * GROUP_BYTES;
    let t = 0;
    // SIMD128: two tokens per unpacked group.
    if (!ASC_FEATURE_RELAXED_SIMD) for (; t + 2 <= T; t += 2) {
      let acc0 = f32x4.splat(0), acc1 = f32x4.splat(0);
      let xp0 = xq + <usize>t * xStride;
      let xp1 = xp0 + xStride;
      const sp0 = xs + <usize>t * G * 4, cp0 = xc + <usize>t * G * 4;
      const sp1 = sp0 + <usize>G * 4, cp1 = cp0 + <usize>G * 4;
      for (let g = 0; g < G; g++) {
        const wp = wBlk + <usize>g * GROUP_BYTES;
        const w0 = v128.load(wp), w1 = v128.load(wp, 16), w2 = v128.load(wp, 32), w3 = v128.load(wp, 48);
        const sw = v128.load(wp, 64);
        const g4 = <usize>g * 4;
        let s0 = hsum4i(dotGroup(xp0, w0), dotGroup(xp0, w1), dotGroup(xp0, w2), dotGroup(xp0, w3));
        let s1 = hsum4i(dotGroup(xp1, w0), dotGroup(xp1, w1), dotGroup(xp1, w2), dotGroup(xp1, w3));
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
      let sp = xs + <usize>t * G * 4, cp = xc + <usize>t * G * 4;
      if (ASC_FEATURE_RELAXED_SIMD) {
        // decode (one token): pointers step through the groups; this loop is the GEMV
        const wEnd = wBlk + <usize>G * GROUP_BYTES;
        let pf: u32 = 0;
        let wp = wBlk;
        // One accumulator per group of the iteration: with a single chain, binaryen nests the
        // four groups into one expression evaluated last-group-first, which keeps every loaded
        // vector live at once and made V8 spill ~40 registers per iteration.
        let acc1 = f32x4.splat(0), acc2 = f32x4.splat(0), acc3 = f32x4.splat(0);
        // four groups (320 bytes = 5 cache lines) per iteration, each line touched once, PF ahead
        for (; wp + 4 * GROUP_BYTES <= wEnd; wp += 4 * GROUP_BYTES) {
          pf |= load<u8>(wp + PF) | load<u8>(wp + PF + 64) | load<u8>(wp + PF + 128) | load<u8>(wp + PF + 192) | load<u8>(wp + PF + 256);
          acc = gemvGroup(wp, xp, sp, cp, acc);
          acc1 = gemvGroup(wp + GROUP_BYTES, xp + Q4_XB, sp + 4, cp + 4, acc1);
          acc2 = gemvGroup(wp + 2 * GROUP_BYTES, xp + 2 * Q4_XB, sp + 8, cp + 8, acc2);
          acc3 = gemvGroup(wp + 3 * GROUP_BYTES, xp + 3 * Q4_XB, sp + 12, cp + 12, acc3);
          xp += 4 * Q4_XB; sp += 16; cp += 16;
        }
        for (; wp < wEnd; wp += GROUP_BYTES) {
          pf |= load<u8>(wp + PF);
          acc = gemvGroup(wp, xp, sp, cp, acc);
          xp += Q4_XB; sp += 4; cp += 4;
        }
        acc = f32x4.add(f32x4.add(acc, acc1), f32x4.add(acc2, acc3));
        if (pf == 0xdeadbeef) prefetchSink = pf; // keeps the touch loads; never true for bytes
      } else {
        for (let g = 0; g < G; g++) {
          const wp = wBlk + <usize>g * GROUP_BYTES;
          const g4 = <usize>g * 4;
          let s = hsum4i(dotGroup(xp, v128.load(wp)), dotGroup(xp, v128.load(wp, 16)), dotGroup(xp, v128.load(wp, 32)), dotGroup(xp, v128.load(wp, 48)));
          s = i32x4.sub(s, v128.load32_splat(cp + g4));
          acc = fma(f32x4.convert_i32x4_s(s), f32x4.mul(v128.load(wp, 64), v128.load32_splat(sp + g4)), acc);
          xp += Q4_XB;
        }
      }
      store4(y + <usize>t * outDim * 4, b * 4, outDim, acc);
    }
  }
}
