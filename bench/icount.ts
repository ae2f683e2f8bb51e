/**
 * Instructions per int4 weight, counted rather than timed (a loaded or virtual machine gives no
 * stable timings and often no hardware counters): runs R calls of one 8192×2048 int4 linear on
 * one thread, T tokens each. Run it under callgrind twice and divide the difference:
 *
 *   valgrind --tool=callgrind --smc-check=all --callgrind-out-file=/dev/null \
 *     node --no-liftoff dist/bench/icount.js --reps=0 --tokens=1      # and --reps=4
 *   (Collected(4) - Collected(0)) / 4 / (8192·2048) = x86 instructions per weight (per MAC at T > 1: / T)
 *
 * `--simd` uses the SIMD128 build instead of Relaxed SIMD. The README's GEMV/GEMM figures
 * ("instructions per weight") come from this.
 */
import { createNodeWasmKernels } from '../src/node/wasm_host.js';
import { randomQ4 } from './kernels.js';

const args = process.argv.slice(2);
const opt = (name: string, d: number) => {
  const a = args.find((x) => x.startsWith(`--${name}=`));
  return a ? Number(a.split('=')[1]) : d;
};
const reps = opt('reps', 0),
  T = opt('tokens', 1);

async function main(): Promise<void> {
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
