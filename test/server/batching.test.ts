/**
 * The server under load with continuous batching (real HTTP on loopback, tiny real-vocabulary
 * model): many concurrent requests of different lengths, streamed and not, some cancelled
 * mid-way, each answer equal token for token to the same request served alone; more clients
 * than slots + queue (none lost or mixed up, 429 with Retry-After); a disconnect frees its slot;
 * /health; prompt-prefix reuse.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Gemma3n } from '../../src/engine/engine.js';
import { createServer, defaultParallel, type GemmaServer, type ServerOptions } from '../../src/server/server.js';
import { tinyRealVocabFolder } from '../helpers.js';
import { httpRequest, openStream, parseSse, postJson, sseText, waitFor, type Reply } from './helpers.js';

let g3n: Gemma3n;
beforeAll(async () => {
  g3n = await Gemma3n.load(tinyRealVocabFolder());
}, 120_000);
afterAll(async () => {
  await g3n.dispose();
});

async function start(opts: ServerOptions = {}): Promise<{ server: GemmaServer; url: string; chat: string; stop: () => Promise<void> }> {
  const server = createServer(g3n, { modelId: 'tiny', ...opts });
  const { url } = await server.listen(0, '127.0.0.1');
  return { server, url, chat: `${url}/v1/chat/completions`, stop: () => server.shutdown(2000) };
}

const user = (content: string) => [{ role: 'user', content }];
const textOf = (r: Reply, streamed: boolean): string => (streamed ? sseText(parseSse(r.text)).text : r.json.choices[0].message.content);

describe('server: continuous batching', () => {
  it('the default parallelism is at least 4; /health reports slots, queue and batching figures', async () => {
    expect(defaultParallel()).toBeGreaterThanOrEqual(4);
    const s = await start();
    try {
      const h = (await httpRequest(`${s.url}/health`, 'GET')).json;
      expect(h).toMatchObject({ status: 'ok', running: 0, waiting: 0, parallel: defaultParallel(), max_queue: 512, recent_tok_s: 0 });
      expect(h.prefix_cache).toMatchObject({ entries: 0, hits: 0, misses: 0 });
    } finally {
      await s.stop();
    }
  });

  it('26 concurrent requests (4 slots; streamed and not; 4 cancelled mid-way): every answer equals the request served alone', async () => {
    const s = await start({ parallel: 4, prefillChunk: 16, prefixCacheBytes: 0 });
    try {
      const topics = [
        'rain',
        'the sea',
        'a red fox',
        'numbers',
        'bread',
        'stars',
        'a long train journey across the country',
        'owls',
        'tea',
        'snow',
        'rivers',
        'a city at night',
        'bees',
      ];
      const reqs = Array.from({ length: 26 }, (_, i) => ({
        body: {
          messages: user(`Tell me about ${topics[i % topics.length]}${i >= 13 ? ' in one line' : ''}`),
          max_tokens: 2 + ((i * 5) % 11),
          temperature: 0,
          stream: i % 2 === 0,
        },
        cancel: i % 7 === 3,
      }));
      const alone: string[] = [];
      for (const r of reqs) alone.push(r.cancel ? '' : textOf(await postJson(s.chat, r.body), r.body.stream));

      let peakRunning = 0;
      const watch = setInterval(() => {
        peakRunning = Math.max(peakRunning, s.server.queue.running);
      }, 5);
      const together = reqs.map((r) => {
        if (!r.cancel) return postJson(s.chat, r.body);
        // Cancelled: a long stream cut off once its first content arrives.
        const st = openStream(s.chat, { ...r.body, max_tokens: 300, stream: true });
        return waitFor(() => st.received().includes('"content":"'), 60_000, 'a cancelled stream to start').then(() => {
          st.destroy();
          return null;
        });
      });
      const replies = await Promise.all(together);
      clearInterval(watch);
      replies.forEach((r, i) => {
        if (reqs[i].cancel) return;
        expect(r!.status, `request ${i}`).toBe(200);
        expect(textOf(r!, reqs[i].body.stream), `request ${i}`).toBe(alone[i]);
      });
      expect(peakRunning).toBeGreaterThan(1);
      expect(peakRunning).toBeLessThanOrEqual(4);
      await waitFor(() => s.server.queue.running === 0 && g3n.scheduler!.stats.running === 0, 20_000, 'every slot to be freed');
      const h = (await httpRequest(`${s.url}/health`, 'GET')).json;
      expect(h.recent_tok_s).toBeGreaterThan(0);
    } finally {
      await s.stop();
    }
  });

  it('more clients than slots + queue: the overflow gets 429 with Retry-After, the rest are answered correctly, and the refused ones succeed on retry', async () => {
    const s = await start({ parallel: 2, maxQueue: 3, retryAfterSeconds: 2, prefixCacheBytes: 0 });
    try {
      const bodies = Array.from({ length: 12 }, (_, i) => ({ messages: user(`Client ${i} says hello`), max_tokens: 6, temperature: 0 }));
      const first = await Promise.all(bodies.map((b) => postJson(s.chat, b)));
      const ok = first.filter((r) => r.status === 200).length;
      const refused = first.filter((r) => r.status === 429);
      expect(ok + refused.length).toBe(12);
      expect(ok).toBeGreaterThanOrEqual(5); // 2 running + 3 waiting at least
      expect(refused.length).toBeGreaterThan(0);
      for (const r of refused) {
        expect(r.headers['retry-after']).toBe('2');
        expect(r.json.error.code).toBe('queue_full');
      }
      // Retry the refused ones one by one; then every client has its own answer.
      const final = await Promise.all(first.map(async (r, i) => (r.status === 200 ? r : postJson(s.chat, bodies[i]))));
      for (const [i, r] of final.entries()) {
        expect(r.status).toBe(200);
        const alone = await g3n.generate(bodies[i].messages as never, { maxTokens: 6, temperature: 0 });
        expect(r.json.choices[0].message.content, `client ${i}`).toBe(alone.text);
      }
    } finally {
      await s.stop();
    }
  });

  it('a disconnect frees its slot at the next step: the waiting request starts at once', async () => {
    const s = await start({ parallel: 1, prefixCacheBytes: 0 });
    try {
      const a = openStream(s.chat, { messages: user('Go on and on'), max_tokens: 400, temperature: 0, stream: true });
      await waitFor(() => a.received().includes('"content":"'), 30_000, 'A to stream');
      const b = postJson(s.chat, { messages: user('My turn'), max_tokens: 3, temperature: 0 });
      await waitFor(() => s.server.queue.length === 1, 10_000, 'B to queue');
      const before = g3n.scheduler!.stats.generatedTokens;
      a.destroy();
      const rb = await b;
      expect(rb.status).toBe(200);
      // A generated only a few more tokens after its client left (B's 3 are counted too).
      expect(g3n.scheduler!.stats.generatedTokens - before).toBeLessThan(20);
    } finally {
      await s.stop();
    }
  });

  it('prefix reuse: a resent chat history and a shared system prompt reuse cached K/V, answers unchanged', async () => {
    const s = await start({ parallel: 2 });
    try {
      const system = { role: 'system', content: 'You are a helpful assistant who answers briefly and politely, in plain English.' };
      const turn1 = [system, { role: 'user', content: 'Name three fruits.' }];
      const r1 = await postJson(s.chat, { messages: turn1, max_tokens: 6, temperature: 0 });
      const reply = r1.json.choices[0].message.content as string;
      const turn2 = [...turn1, { role: 'assistant', content: reply }, { role: 'user', content: 'And three vegetables?' }];
      const r2 = await postJson(s.chat, { messages: turn2, max_tokens: 6, temperature: 0 });
      const r3 = await postJson(s.chat, { messages: [system, { role: 'user', content: 'Name a bird.' }], max_tokens: 4, temperature: 0 });
      const h = (await httpRequest(`${s.url}/health`, 'GET')).json;
      expect(h.prefix_cache.hits).toBe(2);
      expect(h.prefix_cache.reused_tokens).toBeGreaterThan(20);
      g3n.scheduler = null; // served alone, without batching or the prefix cache
      expect(r2.json.choices[0].message.content).toBe((await g3n.generate(turn2 as never, { maxTokens: 6, temperature: 0 })).text);
      expect(r3.json.choices[0].message.content).toBe(
        (await g3n.generate([system, { role: 'user', content: 'Name a bird.' }] as never, { maxTokens: 4, temperature: 0 })).text,
      );
    } finally {
      await s.stop();
    }
  });
});
