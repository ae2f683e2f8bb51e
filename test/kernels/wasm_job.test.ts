// The job descriptor's layout is written twice, in assembly/job_layout.ts (read by `run`) and
// src/kernels/wasm_job_layout.ts (written by the caller, read by the workers' program). The
// compiled modules export the AssemblyScript constants as globals; every build must agree with
// the TypeScript side, name for name.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { JOB_LAYOUT } from '../../src/kernels/wasm_job_layout.js';
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
