/**
 * Continuous batching (src/engine/scheduler.ts) and prefix reuse (prefix_cache.ts): many
 * generations share batched steps, and each one's tokens equal the same generation run alone
 * (generateTokens, one sequence, whole-prompt prefill), whatever else is in the batch, whether
 * its prompt came from the prefix cache, and when others are cancelled mid-way.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { Gemma3nTextModel } from '../../src/model/text_model.js';
import { TsKernels } from '../../src/kernels/ts_kernels.js';
import { generateTokens, type GenerationMetrics, type TokenStreamOptions } from '../../src/engine/token_stream.js';
import { BatchScheduler, SchedulerFullError } from '../../src/engine/scheduler.js';
import { Gemma3n } from '../../src/engine/engine.js';
import { tinyFolder, tinyRealVocabFolder } from '../helpers.js';

let model: Gemma3nTextModel;
beforeAll(async () => {
  ({ model } = await Gemma3nTextModel.load(tinyFolder(), new TsKernels()));
});

const prompt = (n: number, seed: number): number[] => Array.from({ length: n }, (_, i) => 2 + ((seed * 7919 + i * 104729) % 4000));

async function collect(gen: AsyncGenerator<number, GenerationMetrics>, stopAfter = Infinity): Promise<{ ids: number[]; metrics: GenerationMetrics | null }> {
  const ids: number[] = [];
  for (;;) {
    if (ids.length >= stopAfter) {
      await gen.return(undefined as never);
      return { ids, metrics: null };
    }
    const r = await gen.next();
    if (r.done) return { ids, metrics: r.value };
    ids.push(r.value);
  }
}

const alone = (ids: number[], opts: TokenStreamOptions) => collect(generateTokens(model, ids, opts));

describe('BatchScheduler', () => {
  it('14 concurrent generations (3 slots, prefill chunks of 5, greedy and seeded sampling, 3 cancelled): each equals running alone', async () => {
    const sched = new BatchScheduler(model, { parallel: 3, prefillChunk: 5, prefixCacheBytes: 0 });
    const reqs = Array.from({ length: 14 }, (_, i) => ({
      ids: prompt(1 + ((i * 5) % 23), i),
      opts: { maxTokens: 3 + ((i * 3) % 11), ...(i % 3 === 2 ? { temperature: 1, topK: 40, seed: i } : { temperature: 0 }), stopTokens: [17] },
      cancelAfter: i % 5 === 4 ? 2 : Infinity,
    }));
    const got = await Promise.all(reqs.map((r) => collect(sched.generate(r.ids, r.opts), r.cancelAfter)));
    for (const [i, r] of reqs.entries()) {
      const want = await alone(r.ids, r.opts);
      if (r.cancelAfter < Infinity) expect(got[i].ids, `request ${i}`).toEqual(want.ids.slice(0, r.cancelAfter));
      else {
        expect(got[i].ids, `request ${i}`).toEqual(want.ids);
        expect(got[i].metrics!.stopReason).toBe(want.metrics!.stopReason);
        expect(got[i].metrics!.generatedTokens).toBe(want.ids.length);
      }
    }
    await sched.idle();
    expect(sched.stats).toMatchObject({ running: 0, waiting: 0, parallel: 3 });
    expect(sched.stats.steps).toBeLessThan(reqs.reduce((n, r) => n + r.opts.maxTokens, 0)); // steps were shared
  });

  it('an aborted signal frees the slot; a waiting request gets it', async () => {
    const sched = new BatchScheduler(model, { parallel: 1, prefixCacheBytes: 0 });
    const ctl = new AbortController();
    const first = sched.generate(prompt(4, 1), { maxTokens: 200, temperature: 0, signal: ctl.signal });
    const second = collect(sched.generate(prompt(4, 2), { maxTokens: 5, temperature: 0 }));
    const ids: number[] = [];
    for await (const id of first) {
      ids.push(id);
      if (ids.length === 3) ctl.abort();
    }
    expect(ids.length).toBeGreaterThanOrEqual(3);
    expect(ids.length).toBeLessThan(10);
    expect((await second).ids).toEqual((await alone(prompt(4, 2), { maxTokens: 5, temperature: 0 })).ids);
  });

  it('a full waiting line throws SchedulerFullError; bad requests throw RangeError', async () => {
    const sched = new BatchScheduler(model, { parallel: 1, maxWaiting: 1, prefixCacheBytes: 0 });
    const a = collect(sched.generate(prompt(3, 1), { maxTokens: 20, temperature: 0 }));
    const b = collect(sched.generate(prompt(3, 2), { maxTokens: 2, temperature: 0 }));
    await new Promise((r) => setTimeout(r, 0));
    await expect(collect(sched.generate(prompt(3, 3), { maxTokens: 2, temperature: 0 }))).rejects.toThrow(SchedulerFullError);
    await Promise.all([a, b]);
    await expect(collect(sched.generate([], { maxTokens: 2 }))).rejects.toThrow(/prompt is empty/);
    await expect(collect(sched.generate([2, 99999], { maxTokens: 2 }))).rejects.toThrow(/token id 99999 at index 1/);
    await expect(collect(sched.generate([2], { maxTokens: 600 }))).rejects.toThrow(/exceeds the context of 512/);
  });

  it('prefix reuse: a prompt extending a finished one (a resent chat history) runs only its new tokens, with the same output', async () => {
    const sched = new BatchScheduler(model, { parallel: 2, prefillChunk: 7 });
    const system = prompt(30, 5); // longer than the sliding window (8): reuse needs the rewind slack
    const turn1 = [...system, ...prompt(6, 6)];
    const r1 = await collect(sched.generate(turn1, { maxTokens: 6, temperature: 0 }));
    expect(r1.metrics!.prefillTokens).toBe(turn1.length);
    // the client resends the history with the reply and a new user message
    const turn2 = [...turn1, ...r1.ids, ...prompt(5, 7)];
    const r2 = await collect(sched.generate(turn2, { maxTokens: 6, temperature: 0 }));
    // the cache holds turn1 and the reply but its last token (generated, never run)
    expect(r2.metrics!.prefillTokens).toBe(turn2.length - (turn1.length + r1.ids.length - 1));
    expect(r2.ids).toEqual((await alone(turn2, { maxTokens: 6, temperature: 0 })).ids);
    // another user with the same system prompt reuses the system prompt only
    const other = [...system, ...prompt(9, 8)];
    const r3 = await collect(sched.generate(other, { maxTokens: 4, temperature: 0 }));
    expect(r3.metrics!.prefillTokens).toBe(other.length - system.length);
    expect(r3.ids).toEqual((await alone(other, { maxTokens: 4, temperature: 0 })).ids);
    expect(sched.prefixCache.stats.hits).toBe(2);
    expect(sched.prefixCache.stats.reusedTokens).toBe(turn1.length + r1.ids.length - 1 + system.length);
  });

  it('the prefix cache stays within its byte budget (least recently used out first)', async () => {
    const one = new BatchScheduler(model, { parallel: 1 });
    await collect(one.generate(prompt(20, 1), { maxTokens: 2, temperature: 0 }));
    const entryBytes = one.prefixCache.stats.bytes;
    expect(entryBytes).toBeGreaterThan(0);
    const sched = new BatchScheduler(model, { parallel: 1, prefixCacheBytes: 2.5 * entryBytes });
    const cache = sched.prefixCache;
    for (let i = 0; i < 5; i++) await collect(sched.generate(prompt(20, 10 + i), { maxTokens: 2, temperature: 0 }));
    expect(cache.stats.entries).toBe(2);
    expect(cache.stats.bytes).toBeLessThanOrEqual(2.5 * entryBytes);
    // the two most recent prompts are the ones kept
    await collect(sched.generate([...prompt(20, 14), 5], { maxTokens: 1, temperature: 0 }));
    await collect(sched.generate([...prompt(20, 10), 5], { maxTokens: 1, temperature: 0 }));
    expect(cache.stats.hits).toBe(1);
  });
});

describe('Gemma3n.useScheduler: stream() calls share batched steps', () => {
  it('concurrent text requests give the same text as one at a time; /health-style stats count them', async () => {
    const g3n = await Gemma3n.load(tinyRealVocabFolder());
    const prompts = ['Hello there', 'The capital of France is', 'A long story about a small cat who'];
    const opts = { maxTokens: 4, temperature: 0 };
    const solo = [];
    for (const p of prompts) solo.push(await g3n.generate(p, opts));
    const sched = g3n.useScheduler({ parallel: 4, prefillChunk: 16 });
    const together = await Promise.all(prompts.map((p) => g3n.generate(p, opts)));
    for (const i of prompts.keys()) {
      expect(together[i].ids).toEqual(solo[i].ids);
      expect(together[i].text).toBe(solo[i].text);
    }
    expect(sched.stats.generatedTokens).toBe(together.reduce((n, r) => n + r.ids.length, 0));
    expect(sched.stats.recentTokPerS).toBeGreaterThan(0);
    await g3n.dispose();
  });

  it('chat sessions go through the scheduler: three concurrent chats of two turns give the same replies as one at a time, each turn reusing its session cache', async () => {
    const g3n = await Gemma3n.load(tinyRealVocabFolder());
    const turns = [
      ['Hello there', 'And then?'],
      ['The capital of France is', 'Why?'],
      ['A long story about a small cat who', 'More'],
    ];
    const opts = { maxTokens: 5, temperature: 0 };
    const solo: { ids: number[]; prefill: number; prompt: number }[][] = [];
    for (const t of turns) {
      const chat = g3n.chat('Be brief.');
      const rs = [];
      for (const m of t) {
        const r = await chat.send(m, opts);
        rs.push({ ids: r.ids, prefill: r.metrics.prefillTokens, prompt: r.metrics.promptTokens });
      }
      solo.push(rs);
    }
    const sched = g3n.useScheduler({ parallel: 2, prefillChunk: 8 });
    const together = await Promise.all(
      turns.map(async (t) => {
        const chat = g3n.chat('Be brief.');
        const rs = [];
        for (const m of t) {
          const r = await chat.send(m, opts);
          rs.push({ ids: r.ids, prefill: r.metrics.prefillTokens, prompt: r.metrics.promptTokens });
        }
        return rs;
      }),
    );
    for (const i of turns.keys()) {
      for (const j of [0, 1]) expect(together[i][j].ids, `chat ${i} turn ${j}`).toEqual(solo[i][j].ids);
      // the second turn ran only what its session cache did not hold, as without the scheduler
      expect(together[i][1].prefill).toBe(solo[i][1].prefill);
      expect(together[i][1].prefill).toBeLessThan(together[i][1].prompt - together[i][0].prompt);
    }
    expect(sched.stats.generatedTokens).toBe(together.flat().reduce((n, r) => n + r.ids.length, 0));
    // the sessions kept their caches: nothing went to the prefix cache
    expect(sched.prefixCache.stats.entries).toBe(0);
    await g3n.dispose();
  });
});
