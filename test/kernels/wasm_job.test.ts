// The job descriptor's layout is written twice, in assembly/job_layout.ts (read by `run`) and
// src/kernels/wasm_job_layout.ts (written by the caller, read by the workers' program). The
// compiled modules export the AssemblyScript constants as globals; every build must agree with
// the TypeScript side, name for name.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { JOB_LAYOUT } from '../../src/kernels/wasm_job_layout.js';
import { WasmJobs } from '../../src/kernels/wasm_job.js';
import { WORKER_SOURCE } from '../../src/kernels/wasm_worker.js';
import { nodeWasmHost } from '../../src/node/wasm_host.js';
import { ensureWasmBuilt } from '../helpers.js';

ensureWasmBuilt();
nodeWasmHost().enableRelaxedSimd!(); // Node 20: the relaxed builds compile only with the V8 flag

describe.each(['simd', 'relaxed', 'simd_mt', 'relaxed_mt'])('kernels_%s.wasm', (variant) => {
  it('exports the descriptor layout with the values src/kernels/wasm_job_layout.ts uses', () => {
    const module = new WebAssembly.Module(readFileSync(new URL(`../../build/kernels_${variant}.wasm`, import.meta.url)));
    const globals = WebAssembly.Module.exports(module).filter((e) => e.kind === 'global').map((e) => e.name);
    expect(globals.filter((n) => /^(JOB|OP)_/.test(n)).sort()).toEqual(Object.keys(JOB_LAYOUT).sort());
    // Instantiate on a scratch memory to read the values (no kernel runs).
    const shared = variant.endsWith('_mt');
    const memory = new WebAssembly.Memory({ initial: 16, maximum: 65536, shared });
    const inst = new WebAssembly.Instance(module, { env: { memory, abort() { throw new Error('abort'); } } });
    const values = Object.fromEntries(Object.keys(JOB_LAYOUT).map((n) => [n, (inst.exports[n] as WebAssembly.Global).value as number]));
    expect(values).toEqual(JOB_LAYOUT);
  });
});

it('descriptor fields do not overlap and fit the descriptor', () => {
  const L = JOB_LAYOUT;
  expect(L.JOB_ARGS + 4 * L.JOB_MAX_ARGS).toBeLessThanOrEqual(L.JOB_CLAIM);
  expect(L.JOB_CLAIM % 8).toBe(0); // an i64 atomic needs 8-byte alignment
  expect(L.JOB_RESULTS + 4 * L.JOB_MAX_THREADS).toBeLessThanOrEqual(L.JOB_BYTES);
  const words = [L.JOB_ID, L.JOB_DONE, L.JOB_OP, L.JOB_THREADS, L.JOB_SCRATCH_BASE, L.JOB_SCRATCH_STRIDE];
  expect(new Set(words).size).toBe(words.length);
  expect(Math.max(...words) + 4).toBeLessThanOrEqual(L.JOB_ARGS);
});

it('the worker program reads the job id and op words of the layout', () => {
  expect(WORKER_SOURCE).toContain(`Atomics.load(ctl, ${JOB_LAYOUT.JOB_ID / 4})`);
  expect(WORKER_SOURCE).toContain(`Atomics.load(ctl, ${JOB_LAYOUT.JOB_OP / 4}) === ${JOB_LAYOUT.OP_QUIT}`);
  expect(WORKER_SOURCE).toContain(`Atomics.notify(ctl, ${JOB_LAYOUT.JOB_DONE / 4})`);
});

describe.each(['simd_mt', 'relaxed_mt'])('kernels_%s.wasm: a worker late for a finished job', (variant) => {
  it('claims nothing of the next job whose op and arguments it reads under the old id', () => {
    // A worker that woke late for job N runs `run(job, tid, N)`: it reads the op and arguments
    // first and claims after. If the caller has meanwhile written job N+1's op and arguments
    // (more chunks than N had) but not yet opened it, the late worker must not run any of them.
    const module = new WebAssembly.Module(readFileSync(new URL(`../../build/kernels_${variant}.wasm`, import.meta.url)));
    const memory = new WebAssembly.Memory({ initial: 64, maximum: 65536, shared: true });
    const inst = new WebAssembly.Instance(module, { env: { memory, abort() { throw new Error('abort'); } } });
    const run = inst.exports.run as (job: number, tid: number, id: number) => number;
    const L = JOB_LAYOUT, ROW_GELU_MUL = 4, ROW_BLOCK = 4096;
    const job = 2 << 20, a = job + 4096, b = a + 4 * 4 * ROW_BLOCK, a2 = b + 4 * 4 * ROW_BLOCK;
    const f32 = new Float32Array(memory.buffer);
    f32.fill(0.5, a / 4, a2 / 4 + 4 * ROW_BLOCK);
    const jobs = new WasmJobs(job, run, true, false, memory.buffer);
    // Job N: a ← gelu(a)·b over 2 blocks of ROW_BLOCK on "2 threads" (the caller runs both chunks).
    jobs.dispatch(L.OP_ROW_OPS, [ROW_GELU_MUL, 2, a, b, 2 * ROW_BLOCK], 2);
    const id = new Int32Array(memory.buffer, job, L.JOB_BYTES / 4)[L.JOB_ID / 4];
    expect(f32[a / 4]).not.toBe(0.5); // job N ran
    // Job N+1's op and arguments, written but not opened: 4 blocks of a2.
    const ctl = new Int32Array(memory.buffer, job, L.JOB_BYTES / 4);
    const next = [ROW_GELU_MUL, 4, a2, b, 4 * ROW_BLOCK];
    next.forEach((v, i) => (ctl[L.JOB_ARGS / 4 + i] = v));
    const doneBefore = ctl[L.JOB_DONE / 4];
    run(job, 1, id); // the late worker
    expect(ctl[L.JOB_DONE / 4]).toBe(doneBefore);
    expect(Array.from(f32.subarray(a2 / 4, a2 / 4 + 4 * ROW_BLOCK)).every((v) => v === 0.5)).toBe(true);
  });
});
