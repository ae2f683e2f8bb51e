/**
 * The worker threads' whole program, as source text a host adapter runs in a worker
 * (worker_threads / Web Workers): it instantiates the kernel module on the shared memory, then
 * loops: wait for the next job id in the descriptor, run its share (`run` claims chunks), count
 * it done. Offsets come from the descriptor layout (src/kernels/wasm_job_layout.ts).
 */
import { JOB_BYTES, JOB_DONE, JOB_ID, JOB_OP, OP_QUIT } from './wasm_job_layout.js';

/**
 * Iterations (~1-2 ms) a worker busy-waits for the next job before sleeping: a decode step
 * issues ~300 calls with up to a millisecond of JavaScript between them, and waking a sleeping
 * worker (futex) costs ~40 µs per call, measured (bench/decode_profile.ts). On 2 cores with
 * 2 threads the spinning core would otherwise be idle.
 */
export const WORKER_SPIN = 400_000;

/** The worker's whole program; adapters call it with a port ({ on, post }). */
export const WORKER_SOURCE = `function gemma3nKernelWorker(port) {
  port.on(async (msg) => {
    const { module, memory, job, tid, spin } = msg;
    const inst = await WebAssembly.instantiate(module, { env: { memory, abort() { throw new Error('wasm abort'); } } });
    const run = inst.exports.run;
    const ctl = new Int32Array(memory.buffer, job, ${JOB_BYTES / 4});
    let seen = Atomics.load(ctl, ${JOB_ID / 4});
    port.post('ready');
    for (;;) {
      let id, n = 0;
      while ((id = Atomics.load(ctl, ${JOB_ID / 4})) === seen) { if (++n > spin) Atomics.wait(ctl, ${JOB_ID / 4}, seen); }
      seen = id;
      if (Atomics.load(ctl, ${JOB_OP / 4}) === ${OP_QUIT}) break;
      run(job, tid, id);
      Atomics.notify(ctl, ${JOB_DONE / 4});
    }
  });
}`;
