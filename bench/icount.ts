/**
 * Instructions per int4 weight, counted rather than timed (a loaded or virtual machine gives no
 * stable timings and often no hardware counters): runs R calls of one 8192×2048 int4 linear on
 * one thread, T tokens each. Run it under callgrind twice and divide the difference:
 *
 *   valgrind --tool=callgrind --smc-check=all --callgrind-out-file=/dev/null \
 *     node --no-liftoff dist/bench/icount.js --reps=0 --tokens=1      # and --reps=4
 *   (Collected(4) - Collected(0)) / 4 / (8192·2048) = x86 instructions per weight (per MAC at T > 1: / T)
 *
 * `--simd` uses the SIMD128 build instead of Relaxed SIMD; `--row-ops=wasm|ts` counts the row-wise math (below). The README's GEMV/GEMM figures
 * ("instructions per weight") come from this.
 */
import { createNodeWasmKernels } from '../src/node/wasm_host.js';
import { randomQ4 } from './kernels.js';
import type { RowOps } from '../src/kernels/kernels.js';
import { tsRowOps } from '../src/kernels/row_ops.js';

const args = process.argv.slice(2);
const opt = (name: string, d: number) => {
  const a = args.find((x) => x.startsWith(`--${name}=`));
  return a ? Number(a.split('=')[1]) : d;
};
const reps = opt('reps', 0),
  T = opt('tokens', 1);

/**
 * `--row-ops=wasm|ts`: instead of the linear, R × one E2B layer's row-wise math at T tokens (the
 * RMSNorms a layer runs, the AltUp router twice, the 4-stream mix and the correction), through
 * WasmKernels.rowOps or tsRowOps: the JavaScript a decode step moved into WASM.
 */
async function rowOps(ops: RowOps): Promise<void> {
  const H = 2048,
    A = 4,
    D = 256,
    TH = T * H;
  const x = new Float32Array(A * TH).map((_, i) => Math.sin(i)),
    w = new Float32Array(H).map((_, i) => Math.cos(i)),
    wd = w.subarray(0, D),
    rw = new Float32Array(A * H).map((_, i) => Math.sin(3 * i));
  const out = new Float32Array(A * TH),
    normed = new Float32Array(TH),
    dots = new Float64Array(T * A),
    C = new Float32Array(16 * T).fill(0.1),
    coef = new Float32Array(A * T).fill(1.1);
  const layer = () => {
    for (let i = 0; i < 6; i++) ops.rmsNorm(x.subarray(0, TH), w, T, H, 1e-6, out.subarray(0, TH)); // input, post-attn, pre/post-FFN, LAuReL, PLE
    ops.rmsNorm(out.subarray(0, 8 * T * D), wd, 8 * T, D, 1e-6); // q_norm
    ops.rmsNorm(out.subarray(0, 2 * T * D), wd, 2 * T, D, 1e-6); // k_norm
    ops.rmsNorm(out.subarray(0, 2 * T * D), null, 2 * T, D, 1e-6); // v_norm
    for (let i = 0; i < 2; i++) ops.altupRouterDots(x.subarray(0, TH), w, rw, T, H, A, 1e-6, Math.fround(1 / H), normed, dots);
    ops.altupMix4(C, x, out, T, H);
    ops.altupCorrectStreams(out, x.subarray(0, TH), 0, coef, x, T, H, A);
  };
  for (let i = 0; i < 3; i++) layer(); // warm up in every run, so only the reps differ
  for (let i = 0; i < reps; i++) layer();
  console.log(`row ops: ${reps} × one layer at T = ${T}, out[0] = ${out[0]}`);
}

async function main(): Promise<void> {
  const which = args.find((a) => a.startsWith('--row-ops='))?.split('=')[1];
  if (which) {
    const k = await createNodeWasmKernels({ threads: 1 });
    await rowOps(which === 'ts' ? tsRowOps : k.rowOps);
    k.dispose();
    return;
  }
  const k = await createNodeWasmKernels({ threads: 1, relaxed: !args.includes('--simd') });
  const outDim = 8192,
    inDim = 2048;
  const w = k.createLinear(randomQ4(outDim, inDim, 1), outDim, inDim);
  const x = new Float32Array(T * inDim).map((_, i) => Math.sin(i)),
    y = new Float32Array(T * outDim);
  k.linear(w, x, T, y); // compiles and warms up in every run, so only the reps differ
  for (let i = 0; i < reps; i++) k.linear(w, x, T, y);
  console.log(`${k.name}: ${reps} × [${T}, ${inDim}] · [${outDim}, ${inDim}]ᵀ, y[0] = ${y[0]}`);
  k.dispose();
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
