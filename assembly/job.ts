// The job protocol on the WASM side: reading a descriptor's arguments, cutting work into chunks
// and claiming them. Layout: assembly/job_layout.ts.
//
// Work is cut into chunks that threads claim with a compare-and-swap on the claim word, so a
// descheduled worker never holds up the caller: whoever is running takes the next chunk.
// A claim only succeeds while the word still carries this job's id, and the caller rewrites
// the arguments only after every chunk is done, so a claimed chunk always sees its own job.
import { JOB_ARGS, JOB_CLAIM, JOB_DONE } from './job_layout';

/** Argument i of the job. */
// @ts-ignore: decorator
@inline export function arg(job: usize, i: i32): i32 {
  return load<i32>(job + <usize>(JOB_ARGS + i * 4));
}

/** Start of part c of n items cut into `parts` equal parts. */
// @ts-ignore: decorator
@inline export function cut(n: i32, c: i32, parts: i32): i32 {
  return <i32>((<i64>n * c) / parts);
}

/** Claims the next chunk of job `id`, or returns -1 when none is left (or the job is over). */
// @ts-ignore: decorator
@inline export function claim(job: usize, id: i32, nchunks: i32): i32 {
  if (ASC_FEATURE_THREADS) {
    for (;;) {
      const w = atomic.load<i64>(job + JOB_CLAIM);
      if (<i32>(w >>> 32) != id) return -1;
      const c = <i32>(w & 0xffffffff);
      if (c >= nchunks) return -1;
      if (atomic.cmpxchg<i64>(job + JOB_CLAIM, w, w + 1) == w) return c;
    }
    return -1;
  } else {
    const c = load<i32>(job + JOB_CLAIM);
    if (c >= nchunks) return -1;
    store<i32>(job + JOB_CLAIM, c + 1);
    return c;
  }
}

/** Marks one chunk finished. */
// @ts-ignore: decorator
@inline export function finished(job: usize): void {
  if (ASC_FEATURE_THREADS) atomic.add<i32>(job + JOB_DONE, 1);
  else store<i32>(job + JOB_DONE, load<i32>(job + JOB_DONE) + 1);
}
