/**
 * The job descriptor's layout: byte offsets into the 256-byte block of WASM memory through which
 * a kernel call is handed to every thread. The same names and values as assembly/job_layout.ts;
 * test/kernels/wasm_job.test.ts reads that file's constants out of the compiled module and
 * holds these equal to them.
 */

/** [0] job id: bumped per call; sleeping workers wait on it. */
export const JOB_ID = 0;
/** [1] chunks finished so far; the caller waits until it reaches the chunk count. */
export const JOB_DONE = 4;
/** [2] operation (OP_*). */
export const JOB_OP = 8;
/** [3] threads taking part in this job. */
export const JOB_THREADS = 12;
/** [4] base of the per-thread scratch; [5] its bytes per thread. */
export const JOB_SCRATCH_BASE = 16;
export const JOB_SCRATCH_STRIDE = 20;
/** [6..29] the operation's arguments. */
export const JOB_ARGS = 24;
export const JOB_MAX_ARGS = 24;
/** [30..31] claim word (i64): job id << 32 | next chunk, advanced by compare-and-swap. */
export const JOB_CLAIM = 120;
/** [32 + tid] per-thread result (the read kernel's checksum). */
export const JOB_RESULTS = 128;
/** Size of the descriptor and the most threads it has result words for. */
export const JOB_BYTES = 256;
export const JOB_MAX_THREADS = 32;

export const OP_QUIT = -1;
export const OP_F32_GEMM = 1;
export const OP_Q4_GEMM = 2;
export const OP_ATTENTION = 3;
export const OP_READ = 4;
export const OP_Q8_GEMM = 5;
/** One token through listed row-block ranges of a q4 weight (the rows a sparse layer needs). */
export const OP_Q4_ROWS = 6;
/** The decoder's row-wise kernels (RMSNorm, AltUp, GELU, residual adds), rows cut between the threads (assembly/row_jobs.ts). */
export const OP_ROW_OPS = 8;
// The towers' other operations (assembly/tower_ops.ts), numbered apart from the GEMM ops.
export const OP_DW_CONV2D = 16;
export const OP_RMS_NORM_ACT = 17;
export const OP_MQA = 18;

/** Every constant above by name (the test compares them with the module's exported globals). */
export const JOB_LAYOUT: Readonly<Record<string, number>> = {
  JOB_ID, JOB_DONE, JOB_OP, JOB_THREADS, JOB_SCRATCH_BASE, JOB_SCRATCH_STRIDE, JOB_ARGS, JOB_MAX_ARGS, JOB_CLAIM,
  JOB_RESULTS, JOB_BYTES, JOB_MAX_THREADS, OP_QUIT, OP_F32_GEMM, OP_Q4_GEMM, OP_ATTENTION, OP_READ, OP_Q8_GEMM,
  OP_Q4_ROWS, OP_ROW_OPS, OP_DW_CONV2D, OP_RMS_NORM_ACT, OP_MQA,
};
