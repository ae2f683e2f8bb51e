/**
 * `npm run bench:serve [-- --json]`: the HTTP server under concurrent load, real requests on
 * loopback, on the synthetic E2B-shape int4 model (the real decoder, bench/e2b_synthetic.ts) with
 * the real Gemma tokenizer, WASM kernels on 2 threads, continuous batching with 8 slots.
 *
 *   tok_s_B          aggregate decode tokens/s with B concurrent streams (B = 1, 2, 4, 8): content
 *                    chunks received by all streams while all B were decoding, per second
 *   ttft_p50/p95_ms_8  time to first token of the 8 concurrent streams (request sent → first chunk)
 *   ttft_prefix_miss_ms / ttft_prefix_hit_ms  one request alone with a ~500-token system prompt:
 *                    the first time (computed) and again with another question (K/V reused);
 *                    a second such pair only when the run is still under 3 minutes, so the whole
 *                    command stays within 5 minutes on this 2-core machine
 *   elapsed_s        the run's wall time (model load included)
 *
 * The last stdout line (with --json) is one JSON object with these keys.
 */
import { cpus } from 'node:os';
import { request } from 'node:http';
import { packedE2B } from './e2b_synthetic.js';
import { loadTextWeights } from '../src/checkpoint/weights.js';
import { parseModelConfig } from '../src/checkpoint/config.js';
import { Gemma3nTextModel } from '../src/model/text_model.js';
import { Gemma3n } from '../src/engine/engine.js';
import { loadFolderTokenizer } from '../src/engine/load_tokenizer.js';
import { createNodeWasmKernels } from '../src/node/wasm_host.js';
import { ensureDefaultModel } from '../src/node/default_model.js';
import { NodeFolder } from '../src/node/fs_folder.js';
import { E2B_TEXT_CONFIG } from './e2b_synthetic.js';
import { createServer } from '../src/server/server.js';

const json = process.argv.includes('--json');
const arg = (name: string, def: number): number => {
  const a = process.argv.find((x) => x.startsWith(`--${name}=`));
  return a ? Number(a.split('=')[1]) : def;
};
const DECODE = arg('tokens', 48);
const log = (s: string) => process.stderr.write(s + '\n');
const now = () => performance.now();
const tStart = now();

const kernels = await createNodeWasmKernels({ threads: 2 });
const { store, config } = await packedE2B(log);
const weights = await loadTextWeights(store, config, kernels, { format: 'q4', ple: 'stream' });
const model = new Gemma3nTextModel(config, weights, kernels);
const tok = await loadFolderTokenizer(new NodeFolder(await ensureDefaultModel(log)));
const g3n = Gemma3n.fromModel(model, parseModelConfig(JSON.stringify(E2B_TEXT_CONFIG), '<synthetic E2B>'), tok);
const server = createServer(g3n, { parallel: 8, prefillChunk: 128, prefixCacheBytes: 512 * 2 ** 20 });
const { url } = await server.listen(0, '127.0.0.1');
const chat = `${url}/v1/chat/completions`;

interface StreamRun {
  sent: number;
  first: number;
  chunks: number[];
  end: number;
}

/** One streamed chat completion; the arrival time of every content chunk. */
function stream(messages: object[], maxTokens: number): Promise<StreamRun> {
  return new Promise((resolve, reject) => {
    const run: StreamRun = { sent: now(), first: 0, chunks: [], end: 0 };
    const req = request(chat, { method: 'POST', headers: { 'Content-Type': 'application/json' } }, (res) => {
      let buf = '';
      res.on('data', (c: Buffer) => {
        buf += c.toString('utf8');
        let i;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const ev = buf.slice(0, i);
          buf = buf.slice(i + 2);
          if (ev.includes('"content":"') && !ev.includes('"content":""')) {
            const t = now();
            if (!run.first) run.first = t;
            run.chunks.push(t);
          }
        }
      });
      res.on('end', () => {
        run.end = now();
        if (res.statusCode !== 200) reject(new Error(`HTTP ${res.statusCode}: ${buf}`));
        else resolve(run);
      });
    });
    req.on('error', reject);
    req.end(JSON.stringify({ messages, max_tokens: maxTokens, temperature: 0, stream: true }));
  });
}

const words = ['river', 'mountain', 'lantern', 'orchard', 'compass', 'harbor', 'meadow', 'glacier', 'violin', 'canyon', 'ember', 'falcon'];
const question = (i: number, n = 24) => Array.from({ length: n }, (_, j) => words[(i * 5 + j * 7) % words.length]).join(' ') + `? (${i})`;
let serial = 0;

/** B concurrent streams; decode rate over the window where all B are decoding. */
async function round(B: number): Promise<{ tokS: number; ttfts: number[] }> {
  const runs = await Promise.all(Array.from({ length: B }, () => stream([{ role: 'user', content: question(serial++) }], DECODE)));
  const from = Math.max(...runs.map((r) => r.first)),
    to = Math.min(...runs.map((r) => r.end));
  const chunks = runs.reduce((n, r) => n + r.chunks.filter((t) => t > from && t <= to).length, 0);
  return { tokS: chunks / ((to - from) / 1000), ttfts: runs.map((r) => r.first - r.sent) };
}

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
};
const r1 = (x: number) => Math.round(x * 10) / 10;

await round(1); // warm-up (JIT, first allocations)
const result: Record<string, number | string> = {};
for (const B of [1, 2, 4, 8]) {
  const r = await round(B);
  result[`tok_s_${B}`] = r1(r.tokS);
  if (B === 8) {
    result.ttft_p50_ms_8 = Math.round(pct(r.ttfts, 50));
    result.ttft_p95_ms_8 = Math.round(pct(r.ttfts, 95));
  }
  log(`${B} concurrent streams: ${r1(r.tokS)} tok/s aggregate; TTFT ${r.ttfts.map(Math.round).join(', ')} ms`);
}

// Prefix reuse: a long system prompt, computed once (miss), then reused with a new question (hit).
const system = (k: number) => ({ role: 'system', content: `Context ${k}: ` + Array.from({ length: 36 }, (_, i) => question(1000 * (k + 1) + i, 6)).join(' ') });
const misses: number[] = [],
  hits: number[] = [];
for (let k = 0; k < 2 && (k === 0 || now() - tStart < 180_000); k++) {
  const miss = await stream([system(k), { role: 'user', content: question(9000 + k) }], 2);
  const hit = await stream([system(k), { role: 'user', content: question(9100 + k) }], 2);
  misses.push(miss.first - miss.sent);
  hits.push(hit.first - hit.sent);
}
const promptTokens = g3n.encodePrompt([system(0), { role: 'user', content: question(9000) }]).length;
result.ttft_prefix_miss_ms = Math.round(misses.reduce((a, b) => a + b) / misses.length);
result.ttft_prefix_hit_ms = Math.round(hits.reduce((a, b) => a + b) / hits.length);
result.prefix_prompt_tokens = promptTokens;
result.speedup_8_over_1 = r1(Number(result.tok_s_8) / Number(result.tok_s_1));
result.decode_tokens = DECODE;
result.cpu = cpus()[0]?.model ?? 'unknown';
result.elapsed_s = Math.round((now() - tStart) / 1000);
log(`prefix reuse, ${promptTokens}-token prompt alone: TTFT ${result.ttft_prefix_miss_ms} ms computed, ${result.ttft_prefix_hit_ms} ms reused`);
await server.shutdown(1000);
kernels.dispose();
if (json) console.log(JSON.stringify(result));
else console.table(result);
process.exit(0);
