// Entry point of the kernel module. Every kernel is also reachable through `run`, the job
// dispatcher that the main thread and the worker threads call on the same shared job
// descriptor (layout: assembly/job_layout.ts; protocol: assembly/job.ts), each doing its share.
import { f32_gemm } from './matmul_f32';
import { Q4_FUSED_MAX_T, q4_gemm, q4_gemm_scratch_bytes, q4_quantize_act, q4_tokens_batched, q4_tokens_bytes, Q4_XB, Q4_TOUCH_SLACK } from './matmul_q4';
import { attention, attention_scratch_floats } from './attention';
import { heap_base, read_stream } from './memory';
import { q4_expand } from './q4_expand';
import { gelu_mul, softcap } from './elementwise';
import { q8_gemm, q8_panel_bytes } from './tower_q8';
import { dw_conv2d, mqa_scratch_bytes, rms_norm_act, tower_ops_run, tower_ops_units } from './tower_ops';
import { rms_norm } from './norm';
import { altup_router, altup_mix4, altup_correct } from './altup';
import { add_repeated, sum3_scaled, scale_columns } from './residual';
import { row_job_run, row_job_units } from './row_jobs';
import { gaussian_gelu_mul_rows } from './sparse';
import { rope_rows } from './rope';
import { arg, claim, cut, finished } from './job';
import {
  JOB_ID, JOB_DONE, JOB_OP, JOB_THREADS, JOB_SCRATCH_BASE, JOB_SCRATCH_STRIDE, JOB_ARGS, JOB_MAX_ARGS, JOB_CLAIM,
  JOB_RESULTS, JOB_BYTES, JOB_MAX_THREADS, OP_QUIT, OP_F32_GEMM, OP_Q4_GEMM, OP_ATTENTION, OP_READ, OP_Q8_GEMM,
  OP_Q4_ROWS, OP_ROW_OPS, OP_DW_CONV2D, OP_RMS_NORM_ACT, OP_MQA,
} from './job_layout';

export { f32_gemm, q4_gemm, q4_gemm_scratch_bytes, q4_quantize_act, q4_tokens_batched, q4_tokens_bytes, attention, attention_scratch_floats, heap_base, read_stream, gelu_mul, softcap, q8_gemm, q8_panel_bytes, rms_norm, altup_router, altup_mix4, altup_correct };
export { dw_conv2d, rms_norm_act, mqa_scratch_bytes };
export { q4_expand };
export { add_repeated, sum3_scaled, scale_columns, gaussian_gelu_mul_rows, rope_rows };
// The descriptor layout as exported globals, so a test can hold the TypeScript side to it.
export {
  JOB_ID, JOB_DONE, JOB_OP, JOB_THREADS, JOB_SCRATCH_BASE, JOB_SCRATCH_STRIDE, JOB_ARGS, JOB_MAX_ARGS, JOB_CLAIM,
  JOB_RESULTS, JOB_BYTES, JOB_MAX_THREADS, OP_QUIT, OP_F32_GEMM, OP_Q4_GEMM, OP_ATTENTION, OP_READ, OP_Q8_GEMM,
  OP_Q4_ROWS, OP_ROW_OPS, OP_DW_CONV2D, OP_RMS_NORM_ACT, OP_MQA,
};

/** Most tokens of the multi-token GEMV (more take the batched GEMM and its token layout). */
export function q4_fused_max_t(): i32 {
  return ASC_FEATURE_RELAXED_SIMD ? Q4_FUSED_MAX_T : 0;
}

/** Activation bytes per group of 32 for q4 in this build (32 relaxed, 64 simd128). */
export function q4_xb(): i32 {
  return Q4_XB;
}

/** Bytes to allocate after an int4 weight: the GEMV touches that far past it. */
export function q4_touch_slack(): i32 {
  return Q4_TOUCH_SLACK;
}

/** 1 if this build uses Relaxed SIMD. */
export function is_relaxed(): i32 {
  return ASC_FEATURE_RELAXED_SIMD ? 1 : 0;
}

// Chunks per thread: enough that a thread descheduled mid-call leaves little for the others.
const CHUNKS_PER_THREAD = 8;

/** Total row blocks of a q4 job's weights. */
function q4Blocks(job: usize): i32 {
  let units = 0;
  for (let i = 0, n = arg(job, 5); i < n; i++) units += (arg(job, 8 + 3 * i) + 3) >> 2;
  return units;
}

/** Number of chunks job `op` is cut into (same on every thread). */
function chunksOf(job: usize, op: i32, nt: i32): i32 {
  let units = 0;
  if (op == OP_F32_GEMM) units = (arg(job, 4) + 3) >> 2; // row quads
  else if (op == OP_Q8_GEMM) units = (arg(job, 5) + 3) >> 2; // row quads
  else if (op == OP_Q4_GEMM) units = q4Blocks(job); // row blocks of all the weights
  else if (op == OP_Q4_ROWS) units = arg(job, 9); // the listed row blocks
  else if (op == OP_ATTENTION) units = arg(job, 4) * arg(job, 7); // (token, KV head) pairs
  else if (op == OP_READ) units = arg(job, 1) >>> 20; // MiB
  else if (op == OP_ROW_OPS) units = row_job_units(job); // assembly/row_jobs.ts
  else if (op >= OP_DW_CONV2D) units = tower_ops_units(job, op); // assembly/tower_ops.ts
  return nt == 1 ? min(units, 1) : min(units, nt * CHUNKS_PER_THREAD);
}

