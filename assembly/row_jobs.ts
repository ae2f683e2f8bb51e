// The decoder's row-wise kernels as one job op (OP_ROW_OPS), so a prefill's rows are cut between
// the threads: arg 0 is the kernel (ROW_*), arg 1 the units the job is cut into (rows, or blocks
// of ROW_BLOCK elements for the element-wise ones), then the kernel's arguments. Each row and each
// element is computed exactly as the single-call kernel computes it, so the split changes no bit.
import { arg, cut } from './job';
import { rms_norm } from './norm';
import { altup_router, altup_mix4_rows, altup_correct_rows } from './altup';
import { gelu_mul, softcap } from './elementwise';
import { add_repeated, sum3_scaled, scale_columns } from './residual';
import { gaussian_gelu_mul_rows } from './sparse';
import { rope_rows } from './rope';

export const ROW_RMS_NORM: i32 = 0;
export const ROW_ALTUP_ROUTER: i32 = 1;
export const ROW_ALTUP_MIX4: i32 = 2;
export const ROW_ALTUP_CORRECT: i32 = 3;
export const ROW_GELU_MUL: i32 = 4;
export const ROW_ADD_REPEATED: i32 = 5;
export const ROW_SUM3_SCALED: i32 = 6;
export const ROW_SCALE_COLUMNS: i32 = 7;
export const ROW_GAUSSIAN_GELU: i32 = 8;
export const ROW_ROPE: i32 = 9;
export const ROW_SOFTCAP: i32 = 10;
/** Elements per unit of the element-wise kernels (a multiple of 16: whole vectors). */
export const ROW_BLOCK: i32 = 4096;

/** A float64 argument from two words (low, high). */
// @ts-ignore: decorator
@inline function arg64(job: usize, i: i32): f64 {
  return reinterpret<f64>((<u64>arg(job, i + 1) << 32) | (<u64>arg(job, i) & 0xffffffff)); // the low word masked: it may be negative as an i32
}

/** Units of a row job. */
export function row_job_units(job: usize): i32 {
  return arg(job, 1);
}

/** Runs chunk c of nchunks of a row job. */
export function row_job_run(job: usize, c: i32, nchunks: i32): void {
  const kind = arg(job, 0), units = arg(job, 1);
  const u0 = cut(units, c, nchunks), u1 = cut(units, c + 1, nchunks);
  if (u0 >= u1) return;
  if (kind == ROW_RMS_NORM) {
    // x, w, out, rows, dim, eps (2 words)
    const dim = arg(job, 6), o = <usize>u0 * <usize>dim * 4;
    rms_norm(<usize>arg(job, 2) + o, <usize>arg(job, 3), u1 - u0, dim, arg64(job, 7), <usize>arg(job, 4) + o);
  } else if (kind == ROW_ALTUP_ROUTER) {
    // x, normW, routerW, T, H, A, eps (2 words), scale (f32 bits), normed, dots
    const H = arg(job, 6), A = arg(job, 7), o = <usize>u0 * <usize>H * 4;
    altup_router(<usize>arg(job, 2) + o, <usize>arg(job, 3), <usize>arg(job, 4), u1 - u0, H, A, arg64(job, 8), reinterpret<f32>(arg(job, 10)),
      <usize>arg(job, 11) + o, <usize>arg(job, 12) + <usize>(u0 * A) * 8);
  } else if (kind == ROW_ALTUP_MIX4) {
    // c, x, out, T, H
    altup_mix4_rows(<usize>arg(job, 2), <usize>arg(job, 3), <usize>arg(job, 4), arg(job, 5), arg(job, 6), u0, u1);
  } else if (kind == ROW_ALTUP_CORRECT) {
    // pred, activated, active, coef, out, T, H, A
    altup_correct_rows(<usize>arg(job, 2), <usize>arg(job, 3), arg(job, 4), <usize>arg(job, 5), <usize>arg(job, 6), arg(job, 7), arg(job, 8), arg(job, 9), u0, u1);
  } else if (kind == ROW_SCALE_COLUMNS) {
    // x, w, out, rows, dim
    const dim = arg(job, 6), o = <usize>u0 * <usize>dim * 4;
    scale_columns(<usize>arg(job, 2) + o, <usize>arg(job, 3), <usize>arg(job, 4) + o, u1 - u0, dim);
  } else if (kind == ROW_GAUSSIAN_GELU) {
    // gate, up, dim, k (2 words), fastExp table, counts (i32 per row)
    gaussian_gelu_mul_rows(<usize>arg(job, 2), <usize>arg(job, 3), arg(job, 4), arg64(job, 5), <usize>arg(job, 7), <usize>arg(job, 8), u0, u1);
  } else if (kind == ROW_ROPE) {
    // x, cos, sin, H, d
    rope_rows(<usize>arg(job, 2), <usize>arg(job, 3), <usize>arg(job, 4), arg(job, 5), arg(job, 6), u0, u1);
  } else {
    // element-wise: [i0, i1) of n
    const n = kind == ROW_SUM3_SCALED ? arg(job, 8) : arg(job, 4);
    const i0 = u0 * ROW_BLOCK, i1 = min(n, u1 * ROW_BLOCK), o = <usize>i0 * 4;
    if (kind == ROW_GELU_MUL) {
      // a, b, n
      gelu_mul(<usize>arg(job, 2) + o, <usize>arg(job, 3) + o, i1 - i0);
    } else if (kind == ROW_ADD_REPEATED) {
      // x, y, n, times
      for (let k = 0, times = arg(job, 5); k < times; k++) add_repeated(<usize>arg(job, 2) + <usize>k * <usize>n * 4 + o, <usize>arg(job, 3) + o, i1 - i0, 1);
    } else if (kind == ROW_SUM3_SCALED) {
      // a, b, c, s (2 words), out, n
      sum3_scaled(<usize>arg(job, 2) + o, <usize>arg(job, 3) + o, <usize>arg(job, 4) + o, arg64(job, 5), <usize>arg(job, 7) + o, i1 - i0);
    } else if (kind == ROW_SOFTCAP) {
      // x, cap (f32 bits), n
      softcap(<usize>arg(job, 2) + o, i1 - i0, reinterpret<f32>(arg(job, 3)));
    }
  }
}
