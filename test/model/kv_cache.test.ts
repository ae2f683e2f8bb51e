/**
 * The incremental path (prefill + one token at a time, with sliding-window eviction and
 * KV-shared layers) must equal a full re-run over the same tokens, at every position.
 */
import { describe, expect, it } from 'vitest';
import { TsKernels } from '../../src/kernels/ts_kernels.js';
import { Gemma3nTextModel } from '../../src/model/text_model.js';
import { goldenFolder, maxAbsDiff } from '../helpers.js';

describe('KV cache vs full re-run', () => {
  for (const name of ['text-tiny-a', 'text-tiny-b']) {
    it(`${name}: chunked prefill and single-token steps equal one full pass`, async () => {
      const { model, checkpoint } = await Gemma3nTextModel.load(goldenFolder(name), new TsKernels());
      const c = model.config;
      const T = 3 * c.slidingWindow + 5; // well past the window, so eviction happens
      const ids = Array.from({ length: T }, (_, i) => (i * 7919 + 13) % c.vocabSize);
      const full = await model.forward(ids, model.newCache(), { logits: 'all' });
      const V = c.vocabSize;

      // Prefill of 5 tokens, a chunk of 4, then single tokens.
      const cache = model.newCache();
      const rows: Float32Array[] = [];
      const feed = async (chunk: number[]) => rows.push((await model.forward(chunk, cache, { logits: 'all' })).logits);
      await feed(ids.slice(0, 5));
      await feed(ids.slice(5, 9));
      for (let i = 9; i < T; i++) await feed([ids[i]]);
      const inc = new Float32Array(T * V);
      let off = 0;
      for (const r of rows) { inc.set(r, off); off += r.length; }
      expect(maxAbsDiff(inc, full.logits)).toBeLessThan(1e-4);

      // Sliding layers hold at most W-1 positions after eviction; shared layers hold nothing.
      cache.layers.forEach((kv, i) => {
        if (i >= c.numHiddenLayers - c.numKvSharedLayers) expect(kv).toBeNull();
        else if (c.layerTypes[i] === 'sliding_attention') expect(kv!.length).toBe(c.slidingWindow - 1);
        else expect(kv!.length).toBe(T);
      });
      await checkpoint.close();
    });
  }
});

describe('KV cache in WASM memory', () => {
  it('WasmKernels (2 threads): the cache lives in WASM memory, steps equal a full pass, release() frees it', async () => {
    const { createNodeWasmKernels } = await import('../../src/node/wasm_host.js');
    const k = await createNodeWasmKernels({ threads: 2, smallJobMacs: 0 });
    const { model, checkpoint } = await Gemma3nTextModel.load(goldenFolder('text-tiny-a'), k);
    const c = model.config, V = c.vocabSize;
    const T = 2 * c.slidingWindow + 3;
    const ids = Array.from({ length: T }, (_, i) => (i * 104729 + 7) % V);
    const fullCache = model.newCache();
    const full = await model.forward(ids, fullCache, { logits: 'all' });
    fullCache.release();

    const heapBefore = k.heapBytes;
    const cache = model.newCache();
    const rows: Float32Array[] = [(await model.forward(ids.slice(0, 4), cache, { logits: 'all' })).logits];
    for (let i = 4; i < T; i++) rows.push((await model.forward([ids[i]], cache, { logits: 'all' })).logits);
    const inc = new Float32Array(T * V);
    let off = 0;
    for (const r of rows) {
      inc.set(r, off);
      off += r.length;
    }
    expect(maxAbsDiff(inc, full.logits)).toBeLessThan(1e-4);

    // every owned layer's K/V are views of the kernels' shared WASM memory (read in place)
    for (const kv of cache.layers) if (kv) expect(kv.k.buffer).toBeInstanceOf(SharedArrayBuffer);
    expect(k.heapBytes).toBeGreaterThan(heapBefore);
    cache.release();
    expect(k.heapBytes).toBe(heapBefore);
    // a released cache is empty and usable again
    const again = await model.forward(ids.slice(0, 4), cache, { logits: 'all' });
    expect(maxAbsDiff(again.logits, full.logits.subarray(0, 4 * V))).toBeLessThan(1e-4);
    cache.release();
    k.dispose();
    await checkpoint.close();
  });
});
