/**
 * The HTTP server with real requests on loopback against the tiny real-vocabulary model:
 * OpenAI chat completions (plain and streamed), the simple routes, validation errors, body
 * limits, the bounded queue, concurrent clients, disconnects and graceful shutdown.
 */
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Gemma3n, type GenerationResult } from '../../src/engine/engine.js';
import { createServer, type GemmaServer, type ServedEngine, type ServerOptions } from '../../src/server/server.js';
import { penaltyToRepetition } from '../../src/server/request.js';
import { tinyRealVocabFolder } from '../helpers.js';
import { httpRequest, openStream, parseSse, postJson, sseText, sleep, waitFor } from './helpers.js';

let g3n: Gemma3n;
beforeAll(async () => {
  g3n = await Gemma3n.load(tinyRealVocabFolder());
}, 120_000);

/** Starts a server on an ephemeral loopback port; `stop` shuts it down (bounded). */
async function start(engine: ServedEngine = g3n, opts: ServerOptions = {}): Promise<{ server: GemmaServer; url: string; stop: () => Promise<void> }> {
  const server = createServer(engine, { modelId: 'tiny', ...opts });
  const { url } = await server.listen(0, '127.0.0.1');
  return { server, url, stop: () => server.shutdown(2000) };
}

/** Wraps the engine to record every generation's result (to see aborts happen). */
function recording(): { engine: ServedEngine; results: GenerationResult[] } {
  const results: GenerationResult[] = [];
  const engine: ServedEngine = {
    tokenizer: g3n.tokenizer,
    model: g3n.model,
    encodePrompt: (input) => g3n.encodePrompt(input),
    stream: async function* (input, opts, session) {
      const r = yield* g3n.stream(input, opts, session);
      results.push(r);
      return r;
    },
  };
  return { engine, results };
}

const user = (content: string) => [{ role: 'user', content }];

