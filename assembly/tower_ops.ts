// The audio/vision towers' operations besides their GEMMs (TS reference: src/kernels/tower_ops.ts):
// a depthwise 2-D convolution on channels-last maps, a row RMSNorm fused with what follows it in
// the towers (GELU, a per-channel layer scale, a residual add), and the MobileNet-V5 multi-query
// attention (every query row against one shared key/value head). All float32; each job is cut by
// output rows so both threads share it (assembly/index.ts `run`).
import { f32_gemm } from './matmul_f32';
import { gelu4 } from './elementwise';
import { exp4, fma } from './math';
import { arg, cut } from './job';
import { JOB_SCRATCH_BASE, JOB_SCRATCH_STRIDE, OP_DW_CONV2D, OP_RMS_NORM_ACT, OP_MQA } from './job_layout';

/** Query rows per score block of `mqa` (the [rows, M] scores stay in L1/L2). */
const MQA_ROWS: i32 = 16;

/** Scratch bytes one thread of `mqa` needs for M keys. */
export function mqa_scratch_bytes(M: i32): i32 {
  return MQA_ROWS * ((M + 3) & ~3) * 4;
}

/**
 * Output rows [oy0, oy1) of a depthwise k×k convolution, channels-last:
 * y[oy, ox, c] = Σ_{ky,kx} taps[ky·k + kx, c] · x[oy·s − padT + ky, ox·s − padL + kx, c], zero outside.
 * taps is taps-major [k·k, C]; 16 channels at a time stay in four registers over every tap.
 */
export function dw_conv2d(x: usize, taps: usize, y: usize, H: i32, W: i32, C: i32, K: i32, S: i32, padT: i32, padL: i32,
  OH: i32, OW: i32, oy0: i32, oy1: i32): void {
  const rowC = <usize>C * 4;
  for (let oy = oy0; oy < oy1; oy++) {
    const iy0 = oy * S - padT;
    const ky0 = max(0, -iy0), ky1 = min(K, H - iy0);
    for (let ox = 0; ox < OW; ox++) {
      const ix0 = ox * S - padL;
      const kx0 = max(0, -ix0), kx1 = min(K, W - ix0);
      const yo = y + <usize>(oy * OW + ox) * rowC;
      let c = 0;
      for (; c + 16 <= C; c += 16) {
        let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
        for (let ky = ky0; ky < ky1; ky++) {
          let xp = x + <usize>((iy0 + ky) * W + ix0 + kx0) * rowC + <usize>c * 4;
          let tp = taps + <usize>(ky * K + kx0) * rowC + <usize>c * 4;
          for (let kx = kx0; kx < kx1; kx++) {
            a0 = fma(v128.load(tp), v128.load(xp), a0);
            a1 = fma(v128.load(tp, 16), v128.load(xp, 16), a1);
            a2 = fma(v128.load(tp, 32), v128.load(xp, 32), a2);
            a3 = fma(v128.load(tp, 48), v128.load(xp, 48), a3);
            xp += rowC; tp += rowC;
          }
        }
        const yc = yo + <usize>c * 4;
        v128.store(yc, a0); v128.store(yc, a1, 16); v128.store(yc, a2, 32); v128.store(yc, a3, 48);
      }
      for (; c + 4 <= C; c += 4) {
        let a = f32x4.splat(0);
        for (let ky = ky0; ky < ky1; ky++) {
          let xp = x + <usize>((iy0 + ky) * W + ix0 + kx0) * rowC + <usize>c * 4;
          let tp = taps + <usize>(ky * K + kx0) * rowC + <usize>c * 4;
          for (let kx = kx0; kx < kx1; kx++) {
            a = fma(v128.load(tp), v128.load(xp), a);
            xp += rowC; tp += rowC;
          }
        }
        v128.store(yo + <usize>c * 4, a);
      }
      for (; c < C; c++) {
        let a: f32 = 0;
        for (let ky = ky0; ky < ky1; ky++) {
          for (let kx = kx0; kx < kx1; kx++) {
            a += load<f32>(taps + <usize>(ky * K + kx) * rowC + <usize>c * 4) * load<f32>(x + <usize>((iy0 + ky) * W + ix0 + kx) * rowC + <usize>c * 4);
          }
        }
        store<f32>(yo + <usize>c * 4, a);
      }
    }
  }
}

