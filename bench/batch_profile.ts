/**
 * `node --no-liftoff dist/bench/batch_profile.js [--batches=1,2,4,8] [--steps=N] [--threads=N] [--prompt=N]`:
 * where a batched decode step (Gemma3nTextModel.forwardBatch, one token of each of B sequences)
 * spends its time, against B = 1, on the synthetic E2B-shape int4 model (the real decoder).
 * Every kernel call is wrapped and attributed (int4 linears by shape, attention, the WASM
 * elementwise kernels); what is left is the JavaScript around them (AltUp, norms, RoPE, the
 * sparse layers' top-k, the PLE gather, embedding). A developer's tool, like decode_profile.ts:
 * run it under `flock /work/bench.lock` and read the ratios of one run, not the absolute times.
 *
 * Per B it prints ms per step by category, and the step's cost relative to B = 1: a step of B
 * rows that costs c × the lone step gives B / c × the lone decode rate (the target is ≥ 4 at B = 8).
 */
import type { AttentionParams, Kernels, LinearWeight } from '../src/kernels/kernels.js';
import { createNodeWasmKernels } from '../src/node/wasm_host.js';
import { packedE2B } from './e2b_synthetic.js';
import { loadTextWeights } from '../src/checkpoint/weights.js';
import { Gemma3nTextModel } from '../src/model/text_model.js';
import type { KVCache } from '../src/model/kv_cache.js';

const args = process.argv.slice(2);
const opt = (name: string, d: string) => {
  const a = args.find((x) => x.startsWith(`--${name}=`));
  return a ? a.split('=')[1] : d;
};
const batches = opt('batches', '1,2,4,8').split(',').map(Number);
const steps = Number(opt('steps', '6')),
  threads = Number(opt('threads', '2')),
  promptLen = Number(opt('prompt', '32'));
const json = args.includes('--json');

type Acc = Map<string, { ms: number; n: number }>;

/** Wraps the kernels' compute calls so each outermost call's time goes to a key (linear → linearMany is counted once). */
function instrument(k: Kernels, acc: Acc): void {
  let depth = 0;
  const add = (key: string, ms: number) => {
    const e = acc.get(key) ?? { ms: 0, n: 0 };
    e.ms += ms;
    e.n++;
    acc.set(key, e);
  };
  const wrap = <A extends unknown[]>(name: keyof Kernels, key: (...a: A) => string) => {
    const f = (k[name] as unknown as (...a: A) => void).bind(k);
    (k as unknown as Record<string, unknown>)[name] = (...a: A) => {
      depth++;
      const t0 = performance.now();
      try {
        f(...a);
      } finally {
        depth--;
        if (depth === 0) add(key(...a), performance.now() - t0);
      }
    };
  };
  const shape = (ws: readonly LinearWeight[], T: number) => `linear ${ws.map((w) => w.outDim).join('+')}x${ws[0]!.inDim}`.padEnd(22) + ` (T=${T})`;
  wrap('linearMany', (ws: readonly LinearWeight[], _x: Float32Array, T: number) => shape(ws, T));
  wrap('linear', (w: LinearWeight, _x: Float32Array, T: number) => shape([w], T));
  // the sparse layers' up_proj rows at B = 1 (src/model/mlp.ts), otherwise counted as JavaScript
  if (k.linearRows) wrap('linearRows', (w: LinearWeight) => `linear ${w.outDim}x${w.inDim} rows`.padEnd(22) + ' (T=1)');
  wrap('attention', (_p: AttentionParams) => 'attention');
  wrap('geluMul', () => 'geluMul (wasm)');
  wrap('softcap', () => 'softcap (wasm)');
}

async function main(): Promise<void> {
  const k = await createNodeWasmKernels({ threads, relaxed: 'auto' });
  const { store, config } = await packedE2B((s) => console.error(s));
  const weights = await loadTextWeights(store, config, k, { format: 'q4', ple: 'stream' });
  const model = new Gemma3nTextModel(config, weights, k);
  const acc: Acc = new Map();
  instrument(k, acc);
  const result: Record<string, number> = {};
  let base = 0;
  for (const B of batches) {
    const caches: KVCache[] = [];
    for (let b = 0; b < B; b++) caches.push(model.newCache());
    // Each sequence's own prompt (prefilled in one batched step), then two warm-up decode steps.
    await model.forwardBatch(caches.map((cache, b) => ({ ids: Array.from({ length: promptLen }, (_, i) => ((i * 7 + b * 13 + 2) % 1000) + 2), cache })));
    const decode = () => model.forwardBatch(caches.map((cache, b) => ({ ids: [((cache.position * 31 + b) % 1000) + 2], cache })));
    for (let i = 0; i < 2; i++) await decode();
    acc.clear();
    const t0 = performance.now();
    for (let i = 0; i < steps; i++) await decode();
    const step = (performance.now() - t0) / steps;
    if (B === batches[0]) base = step;
    let kernels = 0;
    console.log(
      `\nB = ${B}: ${step.toFixed(1)} ms per step (${(step / base).toFixed(2)}× the B=${batches[0]} step), ${((1000 * B) / step).toFixed(2)} tok/s aggregate`,
    );
    for (const [key, e] of [...acc].sort((a, b) => b[1].ms - a[1].ms)) {
      kernels += e.ms / steps;
      console.log(`  ${key.padEnd(34)} ${(e.ms / steps).toFixed(2).padStart(8)} ms  ${(e.n / steps).toFixed(0).padStart(4)} calls`);
    }
    console.log(`  ${'kernels'.padEnd(34)} ${kernels.toFixed(2).padStart(8)} ms`);
    console.log(`  ${'JavaScript around them'.padEnd(34)} ${(step - kernels).toFixed(2).padStart(8)} ms`);
    result[`step_ms_${B}`] = Math.round(step * 10) / 10;
    result[`kernel_ms_${B}`] = Math.round(kernels * 10) / 10;
    result[`js_ms_${B}`] = Math.round((step - kernels) * 10) / 10;
    result[`speedup_${B}`] = Math.round(((B * base) / step) * 100) / 100;
    for (const c of caches) c.release();
  }
  k.dispose();
  if (json) console.log(JSON.stringify(result));
}
main().catch((e) => {
  console.error(e);
  process.exit(1);
});
