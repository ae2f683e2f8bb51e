// The decoder's residual adds and per-channel scales (TS reference: src/kernels/residual.ts),
// bit for bit as assembly/norm.ts explains: a sum of two float32 values rounded to float32 is
// the float32 add; the three-way residual is summed and scaled in float64 lanes and rounded once.

/** x[k·n + i] += y[i] for i < n, k < times (y added to `times` consecutive blocks of x). */
export function add_repeated(x: usize, y: usize, n: i32, times: i32): void {
  for (let k = 0; k < times; k++) {
    const xb = x + <usize>k * <usize>n * 4;
    let i = 0;
    for (; i + 8 <= n; i += 8) {
      const o = <usize>i * 4;
      v128.store(xb + o, f32x4.add(v128.load(xb + o), v128.load(y + o)));
      v128.store(xb + o, f32x4.add(v128.load(xb + o, 16), v128.load(y + o, 16)), 16);
    }
    for (; i < n; i++) store<f32>(xb + <usize>i * 4, load<f32>(xb + <usize>i * 4) + load<f32>(y + <usize>i * 4));
  }
}

/** out[i] = f32(((a[i] + b[i]) + c[i]) · s), the sum and product in float64, for i < n. */
export function sum3_scaled(a: usize, b: usize, c: usize, s: f64, out: usize, n: i32): void {
  const sv = f64x2.splat(s);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i * 4;
    const av = v128.load(a + o), bv = v128.load(b + o), cv = v128.load(c + o);
    const lo = f64x2.mul(f64x2.add(f64x2.add(f64x2.promote_low_f32x4(av), f64x2.promote_low_f32x4(bv)), f64x2.promote_low_f32x4(cv)), sv);
    const ah = v128.shuffle<i32>(av, av, 2, 3, 2, 3), bh = v128.shuffle<i32>(bv, bv, 2, 3, 2, 3), ch = v128.shuffle<i32>(cv, cv, 2, 3, 2, 3);
    const hi = f64x2.mul(f64x2.add(f64x2.add(f64x2.promote_low_f32x4(ah), f64x2.promote_low_f32x4(bh)), f64x2.promote_low_f32x4(ch)), sv);
    v128.store(out + o, v128.shuffle<i32>(f32x4.demote_f64x2_zero(lo), f32x4.demote_f64x2_zero(hi), 0, 1, 4, 5));
  }
  for (; i < n; i++) {
    const o = <usize>i * 4;
    store<f32>(out + o, <f32>(((<f64>load<f32>(a + o) + <f64>load<f32>(b + o)) + <f64>load<f32>(c + o)) * s));
  }
}

/** out[r·dim + i] = x[r·dim + i] · w[i] for r < rows, i < dim (out may be x). */
export function scale_columns(x: usize, w: usize, out: usize, rows: i32, dim: i32): void {
  for (let r = 0; r < rows; r++) {
    const xr = x + <usize>r * <usize>dim * 4, or = out + <usize>r * <usize>dim * 4;
    let i = 0;
    for (; i + 4 <= dim; i += 4) v128.store(or + <usize>i * 4, f32x4.mul(v128.load(xr + <usize>i * 4), v128.load(w + <usize>i * 4)));
    for (; i < dim; i++) store<f32>(or + <usize>i * 4, load<f32>(xr + <usize>i * 4) * load<f32>(w + <usize>i * 4));
  }
}
