/**
 * `npm run bench:memory [-- --json] [-- --tokens N]`: resident memory of an int4 model with the
 * exact Gemma 3n E2B text shapes, with the per-layer embedding table resident vs streamed from
 * disk, and the decode speed of each. Each mode runs in its own child process so RSS is clean.
 *
 * Last line with --json: {rss_resident_mb, rss_streamed_mb, effective_weights_mb, ple_table_mb,
 * kv_cache_mb, decode_tok_s_resident, decode_tok_s_streamed, ...}. rss_* are the peak RSS of the
 * process during the decode; effective_weights_mb is every text weight except the PLE table
 * (and the towers, which this text-only model does not have), as stored (bf16).
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { loadTextWeights } from '../src/checkpoint/weights.js';
import { Gemma3nTextModel } from '../src/model/text_model.js';
import { argmax } from '../src/engine/greedy.js';
import { createNodeWasmKernels } from '../src/node/wasm_host.js';
import { packedE2B, SyntheticE2BStore } from './e2b_synthetic.js';

const MB = 2 ** 20;

interface ChildResult {
  mode: string;
  load_s: number;
  rss_after_load_mb: number;
  rss_peak_decode_mb: number;
  decode_tok_s: number;
  prefill_tok_s: number;
  kv_cache_mb: number;
  effective_weights_mb: number;
  ple_table_mb: number;
  wasm_memory_mb: number;
  ple_rows_read: number;
}

async function child(mode: 'resident' | 'streamed', tokens: number): Promise<ChildResult> {
  const t0 = performance.now();
  const kernels = await createNodeWasmKernels({ threads: 2 });
  const { store, config } = await packedE2B((s) => process.stderr.write(s + '\n'));
  const weights = await loadTextWeights(store, config, kernels, { format: 'q4', ple: mode === 'streamed' ? 'stream' : 'memory', pleCacheRows: 1024 });
  const model = new Gemma3nTextModel(config, weights, kernels);
  const loadS = (performance.now() - t0) / 1000;
  (globalThis as { gc?: () => void }).gc?.();
  const rssAfterLoad = process.memoryUsage().rss;

  // As stored in the original (bf16) checkpoint: the generated store's sizes.
  const original = await SyntheticE2BStore.open();
  let effective = 0,
    ple = 0;
  for (const n of original.names()) {
    const b = (await original.info(n)).byteLength;
    if (n.includes('embed_tokens_per_layer')) ple += b;
    else effective += b;
  }
  await original.close();

  const cache = model.newCache();
  const prompt = Array.from({ length: 16 }, (_, i) => (i * 7919 + 11) % 262_144);
  const tp = performance.now();
  let { logits } = await model.forward(prompt, cache);
  const prefillS = (performance.now() - tp) / 1000;
  let peak = process.memoryUsage().rss;
  const td = performance.now();
  for (let s = 0; s < tokens; s++) {
    // Random-weight argmax can repeat one id; vary the input so new PLE rows are needed.
    const next = (argmax(logits) + s * 104_729) % 262_144;
    ({ logits } = await model.forward([next], cache));
    const rss = process.memoryUsage().rss;
    if (rss > peak) peak = rss;
  }
  const decodeS = (performance.now() - td) / 1000;
  const table = weights.embed_tokens_per_layer as { stats?: { misses: number } };
  return {
    mode,
    load_s: round(loadS),
    rss_after_load_mb: round(rssAfterLoad / MB),
    rss_peak_decode_mb: round(peak / MB),
    decode_tok_s: round(tokens / decodeS),
    prefill_tok_s: round(prompt.length / prefillS),
    kv_cache_mb: round(cache.bytes / MB),
    effective_weights_mb: round(effective / MB),
    ple_table_mb: round(ple / MB),
    wasm_memory_mb: round(process.memoryUsage().arrayBuffers / MB),
    ple_rows_read: table.stats?.misses ?? 0,
  };
}

const round = (x: number): number => Math.round(x * 100) / 100;

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const tokIdx = args.indexOf('--tokens');
  const tokens = tokIdx >= 0 ? Number(args[tokIdx + 1]) : 256;
  const childIdx = args.indexOf('--child');
  if (childIdx >= 0) {
    const r = await child(args[childIdx + 1] as 'resident' | 'streamed', tokens);
    process.stdout.write(JSON.stringify(r) + '\n');
    process.exit(0);
  }
  const json = args.includes('--json');
  const self = fileURLToPath(import.meta.url);
  const run = (mode: string): ChildResult => {
    process.stderr.write(`running ${mode} (E2B shapes, int4, ${tokens} decode tokens) ...\n`);
    const out = execFileSync(process.execPath, ['--expose-gc', '--no-liftoff', self, '--child', mode, '--tokens', String(tokens)], {
      stdio: ['ignore', 'pipe', 'inherit'],
      maxBuffer: 1 << 20,
    });
    return JSON.parse(out.toString().trim().split('\n').pop()!) as ChildResult;
  };
  const resident = run('resident');
  const streamed = run('streamed');
  const rows: [string, string, string][] = [
    ['peak RSS during decode (MB)', String(resident.rss_peak_decode_mb), String(streamed.rss_peak_decode_mb)],
    ['RSS after load (MB)', String(resident.rss_after_load_mb), String(streamed.rss_after_load_mb)],
    ['decode tok/s', String(resident.decode_tok_s), String(streamed.decode_tok_s)],
    ['prefill tok/s (16 tokens)', String(resident.prefill_tok_s), String(streamed.prefill_tok_s)],
    ['PLE rows read from disk', String(resident.ple_rows_read), String(streamed.ple_rows_read)],
    ['ArrayBuffers incl. WASM memory (MB)', String(resident.wasm_memory_mb), String(streamed.wasm_memory_mb)],
    ['load time (s)', String(resident.load_s), String(streamed.load_s)],
  ];
  const out = process.stdout;
  out.write(`\nGemma 3n E2B shapes, int4 weights (WASM, 2 threads), ${tokens}-token decode\n`);
  out.write(
    `effective weights ${resident.effective_weights_mb} MB (bf16, as stored), PLE table ${resident.ple_table_mb} MB, KV cache ${streamed.kv_cache_mb} MB\n\n`,
  );
  out.write(`| | PLE resident | PLE streamed |\n|---|---|---|\n`);
  for (const r of rows) out.write(`| ${r.join(' | ')} |\n`);
  const summary = {
    rss_resident_mb: resident.rss_peak_decode_mb,
    rss_streamed_mb: streamed.rss_peak_decode_mb,
    effective_weights_mb: resident.effective_weights_mb,
    ple_table_mb: resident.ple_table_mb,
    kv_cache_mb: streamed.kv_cache_mb,
    decode_tok_s_resident: resident.decode_tok_s,
    decode_tok_s_streamed: streamed.decode_tok_s,
    decode_ratio_streamed_vs_resident: round(streamed.decode_tok_s / resident.decode_tok_s),
    wasm_memory_mb: streamed.wasm_memory_mb,
    tokens,
  };
  if (json) out.write(JSON.stringify(summary) + '\n');
}

await main();