/**
 * Runs chunks of job `id` until none is left; returns the job's chunk count (the caller waits
 * until word [1] reaches it).
 */
export function run(job: usize, tid: i32, id: i32): i32 {
  const op = load<i32>(job + JOB_OP);
  const nt = load<i32>(job + JOB_THREADS);
  const nchunks = chunksOf(job, op, nt);
  for (;;) {
    const c = claim(job, id, nchunks);
    if (c < 0) break;
    if (op == OP_F32_GEMM) {
      // w, x, y, T, outDim, inDim
      const outDim = arg(job, 4), quads = (outDim + 3) >> 2;
      const r0 = cut(quads, c, nchunks) * 4, r1 = min(outDim, cut(quads, c + 1, nchunks) * 4);
      f32_gemm(arg(job, 0), arg(job, 1), arg(job, 2), arg(job, 3), outDim, arg(job, 5), r0, r1);
    } else if (op == OP_Q4_GEMM) {
      // G, xq, xs, xc, T, n, then n × (w (codes + scales interleaved), y, outDim): the weights'
      // row blocks laid end to end; this chunk's range is cut at the weight boundaries. A
      // per-thread scratch (q4_gemm_scratch_bytes(G)), when given, holds the batched path's
      // unpacked row blocks (xq then holds the tokens in its layout, q4_tokens_batched).
      const units = q4Blocks(job), u0 = cut(units, c, nchunks), u1 = cut(units, c + 1, nchunks);
      const scratch = <usize>load<i32>(job + JOB_SCRATCH_BASE) + <usize>tid * <usize>load<i32>(job + JOB_SCRATCH_STRIDE);
      let first = 0;
      for (let i = 0, n = arg(job, 5); i < n; i++) {
        const outDim = arg(job, 8 + 3 * i), blocks = (outDim + 3) >> 2;
        const lo = max(u0, first), hi = min(u1, first + blocks);
        if (lo < hi) q4_gemm(arg(job, 6 + 3 * i), arg(job, 0), arg(job, 1), arg(job, 2), arg(job, 3), arg(job, 4), arg(job, 7 + 3 * i), outDim, lo - first, hi - first, load<i32>(job + JOB_SCRATCH_BASE) != 0 ? scratch : 0);
        first += blocks;
      }
    } else if (op == OP_Q4_ROWS) {
      // G, xq, xs, xc, w, y, outDim, ranges (i32 pairs [b0, b1) of row blocks), n ranges, total
      // blocks: one token (the decode GEMV) through the listed blocks; this chunk's share of the
      // listed blocks is cut at the range boundaries.
      const units = arg(job, 9), u0 = cut(units, c, nchunks), u1 = cut(units, c + 1, nchunks);
      const ranges = <usize>arg(job, 7);
      let first = 0;
      for (let i = 0, n = arg(job, 8); i < n && first < u1; i++) {
        const b0 = load<i32>(ranges + <usize>i * 8), b1 = load<i32>(ranges + <usize>i * 8, 4);
        const lo = max(u0, first), hi = min(u1, first + b1 - b0);
        if (lo < hi) q4_gemm(arg(job, 4), arg(job, 0), arg(job, 1), arg(job, 2), arg(job, 3), 1, arg(job, 5), arg(job, 6), b0 + lo - first, b0 + hi - first);
        first += b1 - b0;
      }
    } else if (op == OP_ATTENTION) {
      // q, k, v, out, T, S, H, KVH, D, qPos0, kPos0, window, scale (f32 bits)
      const items = arg(job, 4) * arg(job, 7);
      const scratch = <usize>load<i32>(job + JOB_SCRATCH_BASE) + <usize>tid * <usize>load<i32>(job + JOB_SCRATCH_STRIDE);
      attention(arg(job, 0), arg(job, 1), arg(job, 2), arg(job, 3), arg(job, 4), arg(job, 5), arg(job, 6), arg(job, 7),
        arg(job, 8), arg(job, 9), arg(job, 10), arg(job, 11), reinterpret<f32>(arg(job, 12)), scratch,
        cut(items, c, nchunks), cut(items, c + 1, nchunks));
    } else if (op == OP_Q8_GEMM) {
      // codes, scales, x, y, T, outDim, inDim; scratch: one float32 panel per thread
      const outDim = arg(job, 5), quads = (outDim + 3) >> 2;
      const r0 = cut(quads, c, nchunks) * 4, r1 = min(outDim, cut(quads, c + 1, nchunks) * 4);
      const panel = <usize>load<i32>(job + JOB_SCRATCH_BASE) + <usize>tid * <usize>load<i32>(job + JOB_SCRATCH_STRIDE);
      q8_gemm(arg(job, 0), arg(job, 1), arg(job, 2), arg(job, 3), arg(job, 4), outDim, arg(job, 6), r0, r1, panel);
    } else if (op == OP_ROW_OPS) {
      row_job_run(job, c, nchunks);
    } else if (op >= OP_DW_CONV2D) {
      tower_ops_run(job, op, tid, c, nchunks);
    } else if (op == OP_READ) {
      // p, n bytes (a multiple of 1 MiB)
      const mib = arg(job, 1) >>> 20;
      const m0 = cut(mib, c, nchunks), m1 = cut(mib, c + 1, nchunks);
      const p = job + <usize>(JOB_RESULTS + tid * 4);
      store<i32>(p, load<i32>(p) ^ read_stream(<usize>arg(job, 0) + (<usize>m0 << 20), <usize>(m1 - m0) << 20));
    }
    finished(job);
  }
  return nchunks;
}