/**
 * Rows [r0, r1) of x [rows, dim], in place: x = rmsnorm(x) · w (eps inside the root), then GELU
 * (tanh) when `gelu`, then · gamma[c] when gamma ≠ 0, then + res[r, c] when res ≠ 0.
 */
export function rms_norm_act(x: usize, w: usize, gamma: usize, res: usize, dim: i32, eps: f32, gelu: i32, r0: i32, r1: i32): void {
  const d4 = dim & ~3;
  const rowBytes = <usize>dim * 4;
  for (let r = r0; r < r1; r++) {
    const row = x + <usize>r * rowBytes;
    let s0 = f32x4.splat(0), s1 = f32x4.splat(0);
    let i = 0;
    for (; i + 8 <= d4; i += 8) {
      const a = v128.load(row + <usize>i * 4), b = v128.load(row + <usize>i * 4, 16);
      s0 = fma(a, a, s0); s1 = fma(b, b, s1);
    }
    for (; i < d4; i += 4) { const a = v128.load(row + <usize>i * 4); s0 = fma(a, a, s0); }
    s0 = f32x4.add(s0, s1);
    let ss = f32x4.extract_lane(s0, 0) + f32x4.extract_lane(s0, 1) + f32x4.extract_lane(s0, 2) + f32x4.extract_lane(s0, 3);
    for (; i < dim; i++) { const a = load<f32>(row + <usize>i * 4); ss += a * a; }
    const inv: f32 = <f32>1 / sqrt<f32>(ss / <f32>dim + eps);
    const vi = f32x4.splat(inv);
    const rr = res + <usize>r * rowBytes;
    i = 0;
    for (; i < d4; i += 4) {
      const o = <usize>i * 4;
      let v = f32x4.mul(f32x4.mul(v128.load(row + o), vi), v128.load(w + o));
      if (gelu) v = gelu4(v);
      if (gamma) v = f32x4.mul(v, v128.load(gamma + o));
      if (res) v = f32x4.add(v, v128.load(rr + o));
      v128.store(row + o, v);
    }
    for (; i < dim; i++) {
      const o = <usize>i * 4;
      let v = load<f32>(row + o) * inv * load<f32>(w + o);
      if (gelu) v = f32x4.extract_lane(gelu4(f32x4.splat(v)), 0);
      if (gamma) v *= load<f32>(gamma + o);
      if (res) v += load<f32>(rr + o);
      store<f32>(row + o, v);
    }
  }
}

/**
 * Query rows [q0, q1) of multi-query attention: out[r] = softmax(q[r] · kᵀ) · v for q [rows, kd]
 * (already scaled), k [M, kd], vT = vᵀ [vd, M], out [rows, vd]. MQA_ROWS rows at a time: their
 * scores [n, M] by the f32 GEMM, a softmax per row, then the GEMM with vᵀ. `scratch`: this
 * thread's mqa_scratch_bytes(M).
 */
export function mqa(q: usize, k: usize, vT: usize, out: usize, M: i32, kd: i32, vd: i32, scratch: usize, q0: i32, q1: i32): void {
  for (let r0 = q0; r0 < q1; r0 += MQA_ROWS) {
    const n = min(MQA_ROWS, q1 - r0);
    f32_gemm(k, q + <usize>r0 * <usize>kd * 4, scratch, n, M, kd, 0, M);
    for (let r = 0; r < n; r++) softmaxRow(scratch + <usize>r * <usize>M * 4, M);
    f32_gemm(vT, scratch, out + <usize>r0 * <usize>vd * 4, n, vd, M, 0, vd);
  }
}

