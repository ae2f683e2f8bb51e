/**
 * `npm run bench` (node --no-liftoff dist/bench/run.js): kernel throughput next to
 * onnxruntime-node and tfjs, memory bandwidth, and E2B-shape prefill/decode, from one run.
 * `npm run bench -- --json` also prints one JSON object of the headline numbers as the last line.
 * Options: --quick (shorter timing), --only=substring.
 */
import Benchmark from 'benchmark';
import { loadavg } from 'node:os';
import { createNodeWasmKernels } from '../src/node/wasm_host.js';
import { ortCases, tfjsCases } from './kernels_anchors.js';
import { createE2eModel, createRealE2eModel, E2B } from './e2e.js';
import { gemmCases, membwCases, q4GemvCases, type Case } from './kernels.js';
import { llamaCppCases } from './llamacpp.js';

const args = process.argv.slice(2);
const json = args.includes('--json');
const quick = args.includes('--quick');
const only = args.find((a) => a.startsWith('--only='))?.slice(7);

/** rate: from the median sample (robust on a shared machine); best: from the fastest sample. */
interface Row {
  name: string;
  rate: number;
  best: number;
  unit: string;
  rme: number;
  samples: number;
  key?: string;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b),
    m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

async function time(c: Case): Promise<Row> {
  // Warm-up (lets V8 optimise the JS glue), awaited: an async case's calls must not overlap the
  // timed ones (two decode steps at once on one KV cache, or one thread's work on top of another).
  for (let i = 0; i < 2; i++) await c.fn();
  return new Promise((resolve, reject) => {
    const isAsync = c.fn.constructor.name === 'AsyncFunction';
    const b = new Benchmark(c.name, {
      defer: isAsync,
      fn: isAsync
        ? (d: { resolve(): void }) => {
            (c.fn() as Promise<void>).then(() => d.resolve());
          }
        : c.fn,
      minSamples: quick ? 3 : c.unit === 'tok/s' ? 4 : 8,
      maxTime: quick ? 0.5 : c.unit === 'tok/s' ? 5 : 1.5,
      initCount: 1,
      onComplete: () => {
        if (b.error) return reject(b.error);
        const sample = b.stats.sample;
        resolve({
          name: c.name,
          rate: c.units / median(sample),
          best: c.units / Math.min(...sample),
          unit: c.unit,
          rme: b.stats.rme,
          samples: sample.length,
          key: c.key,
        });
      },
      onError: (e: unknown) => reject(e),
    });
    b.run({ async: true });
  });
}

