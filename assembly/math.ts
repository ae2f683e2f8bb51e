// Vector math shared by the kernels.

/** a·b + c in four f32 lanes, fused where the build has Relaxed SIMD (rounding may then differ by an ulp). */
// @ts-ignore: decorator
@inline export function fma(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_madd(a, b, c);
  return f32x4.add(f32x4.mul(a, b), c);
}

/** [Σ lanes of a, Σ b, Σ c, Σ d] (f32): four dot products' partial sums reduced and transposed at once. */
// @ts-ignore: decorator
@inline export function hsum4(a: v128, b: v128, c: v128, d: v128): v128 {
  const ab = f32x4.add(v128.shuffle<f32>(a, b, 0, 4, 1, 5), v128.shuffle<f32>(a, b, 2, 6, 3, 7));
  const cd = f32x4.add(v128.shuffle<f32>(c, d, 0, 4, 1, 5), v128.shuffle<f32>(c, d, 2, 6, 3, 7));
  return f32x4.add(v128.shuffle<f32>(ab, cd, 0, 1, 4, 5), v128.shuffle<f32>(ab, cd, 2, 3, 6, 7));
}

/** Σ w[i]·x[i] for i in [i0, n), scalar: the tail after the SIMD loop. */
// @ts-ignore: decorator
@inline export function dotTail(w: usize, x: usize, i0: i32, n: i32): f32 {
  let s: f32 = 0;
  for (let i = i0; i < n; i++) s += load<f32>(w + <usize>i * 4) * load<f32>(x + <usize>i * 4);
  return s;
}

/**
 * e^x for four lanes, to ~1 ulp (float32): x = n·ln2 + r with |r| ≤ ln2/2, e^r by its degree-6
 * Taylor polynomial (error < 2e-7 relative), times 2^n built in the exponent bits. Arguments
 * below -87 (where e^x is under float32's normal range) give 0, above 88 they give e^88; NaN
 * stays NaN.
 */
// @ts-ignore: decorator
@inline export function exp4(x: v128): v128 {
  const under = f32x4.lt(x, f32x4.splat(-87));
  x = f32x4.min(f32x4.max(x, f32x4.splat(-87)), f32x4.splat(88));
  const n = f32x4.nearest(f32x4.mul(x, f32x4.splat(1.44269504)));
  const r = f32x4.sub(f32x4.sub(x, f32x4.mul(n, f32x4.splat(0.693145752))), f32x4.mul(n, f32x4.splat(1.42860677e-6)));
  let p = f32x4.add(f32x4.mul(r, f32x4.splat(1.0 / 720)), f32x4.splat(1.0 / 120));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(1.0 / 24));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(1.0 / 6));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(0.5));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(1));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(1));
  const scale = i32x4.shl(i32x4.add(i32x4.trunc_sat_f32x4_s(n), i32x4.splat(127)), 23);
  return v128.andnot(f32x4.mul(p, scale), under);
}

