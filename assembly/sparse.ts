// The gaussian top-k activation of the sparse FFN layers fused with the gated GELU (TS reference:
// src/kernels/sparse.ts), bit for bit: the cutoff's sums in float64 lanes in the reference's
// order, and GELU in float64 with the reference's fastExp (src/kernels/fast_math.ts), whose
// constants and tables the caller passes (FAST_EXP_TABLE), for the ~5% of activations kept.

const EXP_LIMIT: f64 = 100;
const N_OFFSET: i32 = 256 * 256;
const K_MAX: i32 = 160;

/** fastExp(x) of src/kernels/fast_math.ts; `t` is FAST_EXP_TABLE. */
// @ts-ignore: decorator
@inline function fastExp(x: f64, t: usize): f64 {
  if (x != x) return x;
  const c = max(-EXP_LIMIT, min(x, EXP_LIMIT));
  const n = <i32>(c * load<f64>(t) + (<f64>N_OFFSET + 0.5)) - N_OFFSET;
  const r = c - <f64>n * load<f64>(t, 8);
  const pow2 = load<f64>(t + <usize>(3 + (n >> 8) + K_MAX) * 8) * load<f64>(t + <usize>(3 + 2 * K_MAX + 1 + (n & 255)) * 8);
  return pow2 * (1 + r * (1 + r * (1.0 / 2 + r * (1.0 / 6 + r * (1.0 / 24)))));
}

/** geluTanh(x) of src/kernels/elementwise.ts. */
// @ts-ignore: decorator
@inline function gelu64(x: f64, t: usize): f64 {
  return x / (1 + fastExp(-2 * load<f64>(t, 16) * (x + 0.044715 * x * x * x), t));
}

/** gaussianCutoff of src/kernels/sparse.ts for the row of dim floats at g. */
function cutoff(g: usize, dim: i32, k: f64): f64 {
  let s01 = f64x2.splat(0), s23 = f64x2.splat(0);
  let i = 0;
  for (; i + 4 <= dim; i += 4) {
    const v = v128.load(g + <usize>i * 4);
    s01 = f64x2.add(s01, f64x2.promote_low_f32x4(v));
    s23 = f64x2.add(s23, f64x2.promote_low_f32x4(v128.shuffle<i32>(v, v, 2, 3, 2, 3)));
  }
  let s0 = f64x2.extract_lane(s01, 0);
  for (; i < dim; i++) s0 += <f64>load<f32>(g + <usize>i * 4);
  const mean = (s0 + f64x2.extract_lane(s01, 1) + (f64x2.extract_lane(s23, 0) + f64x2.extract_lane(s23, 1))) / <f64>dim;
  const mv = f64x2.splat(mean);
  s01 = f64x2.splat(0);
  s23 = f64x2.splat(0);
  for (i = 0; i + 4 <= dim; i += 4) {
    const v = v128.load(g + <usize>i * 4);
    const d01 = f64x2.sub(f64x2.promote_low_f32x4(v), mv), d23 = f64x2.sub(f64x2.promote_low_f32x4(v128.shuffle<i32>(v, v, 2, 3, 2, 3)), mv);
    s01 = f64x2.add(s01, f64x2.mul(d01, d01));
    s23 = f64x2.add(s23, f64x2.mul(d23, d23));
  }
  s0 = f64x2.extract_lane(s01, 0);
  for (; i < dim; i++) {
    const d = <f64>load<f32>(g + <usize>i * 4) - mean;
    s0 += d * d;
  }
  return mean + Math.sqrt((s0 + f64x2.extract_lane(s01, 1) + (f64x2.extract_lane(s23, 0) + f64x2.extract_lane(s23, 1))) / <f64>dim) * k;
}

/** One element: gate ← gelu(g)·up if g = f32(gate − c) > 0, else max(0, g); returns 1 if kept. */
// @ts-ignore: decorator
@inline function one(gp: usize, up: usize, c: f64, t: usize): i32 {
  const g = <f32>(<f64>load<f32>(gp) - c);
  if (g > 0) {
    store<f32>(gp, <f32>(gelu64(<f64>g, t) * <f64>load<f32>(up)));
    return 1;
  }
  store<f32>(gp, max<f32>(0, g));
  return 0;
}

/**
 * gaussianGeluMul of src/kernels/sparse.ts for rows [r0, r1) of gate and up [rows, dim]; each
 * row's kept count goes to counts[r] (i32).
 */
export function gaussian_gelu_mul_rows(gate: usize, up: usize, dim: i32, k: f64, t: usize, counts: usize, r0: i32, r1: i32): void {
  for (let r = r0; r < r1; r++) {
    const gr = gate + <usize>r * <usize>dim * 4, ur = up + <usize>r * <usize>dim * 4;
    const c = cutoff(gr, dim, k);
    const cv = f64x2.splat(c), zero = f32x4.splat(0);
    let kept = 0, i = 0;
    for (; i + 4 <= dim; i += 4) {
      const o = <usize>i * 4;
      const v = v128.load(gr + o);
      const lo = f32x4.demote_f64x2_zero(f64x2.sub(f64x2.promote_low_f32x4(v), cv));
      const hi = f32x4.demote_f64x2_zero(f64x2.sub(f64x2.promote_low_f32x4(v128.shuffle<i32>(v, v, 2, 3, 2, 3)), cv));
      const g = v128.shuffle<i32>(lo, hi, 0, 1, 4, 5);
      if (v128.any_true(f32x4.gt(g, zero))) {
        for (let j = 0; j < 4; j++) kept += one(gr + o + <usize>j * 4, ur + o + <usize>j * 4, c, t);
      } else v128.store(gr + o, f32x4.max(zero, g)); // all ≤ 0 or NaN: 0, NaN stays NaN
    }
    for (; i < dim; i++) kept += one(gr + <usize>i * 4, ur + <usize>i * 4, c, t);
    store<i32>(counts + <usize>r * 4, kept);
  }
}
