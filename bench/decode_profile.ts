/**
 * `node --no-liftoff dist/bench/decode_profile.js [--steps=N] [--threads=N] [--row-ops]`: times decode steps of
 * the real decoder on the synthetic E2B int4 model and splits each step into kernel calls
 * (linears by shape, attention) and the JavaScript around them; `--row-ops` then alternates steps with
 * the row-wise math (norms, AltUp) in WASM and in TypeScript. A developer's tool: the
 * headline numbers come from `npm run bench`.
 */
import type { AttentionParams, LinearWeight } from '../src/kernels/kernels.js';
import { createNodeWasmKernels } from '../src/node/wasm_host.js';
import { createRealE2eModel } from './e2e.js';

const args = process.argv.slice(2);
const opt = (name: string, d: number) => {
  const a = args.find((x) => x.startsWith(`--${name}=`));
  return a ? Number(a.split('=')[1]) : d;
};
const steps = opt('steps', 24),
  threads = opt('threads', 2),
  smallJob = opt('small-job-macs', -1);

async function main(): Promise<void> {
  const k = await createNodeWasmKernels({ threads, relaxed: 'auto' });
  if (smallJob >= 0) k.smallJob = smallJob;
  const model = await createRealE2eModel(k, (s) => console.error(s));
  await model.prefill(128);
  for (let i = 0; i < 4; i++) await model.decode();
  // Wrap the kernel calls to attribute time.
  const acc = new Map<string, { ms: number; n: number }>();
  const add = (key: string, ms: number) => {
    const e = acc.get(key) ?? { ms: 0, n: 0 };
    e.ms += ms;
    e.n++;
    acc.set(key, e);
  };
  // linear() goes through linearMany(), so wrapping the latter sees every call once
  const many = k.linearMany.bind(k),
    att = k.attention.bind(k);
  k.linearMany = (ws: readonly LinearWeight[], x: Float32Array, T: number, ys: readonly Float32Array[]) => {
    const t0 = performance.now();
    many(ws, x, T, ys);
    add(`linear ${ws.map((w) => `${w.outDim}`).join('+')}x${ws[0].inDim}`, performance.now() - t0);
  };
  k.attention = (p: AttentionParams) => {
    const t0 = performance.now();
    att(p);
    add('attention', performance.now() - t0);
  };
  const someRows = k.linearRows.bind(k); // the sparse layers' up_proj (src/model/mlp.ts)
  k.linearRows = (w: LinearWeight, x: Float32Array, y: Float32Array, ranges: Int32Array, n: number) => {
    const t0 = performance.now();
    someRows(w, x, y, ranges, n);
    add(`rows of ${w.outDim}x${w.inDim}`, performance.now() - t0);
  };
  const t0 = performance.now();
  for (let i = 0; i < steps; i++) await model.decode();
  const total = (performance.now() - t0) / steps;
  let kernels = 0;
  const rows = [...acc].sort((a, b) => b[1].ms - a[1].ms);
  for (const [key, e] of rows) {
    kernels += e.ms / steps;
    console.log(
      `${key.padEnd(24)} ${(e.ms / steps).toFixed(2).padStart(7)} ms/token  ${(e.n / steps).toFixed(0).padStart(4)} calls  ${((1000 * e.ms) / e.n).toFixed(0).padStart(6)} µs/call`,
    );
  }
  console.log(
    `kernels ${kernels.toFixed(1)} ms, other JS ${(total - kernels).toFixed(1)} ms, total ${total.toFixed(1)} ms/token = ${(1000 / total).toFixed(2)} tok/s (${threads} threads)`,
  );
  if (args.includes('--row-ops')) {
    // Same run, alternating: the decoder's row-wise math in WASM (k.rowOps) and in TypeScript.
    k.linearMany = many;
    k.attention = att;
    k.linearRows = someRows;
    const own = k.rowOps,
      time = { wasm: 0, ts: 0 };
    for (let i = 0; i < 2 * steps; i++) {
      const which = i % 2 ? 'ts' : 'wasm';
      Object.defineProperty(k, 'rowOps', { value: which === 'ts' ? undefined : own, configurable: true });
      const t = performance.now();
      await model.decode();
      time[which] += performance.now() - t;
    }
    Object.defineProperty(k, 'rowOps', { value: own, configurable: true });
    console.log(`row ops in WASM ${(time.wasm / steps).toFixed(1)} ms/token, in TypeScript ${(time.ts / steps).toFixed(1)} ms/token (alternating steps)`);
  }
  k.dispose();
}
main().catch((e) => {
  console.error(e);
  process.exit(1);
});
