// Entry point of the kernel module. Every kernel is also reachable through `run`, the job
// dispatcher that the main thread and the worker threads call on the same shared job
// descriptor (see src/kernels/wasm_kernels.ts for the layout), each doing its share of rows.
import { f32_gemm } from './matmul_f32';
import { q4_gemm, q4_quantize_act, Q4_XB } from './matmul_q4';
import { attention, attention_scratch_floats } from './attention';
import { heap_base, read_stream } from './memory';

export { f32_gemm, q4_gemm, q4_quantize_act, attention, attention_scratch_floats, heap_base, read_stream };

/** Activation bytes per group of 32 for q4 in this build (32 relaxed, 64 simd128). */
export function q4_xb(): i32 {
  return Q4_XB;
}

/** 1 if this build uses Relaxed SIMD. */
export function is_relaxed(): i32 {
  return ASC_FEATURE_RELAXED_SIMD ? 1 : 0;
}

export const OP_F32_GEMM = 1;
export const OP_Q4_GEMM = 2;
export const OP_ATTENTION = 3;
export const OP_READ = 4;

// Job descriptor: i32 words at `job`: [0] generation, [1] done count, [2] op, [3] threads,
// [4] scratch base, [5] scratch bytes per thread, [6..) op arguments, [32 + tid] per-thread result.
// @ts-ignore: decorator
@inline function arg(job: usize, i: i32): i32 {
  return load<i32>(job + <usize>(24 + i * 4));
}

/** [lo, hi) share of n items for thread tid of nt. */
// @ts-ignore: decorator
@inline function share(n: i32, tid: i32, nt: i32, hiSide: bool): i32 {
  return <i32>((<i64>n * (tid + (hiSide ? 1 : 0))) / nt);
}

/** Runs this thread's share of the job described at `job`. */
export function run(job: usize, tid: i32): void {
  const op = load<i32>(job + 8);
  const nt = load<i32>(job + 12);
  if (op == OP_F32_GEMM) {
    // w, x, y, T, outDim, inDim
    const outDim = arg(job, 4);
    const quads = (outDim + 3) >> 2;
    const r0 = share(quads, tid, nt, false) * 4, r1 = min(outDim, share(quads, tid, nt, true) * 4);
    if (r1 > r0) f32_gemm(arg(job, 0), arg(job, 1), arg(job, 2), arg(job, 3), outDim, arg(job, 5), r0, r1);
  } else if (op == OP_Q4_GEMM) {
    // wq, ws, G, xq, xs, xc, T, y, outDim
    const outDim = arg(job, 8);
    const blocks = (outDim + 3) >> 2;
    const b0 = share(blocks, tid, nt, false), b1 = share(blocks, tid, nt, true);
    if (b1 > b0) q4_gemm(arg(job, 0), arg(job, 1), arg(job, 2), arg(job, 3), arg(job, 4), arg(job, 5), arg(job, 6), arg(job, 7), outDim, b0, b1);
  } else if (op == OP_ATTENTION) {
    // q, k, v, out, T, S, H, KVH, D, qPos0, kPos0, window, scale(f32 bits)
    const items = arg(job, 4) * arg(job, 6);
    const i0 = share(items, tid, nt, false), i1 = share(items, tid, nt, true);
    const scratch = <usize>load<i32>(job + 16) + <usize>tid * <usize>load<i32>(job + 20);
    if (i1 > i0) attention(arg(job, 0), arg(job, 1), arg(job, 2), arg(job, 3), arg(job, 4), arg(job, 5), arg(job, 6), arg(job, 7),
      arg(job, 8), arg(job, 9), arg(job, 10), arg(job, 11), reinterpret<f32>(arg(job, 12)), scratch, i0, i1);
  } else if (op == OP_READ) {
    // p, n (bytes, multiple of 64 per thread share)
    const chunks = arg(job, 1) >>> 6;
    const c0 = share(chunks, tid, nt, false), c1 = share(chunks, tid, nt, true);
    store<i32>(job + <usize>(128 + tid * 4), read_stream(<usize>arg(job, 0) + (<usize>c0 << 6), <usize>(c1 - c0) << 6));
  }
}
