// Element-wise kernels over whole vectors (TS reference: src/kernels/elementwise.ts): the gated
// GELU of the MLP and of the per-layer input gate, and the final logit soft-cap. Four lanes at
// a time, float32 throughout (the reference computes in float64 and rounds once: the two agree
// to a few float32 ulps).
import { exp4 } from './math';

const SQRT_2_OVER_PI: f32 = 0.7978845608;

/** gelu_tanh(x) = x / (1 + e^(−2u)), u = √(2/π)·(x + 0.044715·x³), for four lanes. */
// @ts-ignore: decorator
@inline export function gelu4(x: v128): v128 {
  const u = f32x4.mul(f32x4.splat(SQRT_2_OVER_PI), f32x4.add(x, f32x4.mul(f32x4.splat(0.044715), f32x4.mul(x, f32x4.mul(x, x)))));
  return f32x4.div(x, f32x4.add(f32x4.splat(1), exp4(f32x4.mul(f32x4.splat(-2), u))));
}

/** a[i] = gelu_tanh(a[i]) · b[i] for i < n. */
export function gelu_mul(a: usize, b: usize, n: i32): void {
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i * 4;
    v128.store(a + o, f32x4.mul(gelu4(v128.load(a + o)), v128.load(b + o)));
  }
  for (; i < n; i++) {
    const o = <usize>i * 4;
    store<f32>(a + o, f32x4.extract_lane(gelu4(f32x4.splat(load<f32>(a + o))), 0) * load<f32>(b + o));
  }
}

/**
 * tanh for four lanes: Lambert's continued fraction y·P(y²)/Q(y²) where |y| ≤ 1 (no
 * cancellation near 0), 1 − 2/(e^(2|y|) + 1) with y's sign beyond.
 */
// @ts-ignore: decorator
@inline function tanh4(y: v128): v128 {
  const z = f32x4.mul(y, y);
  const p = f32x4.mul(y, f32x4.add(f32x4.splat(2027025), f32x4.mul(z, f32x4.add(f32x4.splat(270270), f32x4.mul(z, f32x4.add(f32x4.splat(6930), f32x4.mul(z, f32x4.splat(36))))))));
  const q = f32x4.add(f32x4.splat(2027025), f32x4.mul(z, f32x4.add(f32x4.splat(945945), f32x4.mul(z, f32x4.add(f32x4.splat(51975), f32x4.mul(z, f32x4.add(f32x4.splat(630), z)))))));
  const a = f32x4.abs(y);
  const big = f32x4.sub(f32x4.splat(1), f32x4.div(f32x4.splat(2), f32x4.add(exp4(f32x4.add(a, a)), f32x4.splat(1))));
  const signed = v128.or(big, v128.and(y, f32x4.splat(-0.0))); // |tanh| with y's sign bit
  return v128.bitselect(f32x4.div(p, q), signed, f32x4.le(a, f32x4.splat(1)));
}

/** x[i] = cap · tanh(x[i] / cap) for i < n. */
export function softcap(x: usize, n: i32, cap: f32): void {
  const c = f32x4.splat(cap);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i * 4;
    v128.store(x + o, f32x4.mul(tanh4(f32x4.div(v128.load(x + o), c)), c));
  }
  for (; i < n; i++) {
    const o = <usize>i * 4;
    store<f32>(x + o, f32x4.extract_lane(tanh4(f32x4.splat(load<f32>(x + o) / cap)), 0) * cap);
  }
}
