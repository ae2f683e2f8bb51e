// Row-wise float math of the decoder that the model used to run in JavaScript (TS reference:
// src/kernels/norm.ts): RMSNorm and the AltUp stream mixes. Each kernel reproduces its
// TypeScript twin BIT FOR BIT, so the WASM path keeps the reference's numerics: where the
// twin accumulates in float64 (JavaScript numbers) the kernel does too, in f64x2 lanes and in
// the same order; a single float32 operation whose float64 result JavaScript rounds once on the
// store (a product or sum of two float32 values) is the same float32 operation here.

/** Σ x[i]·y[i] for i < n in float64, as four partial sums (i mod 4) added as (s0 + s1) + (s2 + s3) at the end, like src/kernels/norm.ts dot. */
// @ts-ignore: decorator
@inline function dot64(x: usize, y: usize, n: i32): f64 {
  let s01 = f64x2.splat(0), s23 = f64x2.splat(0);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const a = v128.load(x + <usize>i * 4), b = v128.load(y + <usize>i * 4);
    s01 = f64x2.add(s01, f64x2.mul(f64x2.promote_low_f32x4(a), f64x2.promote_low_f32x4(b)));
    s23 = f64x2.add(s23, f64x2.mul(f64x2.promote_low_f32x4(v128.shuffle<i32>(a, a, 2, 3, 2, 3)), f64x2.promote_low_f32x4(v128.shuffle<i32>(b, b, 2, 3, 2, 3))));
  }
  let s0 = f64x2.extract_lane(s01, 0);
  for (; i < n; i++) s0 += <f64>load<f32>(x + <usize>i * 4) * <f64>load<f32>(y + <usize>i * 4);
  return s0 + f64x2.extract_lane(s01, 1) + (f64x2.extract_lane(s23, 0) + f64x2.extract_lane(s23, 1));
}

/** dot64 for the caller (the AltUp router): Σ x[i]·y[i], i < n. */
export function dot_f64(x: usize, y: usize, n: i32): f64 {
  return dot64(x, y, n);
}

/**
 * Gemma 3n RMSNorm of `rows` rows of `dim`: out = x · (mean(x²) + eps)^-½ · w (w = 0: no weight),
 * out may be x.
 */
export function rms_norm(x: usize, w: usize, rows: i32, dim: i32, eps: f64, out: usize): void {
  for (let r = 0; r < rows; r++) {
    const xr = x + <usize>r * dim * 4, or = out + <usize>r * dim * 4;
    const ss = dot64(xr, xr, dim);
    const inv = <f32>(1.0 / Math.sqrt(<f64><f32>(<f64><f32>(ss / dim) + eps)));
    const iv = f32x4.splat(inv);
    let i = 0;
    if (w != 0) {
      for (; i + 4 <= dim; i += 4) v128.store(or + <usize>i * 4, f32x4.mul(f32x4.mul(v128.load(xr + <usize>i * 4), iv), v128.load(w + <usize>i * 4)));
      for (; i < dim; i++) store<f32>(or + <usize>i * 4, load<f32>(xr + <usize>i * 4) * inv * load<f32>(w + <usize>i * 4));
    } else {
      for (; i + 4 <= dim; i += 4) v128.store(or + <usize>i * 4, f32x4.mul(v128.load(xr + <usize>i * 4), iv));
      for (; i < dim; i++) store<f32>(or + <usize>i * 4, load<f32>(xr + <usize>i * 4) * inv);
    }
  }
}
