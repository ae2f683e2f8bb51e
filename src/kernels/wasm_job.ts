/**
 * The job protocol on the calling thread: one kernel call = one job descriptor
 * (src/kernels/wasm_job_layout.ts) written into WASM memory, the workers woken, the caller
 * working like any worker (`run` claims chunks with a compare-and-swap, assembly/job.ts), then
 * waiting until every chunk is done. Chunks a sleeping worker never claimed are simply taken by
 * whoever runs, so a descheduled worker never holds a call up.
 */
import {
  JOB_ARGS, JOB_BYTES, JOB_CLAIM, JOB_DONE, JOB_ID, JOB_MAX_ARGS, JOB_OP, JOB_RESULTS, JOB_SCRATCH_BASE,
  JOB_SCRATCH_STRIDE, JOB_THREADS, OP_QUIT,
} from './wasm_job_layout.js';

/** Caller's busy-wait iterations for the workers to finish before it sleeps. */
const SPIN = 20_000;

export type RunExport = (job: number, tid: number, id: number) => number;

export class WasmJobs {
  private ctl!: Int32Array;
  private claimWord!: BigInt64Array;
  private jobId = 0;

  /** `ptr`: JOB_BYTES of WASM memory for the descriptor; `shared`: workers may be running. */
  constructor(readonly ptr: number, private run: RunExport, private shared: boolean, private canBlock: boolean, buffer: ArrayBufferLike) {
    this.attach(buffer);
  }

  /** Re-creates the views after memory.grow replaced (or extended) the buffer. */
  attach(buffer: ArrayBufferLike): void {
    this.ctl = new Int32Array(buffer, this.ptr, JOB_BYTES / 4);
    this.claimWord = new BigInt64Array(buffer, this.ptr + JOB_CLAIM, 1);
  }

  /** Per-thread result word of the last job (the read kernel's checksum). */
  result(tid: number): number {
    return this.ctl[JOB_RESULTS / 4 + tid];
  }

  /** Runs job `op` on `threads` threads (the caller included) and returns when it is done. */
  dispatch(op: number, args: readonly number[], threads: number, scratchBase = 0, scratchStride = 0): void {
    if (args.length > JOB_MAX_ARGS) throw new Error(`WasmJobs: ${args.length} arguments (at most ${JOB_MAX_ARGS})`);
    const c = this.ctl;
    const id = (this.jobId = (this.jobId + 1) | 0);
    c[JOB_OP / 4] = op;
    c[JOB_THREADS / 4] = threads;
    c[JOB_SCRATCH_BASE / 4] = scratchBase;
    c[JOB_SCRATCH_STRIDE / 4] = scratchStride;
    for (let i = 0; i < args.length; i++) c[JOB_ARGS / 4 + i] = args[i];
    if (!this.shared) {
      c[JOB_DONE / 4] = 0;
      c[JOB_CLAIM / 4] = 0;
      this.run(this.ptr, 0, id);
      return;
    }
    Atomics.store(c, JOB_DONE / 4, 0);
    Atomics.store(this.claimWord, 0, BigInt(id) << 32n); // opens the job's chunks
    if (threads > 1) {
      Atomics.store(c, JOB_ID / 4, id); // wake the workers
      Atomics.notify(c, JOB_ID / 4);
    }
    const chunks = this.run(this.ptr, 0, id);
    let n = 0, done: number;
    while ((done = Atomics.load(c, JOB_DONE / 4)) < chunks) {
      if (++n > SPIN && this.canBlock) Atomics.wait(c, JOB_DONE / 4, done, 1);
    }
    // Close the job before the descriptor is rewritten for the next one. Its chunks are all done,
    // but a worker that woke late may still be in `run` for it, reading the op and arguments
    // before it claims: with the claim word left at (id, chunks so far) it could read the next
    // job's op and arguments and claim one of their chunks under this id, which nothing waits
    // for (seen as a rare "memory access out of bounds" / "divide by zero" in a worker). The
    // counter at its maximum makes every later claim of this id fail.
    Atomics.store(this.claimWord, 0, (BigInt(id) << 32n) | 0x7fffffffn);
  }

  /** Tells the workers to exit their loop. */
  quit(): void {
    Atomics.store(this.ctl, JOB_OP / 4, OP_QUIT);
    Atomics.store(this.ctl, JOB_ID / 4, (this.jobId = (this.jobId + 1) | 0));
    Atomics.notify(this.ctl, JOB_ID / 4);
  }
}
