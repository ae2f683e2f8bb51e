// Rotary position embedding with given cos/sin tables (TS reference: src/kernels/rope.ts), bit for
// bit: each rotated value is the reference's float64 expression (two exact products of float32
// values, one rounded sum), rounded once to float32.

// @ts-ignore: decorator
@inline function rot(a: v128, b: v128, c: v128, s: v128, sign: f64): v128 {
  // f32(a·c + sign·(b·s)) for four lanes, in two float64 halves
  const lo = f64x2.add(f64x2.mul(f64x2.promote_low_f32x4(a), f64x2.promote_low_f32x4(c)), f64x2.mul(f64x2.splat(sign), f64x2.mul(f64x2.promote_low_f32x4(b), f64x2.promote_low_f32x4(s))));
  const ah = v128.shuffle<i32>(a, a, 2, 3, 2, 3), bh = v128.shuffle<i32>(b, b, 2, 3, 2, 3), ch = v128.shuffle<i32>(c, c, 2, 3, 2, 3), sh = v128.shuffle<i32>(s, s, 2, 3, 2, 3);
  const hi = f64x2.add(f64x2.mul(f64x2.promote_low_f32x4(ah), f64x2.promote_low_f32x4(ch)), f64x2.mul(f64x2.splat(sign), f64x2.mul(f64x2.promote_low_f32x4(bh), f64x2.promote_low_f32x4(sh))));
  return v128.shuffle<i32>(f32x4.demote_f64x2_zero(lo), f32x4.demote_f64x2_zero(hi), 0, 1, 4, 5);
}

/** ropeRows of src/kernels/rope.ts for rows [t0, t1) of x [T, H·d] (cos, sin [T, d/2]). */
export function rope_rows(x: usize, cos: usize, sin: usize, H: i32, d: i32, t0: i32, t1: i32): void {
  const half = d >> 1;
  for (let t = t0; t < t1; t++) {
    const ct = cos + <usize>t * <usize>half * 4, st = sin + <usize>t * <usize>half * 4;
    for (let h = 0; h < H; h++) {
      const p = x + (<usize>t * <usize>H + <usize>h) * <usize>d * 4, q = p + <usize>half * 4;
      let i = 0;
      for (; i + 4 <= half; i += 4) {
        const o = <usize>i * 4;
        const x1 = v128.load(p + o), x2 = v128.load(q + o), c = v128.load(ct + o), s = v128.load(st + o);
        v128.store(p + o, rot(x1, x2, c, s, -1));
        v128.store(q + o, rot(x2, x1, c, s, 1));
      }
      for (; i < half; i++) {
        const o = <usize>i * 4;
        const x1 = <f64>load<f32>(p + o), x2 = <f64>load<f32>(q + o), c = <f64>load<f32>(ct + o), s = <f64>load<f32>(st + o);
        store<f32>(p + o, <f32>(x1 * c - x2 * s));
        store<f32>(q + o, <f32>(x2 * c + x1 * s));
      }
    }
  }
}