async function main(): Promise<void> {
  const rows: Row[] = [];
  const run = async (cases: Case[] | Promise<Case[]>) => {
    for (const c of await cases) {
      if (only && !c.name.includes(only)) continue;
      const r = await time(c);
      rows.push(r);
      if (!json) console.error(`  ${r.name}: ${r.rate.toFixed(2)} ${r.unit}`);
    }
  };
  console.error(
    `bench: node ${process.version}, load average ${loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')}`,
  );
  const relaxed = await createNodeWasmKernels({ threads: 2, relaxed: 'auto' });
  const simd = await createNodeWasmKernels({ threads: 2, relaxed: false });
  await run(membwCases(relaxed));
  await run(q4GemvCases(relaxed, relaxed.relaxed ? 'relaxed SIMD' : 'simd128', 'int4_gemv_gbs'));
  await run(q4GemvCases(simd, 'simd128', relaxed.relaxed ? 'int4_gemv_simd128_gbs' : undefined));
  await run(ortCases());
  // onnxruntime's pool threads spin for a while after their last run (measured: the next
  // 1-thread decode ran ~1.5x slower right after, not 3 s later): let them go quiet first.
  await new Promise((r) => setTimeout(r, 3000));
  await run(gemmCases(relaxed, 'q4', 128, 'int8 dot', 'gemm_gflops'));
  await run(gemmCases(relaxed, 'f32', 128, 'f32', 'f32_gemm_gflops'));
  await run(tfjsCases());
  simd.dispose();

  // --synthetic-e2e: the linears-only stand-in; default: the real decoder on synthetic E2B weights.
  const model = args.includes('--synthetic-e2e') ? await createE2eModel(relaxed) : await createRealE2eModel(relaxed, (s) => console.error(s));
  const e2e: Case[] = [
    {
      name: `prefill 128 tokens, ${model.description}, 2t`,
      unit: 'tok/s',
      units: 128,
      key: 'prefill_tok_s',
      fn: async () => {
        relaxed.activeThreads = 2;
        await model.prefill(128);
      },
    },
    {
      name: `prefill 128 tokens, ${model.description}, 1t`,
      unit: 'tok/s',
      units: 128,
      key: 'prefill_tok_s_1t',
      fn: async () => {
        relaxed.activeThreads = 1;
        await model.prefill(128);
      },
    },
    {
      name: `decode 1 token (after a 128-token prompt), ${model.description}, 2t`,
      unit: 'tok/s',
      units: 1,
      key: 'decode_tok_s',
      fn: async () => {
        relaxed.activeThreads = 2;
        await model.decode();
      },
    },
    {
      name: `decode 1 token (after a 128-token prompt), ${model.description}, 1t`,
      unit: 'tok/s',
      units: 1,
      key: 'decode_tok_s_1t',
      fn: async () => {
        relaxed.activeThreads = 1;
        await model.decode();
      },
    },
  ];
  relaxed.activeThreads = 2;
  await model.prefill(128);
  await run(e2e);
  const membw2 = rows.find((r) => r.key === 'membw_gbs_2t')?.rate ?? NaN;
  rows.push({
    name: `decode limit: 2-thread bandwidth / ${(model.weightBytesPerToken / 1e9).toFixed(3)} GB of int4 weights per token`,
    rate: (membw2 * 1e9) / model.weightBytesPerToken,
    best: NaN,
    unit: 'tok/s',
    rme: 0,
    samples: 0,
    key: 'decode_limit_tok_s',
  });
  relaxed.dispose();

  // llama.cpp (node-llama-cpp, CPU) on the same synthetic E2B weights as a Q4_0 GGUF; --skip-llamacpp leaves it out.
  let llamacppBackend = '';
  if (!args.includes('--skip-llamacpp')) {
    const anchor = await llamaCppCases((s) => console.error(s));
    if (anchor) {
      llamacppBackend = anchor.backend;
      console.error(`  llama.cpp anchor: ${anchor.backend}`);
      await run(anchor.cases);
      await anchor.dispose();
    }
  }

  // Table
  const w = Math.max(...rows.map((r) => r.name.length));
  console.log(`\n${'case'.padEnd(w)}  ${'median'.padStart(9)}  ${'best'.padStart(9)}  unit      ±%     n`);
  for (const r of rows)
    console.log(
      `${r.name.padEnd(w)}  ${r.rate.toFixed(2).padStart(9)}  ${r.best.toFixed(2).padStart(9)}  ${r.unit.padEnd(7)} ${r.rme.toFixed(1).padStart(5)}  ${String(r.samples).padStart(4)}`,
    );
  const get = (key: string) => rows.find((r) => r.key === key)?.rate ?? NaN;
  const ratios = {
    int4_gemv_2t_vs_ort: get('int4_gemv_gbs_2t') / get('ort_int4_gemv_gbs_2t'),
    decode_vs_limit: get('decode_tok_s') / get('decode_limit_tok_s'),
    gemm_2t_vs_tfjs: get('gemm_gflops_2t') / get('tfjs_gemm_gflops'),
    prefill_2t_vs_llamacpp: get('prefill_tok_s') / get('llamacpp_prefill_tok_s_2t'),
    decode_2t_vs_llamacpp: get('decode_tok_s') / get('llamacpp_decode_tok_s_2t'),
    decode_1t_vs_llamacpp: get('decode_tok_s_1t') / get('llamacpp_decode_tok_s_1t'),
  };
  console.log(
    `\ntargets: int4 GEMV 2t / ORT 2t = ${ratios.int4_gemv_2t_vs_ort.toFixed(2)} (≥ 0.8), decode 2t / limit = ${ratios.decode_vs_limit.toFixed(2)} (≥ 0.5; 1t: ${(get('decode_tok_s_1t') / get('decode_limit_tok_s')).toFixed(2)}), q4 GEMM 2t / tfjs = ${ratios.gemm_2t_vs_tfjs.toFixed(2)} (≥ 2)`,
  );
  if (llamacppBackend)
    console.log(
      `llama.cpp (${llamacppBackend}), same weights as Q4_0 GGUF: ours / llama.cpp = prefill 2t ${ratios.prefill_2t_vs_llamacpp.toFixed(2)}, decode 2t ${ratios.decode_2t_vs_llamacpp.toFixed(2)}, decode 1t ${ratios.decode_1t_vs_llamacpp.toFixed(2)}`,
    );
  console.log(
    `model: ${model.description}; E2B shapes ${JSON.stringify(E2B)}; load average ${loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')}`,
  );
  if (json) {
    const out: Record<string, number | string> = {};
    for (const r of rows) if (r.key) out[r.key] = Number(r.rate.toFixed(3));
    for (const [k, v] of Object.entries(ratios)) out[k] = Number(v.toFixed(3));
    out.e2e_model = model.description;
    if (llamacppBackend) out.llamacpp_backend = llamacppBackend;
    console.log(JSON.stringify(out));
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
