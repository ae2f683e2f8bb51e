// The job descriptor: one 256-byte block of WASM memory through which the calling thread hands a
// kernel call to every thread (src/kernels/wasm_job.ts writes it; `run` in assembly/index.ts
// reads it). Byte offsets, i32 words unless noted. The TypeScript side keeps the same names
// and values in src/kernels/wasm_job_layout.ts; test/kernels/wasm_job.test.ts reads these
// constants out of the compiled module and holds the two equal.

/** [0] job id: bumped per call; sleeping workers wait on it. */
export const JOB_ID: i32 = 0;
/** [1] chunks finished so far; the caller waits until it reaches the chunk count. */
export const JOB_DONE: i32 = 4;
/** [2] operation (OP_*). */
export const JOB_OP: i32 = 8;
/** [3] threads taking part in this job. */
export const JOB_THREADS: i32 = 12;
/** [4] base of the per-thread scratch; [5] its bytes per thread. */
export const JOB_SCRATCH_BASE: i32 = 16;
export const JOB_SCRATCH_STRIDE: i32 = 20;
/** [6..29] the operation's arguments. */
export const JOB_ARGS: i32 = 24;
export const JOB_MAX_ARGS: i32 = 24;
/** [30..31] claim word (i64): job id << 32 | next chunk, advanced by compare-and-swap. */
export const JOB_CLAIM: i32 = 120;
/** [32 + tid] per-thread result (the read kernel's checksum). */
export const JOB_RESULTS: i32 = 128;
/** Size of the descriptor and the most threads it has result words for. */
export const JOB_BYTES: i32 = 256;
export const JOB_MAX_THREADS: i32 = 32;

export const OP_QUIT: i32 = -1;
export const OP_F32_GEMM: i32 = 1;
export const OP_Q4_GEMM: i32 = 2;
export const OP_ATTENTION: i32 = 3;
export const OP_READ: i32 = 4;
export const OP_Q8_GEMM: i32 = 5;
export const OP_Q4_ROWS: i32 = 6;
/** The decoder's row-wise kernels, rows cut between the threads (assembly/row_jobs.ts). */
export const OP_ROW_OPS: i32 = 8;
// The towers' other operations (assembly/tower_ops.ts), numbered apart from the GEMM ops.
export const OP_DW_CONV2D: i32 = 16;
export const OP_RMS_NORM_ACT: i32 = 17;
export const OP_MQA: i32 = 18;
