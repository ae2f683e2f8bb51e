// Widening a packed v2.1 `.q4` body (docs/packed-format.md, blob version 3) into the int4 GEMM's
// layout in place, the SIMD twin of expandQ4Blocks (src/checkpoint/q4_compact.ts), which a
// weight load otherwise runs in JS on the main thread over every matrix (~0.8 s for E2B).

/**
 * The body sits at `region + srcAt`: B blocks of [4 × f32 base][G × (64 code bytes, 4 scale
 * codes k)]; it is widened to B·G groups of [64 code bytes][4 × f32 base_r · table[k_r]] at
 * `region` (srcAt = B·G·80 − body bytes, so every write lands at or before what it replaces and
 * each group is loaded before it is overwritten). `table` holds 256 f32 (2^(−k/32), 0 at 255).
 * Returns −1, or the first block whose bases are not all finite and ≥ 0: that block and the
 * ones after it are left as they were (the caller names the bad row from its bytes).
 */
export function q4_expand(region: usize, srcAt: usize, B: i32, G: i32, table: usize): i32 {
  let s = region + srcAt, d = region;
  for (let b = 0; b < B; b++) {
    const bases = v128.load(s);
    // finite and ≥ 0: 0 ≤ x < +inf (NaN fails both, −0 passes as in the JS check)
    const ok = v128.and(f32x4.ge(bases, f32x4.splat(0)), f32x4.lt(bases, f32x4.splat(Infinity)));
    if (!i32x4.all_true(ok)) return b;
    s += 16;
    for (let g = 0; g < G; g++) {
      const c0 = v128.load(s), c1 = v128.load(s, 16), c2 = v128.load(s, 32), c3 = v128.load(s, 48);
      const k = load<u32>(s, 64);
      let steps = f32x4.splat(load<f32>(table + ((k & 255) << 2)));
      steps = f32x4.replace_lane(steps, 1, load<f32>(table + (((k >>> 8) & 255) << 2)));
      steps = f32x4.replace_lane(steps, 2, load<f32>(table + (((k >>> 16) & 255) << 2)));
      steps = f32x4.replace_lane(steps, 3, load<f32>(table + ((k >>> 24) << 2)));
      v128.store(d, c0);
      v128.store(d, c1, 16);
      v128.store(d, c2, 32);
      v128.store(d, c3, 48);
      v128.store(d, f32x4.mul(bases, steps), 64);
      s += 68;
      d += 80;
    }
  }
  return -1;
}