describe('server: OpenAI chat completions', () => {
  let s: Awaited<ReturnType<typeof start>>;
  beforeAll(async () => {
    s = await start();
  });
  afterAll(async () => {
    await s.stop();
  });

  it("non-streaming: the engine's text, finish reason and usage", async () => {
    const messages = [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'Hello there' },
    ];
    const r = await postJson(`${s.url}/v1/chat/completions`, { model: 'tiny', messages, max_tokens: 12, temperature: 0 });
    expect(r.status).toBe(200);
    const direct = await g3n.generate(messages, { maxTokens: 12, temperature: 0 });
    expect(r.json.object).toBe('chat.completion');
    expect(r.json.model).toBe('tiny');
    expect(r.json.id).toMatch(/^chatcmpl-/);
    expect(r.json.choices).toHaveLength(1);
    expect(r.json.choices[0].message).toEqual({ role: 'assistant', content: direct.text });
    expect(r.json.choices[0].finish_reason).toBe(direct.metrics.stopReason === 'max_tokens' ? 'length' : 'stop');
    expect(r.json.usage).toEqual({
      prompt_tokens: direct.metrics.promptTokens,
      completion_tokens: direct.metrics.generatedTokens,
      total_tokens: direct.metrics.promptTokens + direct.metrics.generatedTokens,
    });
  });

  it('streaming: chunks concatenate to the non-streamed text and [DONE] ends the stream', async () => {
    const body = { messages: user('Write a poem about the sea'), max_tokens: 16, temperature: 0, stream: true, stream_options: { include_usage: true } };
    const r = await postJson(`${s.url}/v1/chat/completions`, body);
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toMatch(/^text\/event-stream/);
    const events = parseSse(r.text);
    expect(events[events.length - 1]).toBe('[DONE]');
    expect(events.filter((e) => e === '[DONE]')).toHaveLength(1);
    expect((events[0] as any).choices[0].delta.role).toBe('assistant');
    const { text, finish, usage } = sseText(events);
    const plain = await postJson(`${s.url}/v1/chat/completions`, { ...body, stream: false });
    expect(text).toBe(plain.json.choices[0].message.content);
    expect(text.length).toBeGreaterThan(0);
    expect(finish).toBe(plain.json.choices[0].finish_reason);
    expect(usage).toEqual(plain.json.usage);
  });

  it('content parts, stop strings and sampling fields reach the engine', async () => {
    const full = await g3n.generate(user('Tell me a story'), { maxTokens: 20, temperature: 0 });
    const stop = full.text.slice(3, 5);
    const r = await postJson(`${s.url}/v1/chat/completions`, {
      messages: [{ role: 'user', content: [{ type: 'text', text: 'Tell me a story' }] }],
      max_completion_tokens: 20,
      temperature: 0,
      stop,
    });
    expect(r.json.choices[0].message.content).toBe(full.text.slice(0, full.text.indexOf(stop)));
    expect(r.json.choices[0].finish_reason).toBe('stop');
    const opts = { maxTokens: 10, temperature: 1.3, topK: 40, topP: 0.9, minP: 0.01, seed: 7, repetitionPenalty: penaltyToRepetition(1) };
    const sampled = await g3n.generate(user('Pick a word'), opts);
    const r2 = await postJson(`${s.url}/v1/chat/completions`, {
      messages: user('Pick a word'),
      max_tokens: 10,
      temperature: 1.3,
      top_k: 40,
      top_p: 0.9,
      min_p: 0.01,
      seed: 7,
      frequency_penalty: 1,
    });
    expect(r2.json.choices[0].message.content).toBe(sampled.text);
    expect(penaltyToRepetition(0)).toBe(1);
    expect(penaltyToRepetition(2)).toBe(2);
    expect(penaltyToRepetition(-2)).toBe(0.5);
  });

  it('GET /v1/models lists the served model', async () => {
    const r = await httpRequest(`${s.url}/v1/models`, 'GET');
    expect(r.status).toBe(200);
    expect(r.json).toMatchObject({ object: 'list', data: [{ id: 'tiny', object: 'model', owned_by: 'gemma3n-ts' }] });
    expect((await httpRequest(`${s.url}/v1/models/tiny`, 'GET')).json.id).toBe('tiny');
    expect((await httpRequest(`${s.url}/health`, 'GET')).json).toMatchObject({ status: 'ok', running: 0, waiting: 0 });
  });

  it('POST /chat takes a message, history and system prompt', async () => {
    const history = [
      { role: 'user', content: 'Hi' },
      { role: 'assistant', content: 'Hello!' },
    ];
    const r = await postJson(`${s.url}/chat`, { message: 'How are you?', history, system: 'Be kind.', max_tokens: 8, temperature: 0 });
    expect(r.status).toBe(200);
    const direct = await g3n.generate([{ role: 'system', content: 'Be kind.' }, ...history, { role: 'user', content: 'How are you?' }], {
      maxTokens: 8,
      temperature: 0,
    });
    expect(r.json.reply).toBe(direct.text);
    expect(r.json.metrics).toMatchObject({ prompt_tokens: direct.metrics.promptTokens, completion_tokens: direct.metrics.generatedTokens });
    expect(r.json.metrics.decode_tok_s).toBeGreaterThanOrEqual(0);
    const bad = await postJson(`${s.url}/chat`, { message: 'x', history: [{ role: 'robot', content: 'beep' }] });
    expect(bad.status).toBe(400);
    expect(bad.json.error.param).toBe('history[0].role');
    expect(bad.json.error.message).toMatch(/history\[0\]\.role.*robot/);
    expect((await postJson(`${s.url}/chat`, { history: [] })).json.error).toMatchObject({ param: 'message', code: 'missing_required_parameter' });
  });

  it('images and audio on a text-only model: 400 saying there is no vision/audio tower', async () => {
    const png = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC';
    const a = await postJson(`${s.url}/analyze-image`, { image: `data:image/png;base64,${png}` });
    expect(a.status).toBe(400);
    expect(a.json.error.message).toMatch(/this model has no vision tower/);
    expect(a.json.error.type).toBe('invalid_request_error');
    const b = await postJson(`${s.url}/v1/chat/completions`, {
      messages: [
        {
          role: 'user',
          content: [
            { type: 'text', text: 'What is this?' },
            { type: 'image_url', image_url: { url: `data:image/png;base64,${png}` } },
          ],
        },
      ],
    });
    expect(b.status).toBe(400);
    expect(b.json.error).toMatchObject({ param: 'messages[0].content[1]', code: 'model_not_multimodal' });
    expect(b.json.error.message).toMatch(/no vision tower/);
    const c = await postJson(`${s.url}/v1/chat/completions`, {
      messages: [{ role: 'user', content: [{ type: 'input_audio', input_audio: { data: 'UklGRg==', format: 'wav' } }] }],
    });
    expect(c.status).toBe(400);
    expect(c.json.error.message).toMatch(/no audio tower/);
  });

  it('clear 4xx errors in the OpenAI format', async () => {
    const url = `${s.url}/v1/chat/completions`;
    const cases: [body: string, param: string | null, pattern: RegExp][] = [
      ['{"messages": [', null, /not valid JSON/],
      ['[1,2]', null, /must be a JSON object/],
      ['{}', 'messages', /'messages' is required/],
      ['{"messages": []}', 'messages', /at least one message/],
      ['{"messages": "hi"}', 'messages', /must be an array/],
      ['{"messages": [{"role": "tool", "content": "x"}]}', 'messages[0].tool_call_id', /tool_call_id' is required/], // tool turns: src/server/structured.ts
      ['{"messages": [{"role": "robot", "content": "x"}]}', 'messages[0].role', /"robot" is not supported/],
      ['{"messages": [{"content": "x"}]}', 'messages[0].role', /is required/],
      ['{"messages": [{"role": "user", "content": 5}]}', 'messages[0].content', /string or an array of parts/],
      ['{"messages": [{"role": "user", "content": [{"type": "video"}]}]}', 'messages[0].content[0].type', /'text', 'image_url' or 'input_audio'/],
      ['{"messages": [{"role": "assistant", "content": "x"}]}', 'messages', /start with a user message/],
      ['{"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]}', 'messages', /last message must be the user's/],
      ['{"messages": [{"role": "user", "content": "a"}, {"role": "system", "content": "b"}]}', 'messages[1].role', /system messages must come before/],
      ['{"messages": [{"role": "user", "content": "  "}]}', 'messages', /empty/],
      ['{"messages": [{"role": "user", "content": "a"}], "temperature": -1}', 'temperature', /\[0, 2\]/],
      ['{"messages": [{"role": "user", "content": "a"}], "temperature": "hot"}', 'temperature', /must be a number/],
      ['{"messages": [{"role": "user", "content": "a"}], "top_p": 0}', 'top_p', /\(0, 1\]/],
      ['{"messages": [{"role": "user", "content": "a"}], "top_k": 1.5}', 'top_k', /integer/],
      ['{"messages": [{"role": "user", "content": "a"}], "min_p": 1}', 'min_p', /\[0, 1\)/],
      ['{"messages": [{"role": "user", "content": "a"}], "max_tokens": 0}', 'max_tokens', />= 1/],
      ['{"messages": [{"role": "user", "content": "a"}], "seed": 0.5}', 'seed', /integer/],
      ['{"messages": [{"role": "user", "content": "a"}], "stop": [""]}', 'stop[0]', /non-empty/],
      ['{"messages": [{"role": "user", "content": "a"}], "stop": 3}', 'stop', /string or an array/],
      ['{"messages": [{"role": "user", "content": "a"}], "n": 2}', 'n', /must be 1/],
      ['{"messages": [{"role": "user", "content": "a"}], "stream": "yes"}', 'stream', /boolean/],
      ['{"messages": [{"role": "user", "content": "a"}], "max_tokens": 600}', 'max_tokens', /context is 512 tokens/],
      [JSON.stringify({ messages: user('word '.repeat(600)) }), 'messages', /context is 512 tokens/],
    ];
    for (const [body, param, pattern] of cases) {
      const r = await httpRequest(url, 'POST', body);
      expect(r.status, body).toBe(400);
      expect(r.headers['content-type']).toMatch(/application\/json/);
      expect(Object.keys(r.json.error).sort(), body).toEqual(['code', 'message', 'param', 'type']);
      expect(r.json.error.type).toBe('invalid_request_error');
      expect(r.json.error.param, body).toBe(param);
      expect(r.json.error.message, body).toMatch(pattern);
    }
    expect((await httpRequest(`${s.url}/v1/nothing`, 'GET')).status).toBe(404);
    const wrongMethod = await httpRequest(url, 'GET');
    expect(wrongMethod.status).toBe(405);
    expect(wrongMethod.headers.allow).toBe('POST');
    // The server still answers normally afterwards.
    expect((await postJson(url, { messages: user('ok'), max_tokens: 2 })).status).toBe(200);
  });
});

describe('server: limits, queue, concurrency, cancellation, shutdown', () => {
  it('a body over the limit is refused with 413 (declared or chunked)', async () => {
    const s = await start(g3n, { maxBodyBytes: 4096 });
    try {
      const big = JSON.stringify({ messages: user('x'.repeat(10_000)) });
      const r = await httpRequest(`${s.url}/v1/chat/completions`, 'POST', big);
      expect(r.status).toBe(413);
      expect(r.json.error).toMatchObject({ type: 'invalid_request_error', code: 'request_too_large' });
      expect(r.json.error.message).toMatch(/limit 4096 bytes/);
      const chunked = await new Promise<number>((resolve, reject) => {
        const req = request(`${s.url}/v1/chat/completions`, { method: 'POST', headers: { 'Transfer-Encoding': 'chunked' } }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on('error', reject);
        for (let i = 0; i < 10; i++) req.write('x'.repeat(1000));
        req.end();
      });
      expect(chunked).toBe(413);
      expect((await postJson(`${s.url}/v1/chat/completions`, { messages: user('small'), max_tokens: 2 })).status).toBe(200);
    } finally {
      await s.stop();
    }
  });

  it('6 concurrent clients at temperature 0: none lost, none mixed up, each equal to running alone', async () => {
    const s = await start(g3n);
    try {
      const prompts = ['The weather today', 'Count to five', 'Name a color', 'What is two plus two?', 'Say hello in French', 'A short haiku'];
      const body = (p: string, i: number) => ({ messages: user(p), max_tokens: 8 + i, temperature: 0, stream: i % 2 === 0 });
      const textOf = (r: Awaited<ReturnType<typeof postJson>>, i: number) => (i % 2 === 0 ? sseText(parseSse(r.text)).text : r.json.choices[0].message.content);
      const alone: string[] = [];
      for (const [i, p] of prompts.entries()) alone.push(textOf(await postJson(`${s.url}/v1/chat/completions`, body(p, i)), i));
      expect(new Set(alone).size).toBe(prompts.length);
      const together = await Promise.all(prompts.map((p, i) => postJson(`${s.url}/v1/chat/completions`, body(p, i))));
      together.forEach((r) => expect(r.status).toBe(200));
      expect(together.map(textOf)).toEqual(alone);
    } finally {
      await s.stop();
    }
  });

  it('a full queue answers 429 with Retry-After; a client that leaves mid-stream frees the slot', async () => {
    const { engine, results } = recording();
    const s = await start(engine, { maxQueue: 1, parallel: 1 });
    try {
      const url = `${s.url}/v1/chat/completions`;
      // A: a long streamed generation, running.
      const a = openStream(url, { messages: user('Go on and on'), max_tokens: 400, temperature: 0, stream: true });
      await waitFor(() => a.received().includes('"content"'), 30_000, 'the first streamed chunk');
      // B waits in the queue; C finds it full.
      const b = postJson(url, { messages: user('Next please'), max_tokens: 4, temperature: 0 });
      await waitFor(() => s.server.queue.length === 1, 10_000, 'B to queue');
      const c = await postJson(url, { messages: user('Me too'), max_tokens: 4 });
      expect(c.status).toBe(429);
      expect(c.headers['retry-after']).toBe('1');
      expect(c.json.error).toMatchObject({ type: 'rate_limit_error', code: 'queue_full' });
      // A's client disconnects: its generation is aborted and B runs.
      a.destroy();
      const t0 = Date.now();
      const rb = await b;
      expect(rb.status).toBe(200);
      expect(Date.now() - t0).toBeLessThan(10_000);
      expect(results[0].metrics.stopReason).toBe('aborted');
      expect(results[0].metrics.generatedTokens).toBeLessThan(400);
      const alone = await g3n.generate(user('Next please'), { maxTokens: 4, temperature: 0 });
      expect(rb.json.choices[0].message.content).toBe(alone.text);
      await waitFor(() => s.server.queue.running === 0, 5000, 'the queue to drain');
    } finally {
      await s.stop();
    }
  });

  it('a client that leaves while waiting in the queue is dropped from it', async () => {
    const s = await start(g3n, { maxQueue: 1, parallel: 1 });
    try {
      const url = `${s.url}/v1/chat/completions`;
      const a = openStream(url, { messages: user('Keep talking'), max_tokens: 60, temperature: 0, stream: true });
      await waitFor(() => a.received().includes('"content"'), 30_000, 'A to stream');
      const b = openStream(url, { messages: user('Waiting'), max_tokens: 4 });
      await waitFor(() => s.server.queue.length === 1, 10_000, 'B to queue');
      b.destroy();
      await waitFor(() => s.server.queue.length === 0, 10_000, 'B to leave the queue');
      const c = await postJson(url, { messages: user('After'), max_tokens: 3 });
      expect(c.status).toBe(200);
      expect(sseText(parseSse(await a.done)).text.length).toBeGreaterThan(0);
    } finally {
      await s.stop();
    }
  });

  it('graceful shutdown: the running request finishes, waiting ones get 503, new connections are refused', async () => {
    const s = await start(g3n, { maxQueue: 4, parallel: 1 });
    const url = `${s.url}/v1/chat/completions`;
    const body = { messages: user('Finish this'), max_tokens: 40, temperature: 0, stream: true };
    const a = openStream(url, body);
    await waitFor(() => a.received().includes('"content"'), 30_000, 'A to stream');
    const b = postJson(url, { messages: user('Queued'), max_tokens: 4 });
    await waitFor(() => s.server.queue.length === 1, 10_000, 'B to queue');
    const stopped = s.server.shutdown(20_000);
    const rb = await b;
    expect(rb.status).toBe(503);
    expect(rb.json.error.code).toBe('shutting_down');
    const events = parseSse(await a.done);
    expect(events[events.length - 1]).toBe('[DONE]');
    const alone = await g3n.generate(user('Finish this'), { maxTokens: 40, temperature: 0 });
    expect(sseText(events).text).toBe(alone.text);
    await stopped;
    await expect(httpRequest(`${s.url}/v1/models`, 'GET', undefined, {}, 2000)).rejects.toThrow(/ECONNREFUSED/);
  });

  it('shutdown past the grace period aborts the running stream with an error event', async () => {
    const s = await start(g3n);
    const a = openStream(`${s.url}/v1/chat/completions`, { messages: user('Never ending'), max_tokens: 450, temperature: 0, stream: true });
    await waitFor(() => a.received().includes('"content"'), 30_000, 'A to stream');
    const t0 = Date.now();
    await s.server.shutdown(100);
    expect(Date.now() - t0).toBeLessThan(5000);
    const events = parseSse(await a.done);
    expect(events[events.length - 1]).toBe('[DONE]');
    expect((events[events.length - 2] as any).error.code).toBe('shutting_down');
  });
});

describe('server: multimodal wiring contract', () => {
  it('image and audio parts reach engine.stream as bytes when the model has the towers', async () => {
    const seen: unknown[] = [];
    const engine: ServedEngine = {
      tokenizer: g3n.tokenizer,
      model: g3n.model,
      supportsImages: true,
      supportsAudio: true,
      encodePrompt: (input) => g3n.encodePrompt(input),
      stream: async function* (input) {
        seen.push(input);
        yield 'a cat';
        return {
          text: 'a cat',
          ids: [1, 2],
          metrics: {
            promptTokens: 3,
            prefillTokens: 3,
            generatedTokens: 2,
            prefillMs: 1,
            decodeMs: 1,
            timeToFirstTokenMs: 1,
            prefillTokPerS: 1,
            decodeTokPerS: 1,
            stopReason: 'stop_token',
            peakMemoryMb: null,
          },
        };
      },
    };
    const s = await start(engine);
    try {
      const pngBytes = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC', 'base64');
      const r = await postJson(`${s.url}/analyze-image`, { image: pngBytes.toString('base64'), prompt: 'What animal?' });
      expect(r.status).toBe(200);
      expect(r.json.description).toBe('a cat');
      const wav = Buffer.from('RIFF....WAVEfmt ');
      const r2 = await postJson(`${s.url}/v1/chat/completions`, {
        messages: [
          {
            role: 'user',
            content: [
              { type: 'image_url', image_url: { url: `data:image/png;base64,${pngBytes.toString('base64')}` } },
              { type: 'input_audio', input_audio: { data: wav.toString('base64'), format: 'wav' } },
              { type: 'text', text: 'Describe both.' },
            ],
          },
        ],
      });
      expect(r2.status).toBe(200);
      const [m1, m2] = seen as any[];
      expect(m1[0].content[0].type).toBe('image');
      expect(Buffer.from(m1[0].content[0].image)).toEqual(pngBytes);
      expect(m1[0].content[1]).toEqual({ type: 'text', text: 'What animal?' });
      expect(m2[0].content.map((p: any) => p.type)).toEqual(['image', 'audio', 'text']);
      expect(Buffer.from(m2[0].content[1].audio)).toEqual(wav);
      const notImage = await postJson(`${s.url}/analyze-image`, { image: Buffer.from('hello').toString('base64') });
      expect(notImage.json.error.message).toMatch(/not a PNG or JPEG/);
      const remote = await postJson(`${s.url}/analyze-image`, { image: 'https://example.com/cat.png' });
      expect(remote.json.error.message).toMatch(/does not fetch URLs/);
      const mp3 = await postJson(`${s.url}/v1/chat/completions`, {
        messages: [{ role: 'user', content: [{ type: 'input_audio', input_audio: { data: 'AAAA', format: 'mp3' } }] }],
      });
      expect(mp3.json.error.message).toMatch(/'mp3' is not supported/);
    } finally {
      await s.stop();
    }
    await sleep(0);
  });
});
