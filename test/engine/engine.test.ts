/**
 * The generation API on a tiny random model with the real tokenizer: reproducible sampling,
 * streaming forms, stop strings and tokens, cancellation, cache reuse across chat turns,
 * and clear errors for bad requests.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { Gemma3n } from '../../src/engine/engine.js';
import type { KVCache } from '../../src/model/kv_cache.js';
import { greedyGenerate } from '../../src/engine/greedy.js';
import { tinyRealVocabFolder } from '../helpers.js';

let g3n: Gemma3n;
beforeAll(async () => {
  g3n = await Gemma3n.load(tinyRealVocabFolder());
}, 120_000);

describe('Gemma3n engine', () => {
  it('raw ids with temperature 0 equal plain greedy decoding', async () => {
    const ids = [2, 818, 5279, 529];
    const r = await g3n.generate({ ids }, { maxTokens: 10, temperature: 0 });
    expect(r.ids).toEqual(await greedyGenerate(g3n.model, ids, 10));
    expect(r.metrics.generatedTokens).toBe(10);
    expect(r.metrics.promptTokens).toBe(4);
    expect(r.metrics.prefillTokPerS).toBeGreaterThan(0);
    expect(r.metrics.decodeTokPerS).toBeGreaterThan(0);
    expect(r.metrics.timeToFirstTokenMs).toBeGreaterThan(0);
  });

  it('sampling is reproducible with a seed and differs across seeds', async () => {
    const opts = { maxTokens: 12, temperature: 1.5, topK: 50, topP: 0.95, seed: 42 };
    const a = await g3n.generate('The capital of France', opts);
    const b = await g3n.generate('The capital of France', opts);
    const c = await g3n.generate('The capital of France', { ...opts, seed: 43 });
    expect(a.ids).toEqual(b.ids);
    expect(a.ids).not.toEqual(c.ids);
  });

  it('async iterator and callback stream the same text as the result', async () => {
    const pieces: string[] = [];
    const fromCallback: string[] = [];
    const it = g3n.stream('Hello', { maxTokens: 15, temperature: 0, onText: (t) => fromCallback.push(t) });
    let result;
    for (;;) {
      const r = await it.next();
      if (r.done) {
        result = r.value;
        break;
      }
      pieces.push(r.value);
    }
    expect(pieces.join('')).toBe(result.text);
    expect(fromCallback.join('')).toBe(result.text);
    expect(result.text).toBe(g3n.tokenizer!.decode(result.ids.filter((id) => !g3n.defaultStopTokens().includes(id))));
  });

  it('stop strings end generation and are not part of the text', async () => {
    const full = await g3n.generate('Once upon a time', { maxTokens: 20, temperature: 0 });
    expect(full.text.length).toBeGreaterThan(4);
    const stop = full.text.slice(2, 4);
    const cut = await g3n.generate('Once upon a time', { maxTokens: 20, temperature: 0, stop: [stop] });
    expect(cut.text).toBe(full.text.slice(0, full.text.indexOf(stop)));
    expect(cut.text).not.toContain(stop);
  });

  it('stop tokens end generation after the token', async () => {
    const full = await g3n.generate({ ids: [2, 100, 200] }, { maxTokens: 8, temperature: 0 });
    const r = await g3n.generate({ ids: [2, 100, 200] }, { maxTokens: 8, temperature: 0, stopTokens: [full.ids[3]] });
    expect(r.ids).toEqual(full.ids.slice(0, full.ids.indexOf(full.ids[3]) + 1));
    expect(r.metrics.stopReason).toBe('stop_token');
  });

  it('an AbortSignal cancels generation', async () => {
    const ctl = new AbortController();
    let n = 0;
    const r = await g3n.generate(
      { ids: [2, 5, 6] },
      {
        maxTokens: 50,
        temperature: 0,
        signal: ctl.signal,
        onText: () => {
          if (++n === 3) ctl.abort();
        },
      },
    );
    expect(r.metrics.stopReason).toBe('aborted');
    expect(r.ids.length).toBeLessThan(50);
  });

  it('a chat session reuses its KV cache across turns with the same result as a fresh run', async () => {
    const chat = g3n.chat('You are terse.');
    const t1 = await chat.send('Hi there', { maxTokens: 6, temperature: 0 });
    expect(t1.metrics.prefillTokens).toBe(t1.metrics.promptTokens);
    const t2 = await chat.send('Tell me more', { maxTokens: 6, temperature: 0 });
    // At least the whole first-turn prompt comes from the cache (the reply may re-tokenize differently).
    expect(t2.metrics.prefillTokens).toBeLessThanOrEqual(t2.metrics.promptTokens - t1.metrics.promptTokens);
    expect(chat.messages.map((m) => m.role)).toEqual(['system', 'user', 'assistant', 'user', 'assistant']);
    // Same conversation without a cache gives the same second reply.
    const fresh = await g3n.generate(chat.messages.slice(0, 4), { maxTokens: 6, temperature: 0 });
    expect(t2.ids).toEqual(fresh.ids);
  });

  it('bad requests get clear errors and leave the engine usable', async () => {
    await expect(g3n.generate('', { maxTokens: 4 })).rejects.toThrow(/prompt is empty/);
    await expect(g3n.generate('hi', { temperature: -1 })).rejects.toThrow(/temperature=-1/);
    await expect(g3n.generate('hi', { topP: 1.5 })).rejects.toThrow(/topP=1.5/);
    await expect(g3n.generate('hi', { topK: 2.5 })).rejects.toThrow(/topK=2.5/);
    await expect(g3n.generate('hi', { maxTokens: -3 })).rejects.toThrow(/maxTokens=-3/);
    await expect(g3n.generate('word '.repeat(600), { maxTokens: 4 })).rejects.toThrow(/exceeds the context of 512 tokens/);
    const ok = await g3n.generate({ ids: [2, 9] }, { maxTokens: 2, temperature: 0 });
    expect(ok.ids.length).toBe(2);
  });

  it('control-token text typed by a user stays text', () => {
    const ids = g3n.encodePrompt('<start_of_turn>user');
    expect(ids).not.toContain(g3n.tokenizer!.specialIds.startOfTurn);
    const chatIds = g3n.encodePrompt([{ role: 'user', content: 'hi' }]);
    expect(chatIds).toContain(g3n.tokenizer!.specialIds.startOfTurn);
  });
});

describe('Gemma3n on WASM kernels: KV cache memory', () => {
  it('one-shot generations give their WASM memory back, a session keeps one cache; output equals the TS kernels', async () => {
    const { createNodeWasmKernels } = await import('../../src/node/wasm_host.js');
    const { generateTokens } = await import('../../src/engine/token_stream.js');
    const k = await createNodeWasmKernels({ threads: 2 });
    try {
      const wasm = await Gemma3n.load(tinyRealVocabFolder(), { kernels: k });
      const ids = [2, 818, 5279, 529];
      const first = await wasm.generate({ ids }, { maxTokens: 12, temperature: 0 });
      expect(first.ids).toEqual((await g3n.generate({ ids }, { maxTokens: 12, temperature: 0 })).ids);
      // The decoder's work buffers live in WASM memory too and grow (never shrink) to the longest
      // step seen: one 5-token prompt first, so only the caches can move the count below.
      await wasm.generate({ ids: [...ids, 2] }, { maxTokens: 12, temperature: 0 });
      const heap = k.heapBytes;
      for (let i = 0; i < 5; i++) await wasm.generate({ ids: [...ids, i + 3] }, { maxTokens: 12, temperature: 0 });
      expect(k.heapBytes).toBe(heap); // every one-shot cache was released

      // a session (what a chat uses) holds one cache across turns, in WASM memory
      const session: { cache: KVCache | null; ids: number[] } = { cache: null, ids: [] };
      const turn = async (prompt: number[]) => {
        for await (const _ of generateTokens(wasm.model, prompt, { maxTokens: 6, temperature: 0, session }));
      };
      await turn(ids);
      const cache = session.cache!;
      expect(k.heapBytes).toBeGreaterThan(heap);
      await turn([...session.ids, 100, 101]);
      expect(session.cache).toBe(cache); // the prefix was reused, not a second cache
      cache.release();
      expect(k.heapBytes).toBe(heap);
    } finally {
      k.dispose();
    }
  }, 60_000);
});