/** p[i] = e^(p[i] − max) / Σ, in place over n values. */
function softmaxRow(p: usize, n: i32): void {
  const n4 = n & ~3;
  let mv = f32x4.splat(-Infinity);
  let i = 0;
  for (; i < n4; i += 4) mv = f32x4.max(mv, v128.load(p + <usize>i * 4));
  let m = max(max(f32x4.extract_lane(mv, 0), f32x4.extract_lane(mv, 1)), max(f32x4.extract_lane(mv, 2), f32x4.extract_lane(mv, 3)));
  for (; i < n; i++) m = max(m, load<f32>(p + <usize>i * 4));
  const ms = f32x4.splat(m);
  let sv = f32x4.splat(0);
  for (i = 0; i < n4; i += 4) {
    const e = exp4(f32x4.sub(v128.load(p + <usize>i * 4), ms));
    v128.store(p + <usize>i * 4, e);
    sv = f32x4.add(sv, e);
  }
  let sum = f32x4.extract_lane(sv, 0) + f32x4.extract_lane(sv, 1) + f32x4.extract_lane(sv, 2) + f32x4.extract_lane(sv, 3);
  for (; i < n; i++) {
    const e = f32x4.extract_lane(exp4(f32x4.splat(load<f32>(p + <usize>i * 4) - m)), 0);
    store<f32>(p + <usize>i * 4, e);
    sum += e;
  }
  const inv = f32x4.splat(<f32>1 / sum);
  for (i = 0; i < n4; i += 4) v128.store(p + <usize>i * 4, f32x4.mul(v128.load(p + <usize>i * 4), inv));
  const s1: f32 = <f32>1 / sum;
  for (; i < n; i++) store<f32>(p + <usize>i * 4, load<f32>(p + <usize>i * 4) * s1);
}

/** Work units of a tower-ops job (output rows, norm rows, query-row blocks), or 0 for another op. */
export function tower_ops_units(job: usize, op: i32): i32 {
  if (op == OP_DW_CONV2D) return arg(job, 10); // OH
  if (op == OP_RMS_NORM_ACT) return arg(job, 4); // rows
  if (op == OP_MQA) return (arg(job, 4) + MQA_ROWS - 1) / MQA_ROWS; // query-row blocks
  return 0;
}

/** Runs chunk c of nchunks of a tower-ops job on thread tid. */
export function tower_ops_run(job: usize, op: i32, tid: i32, c: i32, nchunks: i32): void {
  const units = tower_ops_units(job, op);
  const u0 = cut(units, c, nchunks), u1 = cut(units, c + 1, nchunks);
  if (op == OP_DW_CONV2D) {
    // x, taps, y, H, W, C, K, S, padT, padL, OH, OW
    dw_conv2d(arg(job, 0), arg(job, 1), arg(job, 2), arg(job, 3), arg(job, 4), arg(job, 5), arg(job, 6), arg(job, 7),
      arg(job, 8), arg(job, 9), arg(job, 10), arg(job, 11), u0, u1);
  } else if (op == OP_RMS_NORM_ACT) {
    // x, w, gamma, res, rows, dim, eps (f32 bits), gelu
    rms_norm_act(arg(job, 0), arg(job, 1), arg(job, 2), arg(job, 3), arg(job, 5), reinterpret<f32>(arg(job, 6)), arg(job, 7), u0, u1);
  } else if (op == OP_MQA) {
    // q, k, vT, out, rows, M, kd, vd; scratch: mqa_scratch_bytes(M) per thread
    const rows = arg(job, 4);
    const scratch = <usize>load<i32>(job + JOB_SCRATCH_BASE) + <usize>tid * <usize>load<i32>(job + JOB_SCRATCH_STRIDE);
    mqa(arg(job, 0), arg(job, 1), arg(job, 2), arg(job, 3), arg(job, 5), arg(job, 6), arg(job, 7), scratch, u0 * MQA_ROWS, min(rows, u1 * MQA_ROWS));
  }
}
