/**
 * `node --no-liftoff dist/bench/prefill_profile.js [--runs=N] [--tokens=T] [--threads=N] [--js]`: times
 * prefills of a T-token prompt (default 128) through the real decoder on the synthetic E2B int4 model
 * and splits each one into kernel calls (linears by shape, attention, row ops, GELU) and the
 * JavaScript around them, as bench/decode_profile.ts does for a decode step. `--js` adds the V8
 * sampling profiler's self time of the JavaScript functions outside the kernels (node:inspector),
 * which names the loops worth moving into WASM. A developer's tool: the headline numbers come
 * from `npm run bench`.
 */
import { Session } from 'node:inspector/promises';
import type { AttentionParams, LinearWeight, RowOps } from '../src/kernels/kernels.js';
import { createNodeWasmKernels } from '../src/node/wasm_host.js';
import { createRealE2eModel } from './e2e.js';

const args = process.argv.slice(2);
const opt = (name: string, d: number) => {
  const a = args.find((x) => x.startsWith(`--${name}=`));
  return a ? Number(a.split('=')[1]) : d;
};
const runs = opt('runs', 3),
  tokens = opt('tokens', 128),
  threads = opt('threads', 2);

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

async function main(): Promise<void> {
  const k = await createNodeWasmKernels({ threads, relaxed: 'auto' });
  const model = await createRealE2eModel(k, (s) => console.error(s));
  await model.prefill(tokens); // warm-up: scratch sizes, JIT, the PLE rows' pages
  const acc = new Map<string, { ms: number; n: number }>();
  const add = (key: string, ms: number) => {
    const e = acc.get(key) ?? { ms: 0, n: 0 };
    e.ms += ms;
    e.n++;
    acc.set(key, e);
  };
  const timed =
    <A extends unknown[]>(f: (...a: A) => void, key: (...a: A) => string) =>
    (...a: A) => {
      const t0 = performance.now();
      f(...a);
      add(key(...a), performance.now() - t0);
    };
  type Args<F> = F extends (...a: infer A) => void ? A : never;
  // linear() goes through linearMany(), so wrapping the latter sees every call once
  const many = k.linearMany.bind(k);
  k.linearMany = timed(
    many,
    (ws: readonly LinearWeight[], _x: Float32Array, T: number) => `linear ${ws.map((w) => `${w.outDim}`).join('+')}x${ws[0].inDim}${T === 1 ? ' T=1' : ''}`,
  );
  k.attention = timed(k.attention.bind(k), (p: AttentionParams) => `attention${p.window ? ' sliding' : ' full'}`);
  k.geluMul = timed<Args<typeof k.geluMul>>(k.geluMul.bind(k), () => 'geluMul');
  k.softcap = timed<Args<typeof k.softcap>>(k.softcap.bind(k), () => 'softcap');
  const own = k.rowOps,
    wrapped = {} as Record<string, unknown>;
  for (const name of Object.keys(own) as (keyof RowOps)[]) {
    const f = own[name] as (...a: unknown[]) => unknown;
    wrapped[name] = (...a: unknown[]) => {
      const t0 = performance.now();
      const r = f(...a);
      add(`rowOps.${name}`, performance.now() - t0);
      return r;
    };
  }
  Object.defineProperty(k, 'rowOps', { value: wrapped as unknown as RowOps, configurable: true });

  let session: Session | undefined;
  if (args.includes('--js')) {
    session = new Session();
    session.connect();
    await session.post('Profiler.enable');
    await session.post('Profiler.setSamplingInterval', { interval: 100 });
    await session.post('Profiler.start');
  }
  const t0 = performance.now();
  for (let i = 0; i < runs; i++) await model.prefill(tokens);
  const total = (performance.now() - t0) / runs;
  let kernels = 0;
  for (const [key, e] of [...acc].sort((a, b) => b[1].ms - a[1].ms)) {
    kernels += e.ms / runs;
    console.log(
      `${key.padEnd(30)} ${(e.ms / runs).toFixed(1).padStart(8)} ms/prefill  ${(e.n / runs).toFixed(0).padStart(5)} calls  ${((1000 * e.ms) / e.n).toFixed(0).padStart(7)} µs/call`,
    );
  }
  console.log(
    `kernels ${kernels.toFixed(0)} ms, other JS ${(total - kernels).toFixed(0)} ms, total ${total.toFixed(0)} ms/prefill of ${tokens} tokens = ${((1000 * tokens) / total).toFixed(1)} tok/s (${threads} threads, ${k.name})`,
  );
  if (session) {
    const { profile } = (await session.post('Profiler.stop')) as unknown as { profile: { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[] } };
    // self time per function (by name and line), summed over the samples
    const byId = new Map(profile.nodes.map((n) => [n.id, n]));
    const self = new Map<string, number>();
    profile.samples.forEach((id, i) => {
      const n = byId.get(id)!;
      const f = n.callFrame;
      const key = `${f.functionName || '(anonymous)'} ${f.url.replace(/^.*\/dist\//, '')}:${f.lineNumber + 1}`;
      self.set(key, (self.get(key) ?? 0) + (profile.timeDeltas[i] ?? 0) / 1000);
    });
    console.log(`\nJS self time per prefill (V8 sampling profiler), top 25:`);
    for (const [key, ms] of [...self].sort((a, b) => b[1] - a[1]).slice(0, 25)) console.log(`${(ms / runs).toFixed(1).padStart(8)} ms  ${key}`);
    session.disconnect();
  }
  k.dispose();
}
main().catch((e) => {
  console.error(e);
  process.exit(1);
});
