// AltUp's per-element stream math (TS reference: src/kernels/altup.ts, the functions
// src/model/altup.ts calls), bit for bit as assembly/norm.ts explains: the router's norm and
// dot products, the 4-stream prediction mix in float64 lanes, the correction in float32.
import { dot_f64, rms_norm } from './norm';

/**
 * The AltUp router before its tanh, for T rows of x [T, H]: dots[t, a] = Σ_h n[t, h]·W[a, h] in
 * float64, n = f32(rms_norm(x, normW)[t, h] · scale). `normed` [T, H] is scratch.
 */
export function altup_router(x: usize, normW: usize, routerW: usize, T: i32, H: i32, A: i32, eps: f64, scale: f32, normed: usize, dots: usize): void {
  rms_norm(x, normW, T, H, eps, normed);
  const sv = f32x4.splat(scale);
  const n = <usize>T * H;
  let i: usize = 0;
  for (; i + 4 <= n; i += 4) v128.store(normed + i * 4, f32x4.mul(v128.load(normed + i * 4), sv));
  for (; i < n; i++) store<f32>(normed + i * 4, load<f32>(normed + i * 4) * scale);
  for (let t = 0; t < T; t++) {
    for (let a = 0; a < A; a++) store<f64>(dots + <usize>(t * A + a) * 8, dot_f64(normed + <usize>t * H * 4, routerW + <usize>a * H * 4, H));
  }
}

/** f32(((c0·x0 + c1·x1) + c2·x2) + c3·x3) for two lanes in float64 (x0..x3 float32 lanes widened). */
// @ts-ignore: decorator
@inline function mix2(c0: v128, c1: v128, c2: v128, c3: v128, x0: v128, x1: v128, x2: v128, x3: v128): v128 {
  const s = f64x2.add(f64x2.add(f64x2.add(f64x2.mul(c0, f64x2.promote_low_f32x4(x0)), f64x2.mul(c1, f64x2.promote_low_f32x4(x1))), f64x2.mul(c2, f64x2.promote_low_f32x4(x2))), f64x2.mul(c3, f64x2.promote_low_f32x4(x3)));
  return f32x4.demote_f64x2_zero(s);
}

/**
 * The prediction mix for A = 4 streams of T rows ([4, T, H] at x): out[j, t] =
 * f32(Σ_i C[t, j, i]·x[i, t]) + x[j, t], C [T, 4, 4] float32. out must not be x.
 */
export function altup_mix4(c: usize, x: usize, out: usize, T: i32, H: i32): void {
  altup_mix4_rows(c, x, out, T, H, 0, T);
}

/** altup_mix4 for rows [t0, t1) only (a thread's share, assembly/row_jobs.ts). */
export function altup_mix4_rows(c: usize, x: usize, out: usize, T: i32, H: i32, t0: i32, t1: i32): void {
  for (let t = t0; t < t1; t++) mixToken(c + <usize>t * 64, x, out, T * H, t * H, H);
}

/** altup_mix4 for the row at offset o of each stream (stream i's H values at x + 4·(i·stride + o)). */
function mixToken(c: usize, x: usize, out: usize, stride: i32, o: i32, H: i32): void {
  const p0 = x + <usize>o * 4, p1 = p0 + <usize>stride * 4, p2 = p1 + <usize>stride * 4, p3 = p2 + <usize>stride * 4;
  for (let j = 0; j < 4; j++) {
    const cj = c + <usize>j * 16;
    const c0 = f64x2.splat(<f64>load<f32>(cj)), c1 = f64x2.splat(<f64>load<f32>(cj, 4));
    const c2 = f64x2.splat(<f64>load<f32>(cj, 8)), c3 = f64x2.splat(<f64>load<f32>(cj, 12));
    const pj = p0 + <usize>j * stride * 4, oj = out + <usize>(j * stride + o) * 4;
    let h = 0;
    for (; h + 4 <= H; h += 4) {
      const b = <usize>h * 4;
      const x0 = v128.load(p0 + b), x1 = v128.load(p1 + b), x2 = v128.load(p2 + b), x3 = v128.load(p3 + b);
      const lo = mix2(c0, c1, c2, c3, x0, x1, x2, x3);
      const hi = mix2(c0, c1, c2, c3, v128.shuffle<i32>(x0, x0, 2, 3, 2, 3), v128.shuffle<i32>(x1, x1, 2, 3, 2, 3), v128.shuffle<i32>(x2, x2, 2, 3, 2, 3), v128.shuffle<i32>(x3, x3, 2, 3, 2, 3));
      v128.store(oj + b, f32x4.add(v128.shuffle<i32>(lo, hi, 0, 1, 4, 5), v128.load(pj + b)));
    }
    for (; h < H; h++) {
      const b = <usize>h * 4;
      const s = f32x4.extract_lane(mix2(c0, c1, c2, c3, v128.load32_splat(p0 + b), v128.load32_splat(p1 + b), v128.load32_splat(p2 + b), v128.load32_splat(p3 + b)), 0);
      store<f32>(oj + b, s + load<f32>(pj + b));
    }
  }
}

/**
 * AltUp correct for T rows and A streams ([A, T, H] each): out[j, t] = pred[j, t] +
 * f32((activated[t] − pred[active, t]) · coef[t, j]), coef [T, A] float32. out must not be pred.
 */
export function altup_correct(pred: usize, activated: usize, active: i32, coef: usize, out: usize, T: i32, H: i32, A: i32): void {
  altup_correct_rows(pred, activated, active, coef, out, T, H, A, 0, T);
}

/** altup_correct for rows [t0, t1) only (a thread's share, assembly/row_jobs.ts). */
export function altup_correct_rows(pred: usize, activated: usize, active: i32, coef: usize, out: usize, T: i32, H: i32, A: i32, t0: i32, t1: i32): void {
  const TH = <usize>T * H;
  for (let t = t0; t < t1; t++) {
    const at = activated + <usize>t * H * 4, pa = pred + (<usize>active * TH + <usize>t * H) * 4;
    for (let j = 0; j < A; j++) {
      const cf = load<f32>(coef + <usize>(t * A + j) * 4), cv = f32x4.splat(cf);
      const o = (<usize>j * TH + <usize>t * H) * 4;
      const pj = pred + o, oj = out + o;
      let h = 0;
      for (; h + 4 <= H; h += 4) {
        const b = <usize>h * 4;
        const inn = f32x4.sub(v128.load(at + b), v128.load(pa + b));
        v128.store(oj + b, f32x4.add(v128.load(pj + b), f32x4.mul(inn, cv)));
      }
      for (; h < H; h++) {
        const b = <usize>h * 4;
        store<f32>(oj + b, load<f32>(pj + b) + (load<f32>(at + b) - load<f32>(pa + b)) * cf);
      }
    }
  }
}
