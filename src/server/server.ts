/**
 * The HTTP front end (Node, node:http): an OpenAI-compatible chat-completions API plus two
 * simple routes, in front of one loaded model.
 *
 *   POST /v1/chat/completions   OpenAI body; stream:true → server-sent events
 *   GET  /v1/models             the one served model
 *   POST /chat                  {message, history?, system?} → {reply, metrics}
 *   POST /analyze-image         {image, prompt?} → {description, metrics}
 *   GET  /health                {status, running, waiting, parallel, max_queue, recent_tok_s, ...}
 *
 * Up to `parallel` requests run at once, decoded together by the engine's BatchScheduler
 * (continuous batching, src/engine/scheduler.ts); the rest wait in a bounded FIFO queue. Each
 * request has its own KV cache and sampler and every row of a batched step is computed as if
 * alone, so a temperature-0 answer does not depend on what else is being served. A client that
 * disconnects aborts its generation and frees its slot at the next step.
 */
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { availableParallelism } from 'node:os';
import type { BatchScheduler, SchedulerOptions } from '../engine/scheduler.js';
import type { GenerateOptions, GenerationResult, Gemma3n } from '../engine/engine.js';
import type { ChatMessage } from '../tokenizer/chat_template.js';
import { badRequest, HttpError } from './errors.js';
import { QueueClosedError, QueueFullError, RequestQueue } from './queue.js';
import { parseAnalyzeImage, parseChatCompletion, parseJsonBody, parseSimpleChat, type ModelCapabilities } from './request.js';
import { assistantMessage, finishReasonOf, promptMessages, StreamShaper } from './structured.js';

/**
 * What the server uses of the engine. `supportsImages` / `supportsAudio` say whether the loaded
 * model has a vision / audio tower (absent = no); image and audio parts reach `stream` as
 * ChatMessage parts {type:'image', image: Uint8Array} and {type:'audio', audio: Uint8Array}.
 */
export interface ServedEngine {
  stream: Gemma3n['stream'];
  encodePrompt: Gemma3n['encodePrompt'];
  readonly tokenizer: Gemma3n['tokenizer'];
  readonly model: { readonly config: { readonly maxPositionEmbeddings: number } };
  readonly supportsImages?: boolean;
  readonly supportsAudio?: boolean;
  /** Continuous batching (Gemma3n.useScheduler); without it requests run one at a time. */
  useScheduler?: (opts: SchedulerOptions) => BatchScheduler;
  readonly scheduler?: BatchScheduler | null;
}

/**
 * Sequences decoded together by default: decode is memory-bound, so a step over 4-8 sequences
 * costs little more than one; 2 per core, at least 4 (llama.cpp's default), at most 8.
 */
export function defaultParallel(): number {
  return Math.max(4, Math.min(8, 2 * availableParallelism()));
}

export interface ServerOptions {
  /** The id /v1/models lists and responses carry. Default "gemma3n". */
  modelId?: string;
  /** Requests that may wait while `parallel` run; more → 429. Default 512. */
  maxQueue?: number;
  /** Requests decoded together (continuous batching). Default defaultParallel() (>= 4). */
  parallel?: number;
  /** Prompt tokens prefilled per batched step (chunked prefill). Default 128. */
  prefillChunk?: number;
  /** Bytes of K/V kept for prompt-prefix reuse. Default 256 MiB. */
  prefixCacheBytes?: number;
  /** Largest request body; larger → 413. Default 20 MB. */
  maxBodyBytes?: number;
  /** max_tokens when the request gives none (capped by the context left). Default 1024. */
  defaultMaxTokens?: number;
  /** Retry-After seconds sent with 429/503. Default 1. */
  retryAfterSeconds?: number;
  /** One line per finished request (the CLI passes stderr). */
  log?: (line: string) => void;
}

export interface ListenAddress {
  host: string;
  port: number;
  url: string;
}

export interface GemmaServer {
  readonly http: Server;
  readonly queue: RequestQueue;
  listen(port?: number, host?: string): Promise<ListenAddress>;
  /**
   * Stops accepting connections, answers waiting requests 503, lets the running one finish for
   * up to `graceMs` (then aborts it), and resolves once every connection is closed.
   */
  shutdown(graceMs?: number): Promise<void>;
}

/** Tokens an image or audio clip adds beyond its one placeholder (Gemma3nProcessor expansion). */
const MEDIA_TOKENS = { image: 256 + 4, audio: 188 + 4 };

const yieldToEventLoop = (): Promise<void> => new Promise((r) => setImmediate(r));

class ClientGone extends Error {
  constructor() {
    super('client disconnected');
  }
}
class ShuttingDown extends Error {
  constructor() {
    super('the server is shutting down');
  }
}

const round = (x: number): number => Math.round(x * 100) / 100;

function metricsJson(r: GenerationResult) {
  const m = r.metrics;
  return {
    prompt_tokens: m.promptTokens,
    completion_tokens: m.generatedTokens,
    stop_reason: m.stopReason,
    prefill_ms: round(m.prefillMs),
    decode_ms: round(m.decodeMs),
    time_to_first_token_ms: round(m.timeToFirstTokenMs),
    prefill_tok_s: round(m.prefillTokPerS),
    decode_tok_s: round(m.decodeTokPerS),
  };
}

const usage = (r: GenerationResult) => ({
  prompt_tokens: r.metrics.promptTokens,
  completion_tokens: r.metrics.generatedTokens,
  total_tokens: r.metrics.promptTokens + r.metrics.generatedTokens,
});

const finishReason = (r: GenerationResult): string => (r.metrics.stopReason === 'max_tokens' ? 'length' : 'stop');

/** The engine's scheduler, set up with the server's batching options (null: one at a time). */
function batchingFor(engine: ServedEngine, o: ServerOptions): BatchScheduler | null {
  if (!engine.useScheduler) return engine.scheduler ?? null;
  return engine.useScheduler({ parallel: o.parallel ?? defaultParallel(), prefillChunk: o.prefillChunk, prefixCacheBytes: o.prefixCacheBytes });
}

export function createServer(engine: ServedEngine, options: ServerOptions = {}): GemmaServer {
  if (!engine.tokenizer) throw new Error('the server needs a tokenizer (tokenizer.json or tokenizer.model in the model folder)');
  const modelId = options.modelId ?? 'gemma3n';
  const maxBody = options.maxBodyBytes ?? 20 * 2 ** 20;
  const defaultMaxTokens = options.defaultMaxTokens ?? 1024;
  const retryAfter = String(options.retryAfterSeconds ?? 1);
  const log = options.log ?? (() => {});
  const scheduler = batchingFor(engine, options);
  const queue = new RequestQueue(options.maxQueue ?? 512, scheduler?.parallel ?? 1);
  const caps = (): ModelCapabilities => ({ supportsImages: engine.supportsImages === true, supportsAudio: engine.supportsAudio === true });
  const created = Math.floor(Date.now() / 1000);
  const shutdownCtl = new AbortController();
  let closing = false;
  let shutdownPromise: Promise<void> | null = null;

  const http = createHttpServer((req, res) => {
    const t0 = performance.now();
    let tokens = '';
    handle(req, res, (n) => {
      tokens = ` ${n} tokens`;
    })
      .catch((e: unknown) => sendError(res, toHttpError(e)))
      .finally(() => log(`${req.method} ${req.url} ${res.headersSent ? res.statusCode : '-'}${tokens} ${Math.round(performance.now() - t0)} ms`));
  });

  // ---- plumbing --------------------------------------------------------------------------

  function toHttpError(e: unknown): HttpError {
    if (e instanceof HttpError) return e;
    if (e instanceof QueueFullError) {
      return new HttpError(429, `${e.message} (queue limit ${queue.maxWaiting}); retry later`, 'rate_limit_error', null, 'queue_full', {
        'Retry-After': retryAfter,
      });
    }
    if (e instanceof QueueClosedError || e instanceof ShuttingDown)
      return new HttpError(503, 'the server is shutting down', 'server_error', null, 'shutting_down', { 'Retry-After': retryAfter });
    // Engine RangeErrors are bad requests (context overflow, sampling values); the rest is ours.
    if (e instanceof RangeError) return new HttpError(400, e.message, 'invalid_request_error');
    return new HttpError(500, `internal error: ${(e as Error)?.message ?? String(e)}`);
  }

  function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
    if (res.headersSent || res.destroyed) return;
    const text = JSON.stringify(body);
    res.writeHead(status, {
      'Content-Type': 'application/json; charset=utf-8',
      'Content-Length': String(Buffer.byteLength(text)),
      ...(closing ? { Connection: 'close' } : {}),
      ...headers,
    });
    res.end(text);
  }

  function sendError(res: ServerResponse, e: HttpError): void {
    if (res.headersSent) {
      // Mid-stream: report in the event stream, then end it.
      if (!res.writableEnded && !res.destroyed) {
        res.write(`data: ${JSON.stringify(e.toJSON())}\n\n`);
        res.end('data: [DONE]\n\n');
      }
      return;
    }
    sendJson(res, e.status, e.toJSON(), e.headers);
  }

  function readBody(req: IncomingMessage, res: ServerResponse): Promise<string> {
    const tooLarge = () => {
      res.setHeader('Connection', 'close'); // the rest of the body is not read
      return new HttpError(413, `request body too large (limit ${maxBody} bytes)`, 'invalid_request_error', null, 'request_too_large');
    };
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > maxBody) {
      req.resume();
      return Promise.reject(tooLarge());
    }
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      let size = 0;
      let done = false;
      req.on('data', (c: Buffer) => {
        if (done) return;
        size += c.length;
        if (size > maxBody) {
          done = true;
          reject(tooLarge());
          return;
        }
        chunks.push(c);
      });
      req.on('end', () => {
        if (!done) {
          done = true;
          resolve(Buffer.concat(chunks).toString('utf8'));
        }
      });
      req.on('error', (e) => {
        if (!done) {
          done = true;
          reject(e);
        }
      });
    });
  }

  /** An AbortSignal that fires when the client goes away or shutdown runs out of patience. */
  function requestSignal(res: ServerResponse): AbortSignal {
    const ctl = new AbortController();
    res.on('close', () => {
      if (!res.writableFinished) ctl.abort(new ClientGone());
    });
    return AbortSignal.any([ctl.signal, shutdownCtl.signal]);
  }

  /** Checks the prompt fits the context and settles max_tokens; returns the prompt length. */
  function fitContext(messages: ChatMessage[], opts: GenerateOptions): number {
    const ctx = engine.model.config.maxPositionEmbeddings;
    // Count with media payloads left out; each image/audio part adds its soft tokens.
    let media = 0;
    const countable = messages.map((m) =>
      typeof m.content === 'string'
        ? m
        : ({
            role: m.role,
            content: m.content.map((p) => {
              if (p.type === 'image') media += MEDIA_TOKENS.image;
              if (p.type === 'audio') media += MEDIA_TOKENS.audio;
              return p.type === 'text' ? p : { type: p.type };
            }),
          } as ChatMessage),
    );
    let n: number;
    try {
      n = engine.encodePrompt(countable).length + media;
    } catch (e) {
      throw badRequest('messages', `cannot build the prompt: ${(e as Error).message}`);
    }
    if (n >= ctx) throw badRequest('messages', `the prompt is ${n} tokens, but this model's context is ${ctx} tokens`, 'context_length_exceeded');
    if (opts.maxTokens === undefined) opts.maxTokens = Math.min(defaultMaxTokens, ctx - n);
    else if (n + opts.maxTokens > ctx) {
      throw badRequest(
        'max_tokens',
        `this model's context is ${ctx} tokens, but ${n + opts.maxTokens} were requested (${n} in the messages, ${opts.maxTokens} in the completion); lower max_tokens or shorten the messages`,
        'context_length_exceeded',
      );
    }
    return n;
  }

  /** Runs one generation when the model is free; `onPiece` sees the text as it comes. */
  function generate(
    messages: ChatMessage[],
    opts: GenerateOptions,
    signal: AbortSignal,
    onStart?: () => void,
    onPiece?: (text: string) => void,
  ): Promise<GenerationResult> {
    return queue.run(async () => {
      signal.throwIfAborted();
      onStart?.();
      await yieldToEventLoop();
      const it = engine.stream(messages, { ...opts, signal });
      for (;;) {
        const r = await it.next();
        if (r.done) {
          if (r.value.metrics.stopReason === 'aborted') throw signal.reason instanceof Error ? signal.reason : new ClientGone();
          return r.value;
        }
        onPiece?.(r.value);
        // Let the socket report a disconnect and new requests queue between tokens.
        await yieldToEventLoop();
      }
    }, signal);
  }

  // ---- routes ----------------------------------------------------------------------------

  async function handle(req: IncomingMessage, res: ServerResponse, noteTokens: (n: number) => void): Promise<void> {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname.replace(/\/+$/, '') || '/';
    const method = req.method ?? 'GET';
    if (closing) throw new ShuttingDown();
    const routes: Record<string, Record<string, () => Promise<void>>> = {
      '/v1/chat/completions': { POST: () => chatCompletions(req, res, noteTokens) },
      '/chat': { POST: () => simpleRoute(req, res, parseSimpleChat, 'reply', noteTokens) },
      '/analyze-image': { POST: () => simpleRoute(req, res, parseAnalyzeImage, 'description', noteTokens) },
      '/v1/models': { GET: async () => sendJson(res, 200, { object: 'list', data: [modelCard()] }) },
      [`/v1/models/${modelId}`]: { GET: async () => sendJson(res, 200, modelCard()) },
      '/health': { GET: async () => sendJson(res, 200, health()) },
    };
    const route = routes[path];
    if (!route) {
      req.resume();
      throw new HttpError(
        404,
        `no route ${method} ${path} (routes: POST /v1/chat/completions, GET /v1/models, POST /chat, POST /analyze-image, GET /health)`,
        'invalid_request_error',
        null,
        'not_found',
      );
    }
    const run = route[method];
    if (!run) {
      req.resume();
      throw new HttpError(405, `${path} takes ${Object.keys(route).join(', ')}, not ${method}`, 'invalid_request_error', null, 'method_not_allowed', {
        Allow: Object.keys(route).join(', '),
      });
    }
    await run();
  }

  /** running/waiting count requests (a request waiting for its slot is not running yet). */
  function health() {
    const st = scheduler?.stats;
    return {
      status: closing ? 'shutting_down' : 'ok',
      model: modelId,
      running: queue.running,
      waiting: queue.length,
      parallel: queue.concurrency,
      max_queue: queue.maxWaiting,
      recent_tok_s: st ? round(st.recentTokPerS) : null,
      ...(st
        ? {
            generated_tokens: st.generatedTokens,
            prefix_cache: {
              entries: st.prefixCache.entries,
              bytes: st.prefixCache.bytes,
              budget_bytes: st.prefixCache.budgetBytes,
              hits: st.prefixCache.hits,
              misses: st.prefixCache.misses,
              reused_tokens: st.prefixCache.reusedTokens,
            },
          }
        : {}),
    };
  }

  const modelCard = () => ({ id: modelId, object: 'model', created, owned_by: 'gemma3n-ts' });

  async function simpleRoute(
    req: IncomingMessage,
    res: ServerResponse,
    parse: typeof parseSimpleChat,
    field: 'reply' | 'description',
    noteTokens: (n: number) => void,
  ): Promise<void> {
    const body = parseJsonBody(await readBody(req, res));
    const { messages, opts } = parse(body, caps());
    fitContext(messages, opts);
    const signal = requestSignal(res);
    const r = await generate(messages, opts, signal);
    noteTokens(r.metrics.generatedTokens);
    sendJson(res, 200, { [field]: r.text, model: modelId, finish_reason: finishReason(r), metrics: metricsJson(r) });
  }

  async function chatCompletions(req: IncomingMessage, res: ServerResponse, noteTokens: (n: number) => void): Promise<void> {
    const body = parseJsonBody(await readBody(req, res));
    const { messages, opts, stream, includeUsage } = parseChatCompletion(body, caps());
    fitContext(promptMessages(messages, opts), opts);
    const signal = requestSignal(res);
    const id = `chatcmpl-${globalThis.crypto.randomUUID().replace(/-/g, '')}`;
    const createdAt = Math.floor(Date.now() / 1000);

    if (!stream) {
      const r = await generate(messages, opts, signal);
      noteTokens(r.metrics.generatedTokens);
      sendJson(res, 200, {
        id,
        object: 'chat.completion',
        created: createdAt,
        model: modelId,
        choices: [{ index: 0, message: assistantMessage(r), logprobs: null, finish_reason: finishReasonOf(r) }],
        usage: usage(r),
      });
      return;
    }

    const chunk = (delta: object, finish: string | null) => ({
      id,
      object: 'chat.completion.chunk',
      created: createdAt,
      model: modelId,
      choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
    });
    const send = (obj: object) => {
      if (!res.destroyed) res.write(`data: ${JSON.stringify(obj)}\n\n`);
    };
    const shaper = new StreamShaper(opts, (delta) => send(chunk(delta, null)));
    const r = await generate(
      messages,
      opts,
      signal,
      () => {
        // Headers go out when the request's turn comes, so queue errors can still be a 429/503.
        res.writeHead(200, {
          'Content-Type': 'text/event-stream; charset=utf-8',
          'Cache-Control': 'no-cache',
          'X-Accel-Buffering': 'no',
          ...(closing ? { Connection: 'close' } : {}),
        });
        req.socket.setNoDelay(true);
        send(chunk({ role: 'assistant', content: '' }, null));
      },
      (piece) => shaper.piece(piece),
    );
    shaper.finish(r);
    noteTokens(r.metrics.generatedTokens);
    send(chunk({}, finishReasonOf(r)));
    if (includeUsage) send({ id, object: 'chat.completion.chunk', created: createdAt, model: modelId, choices: [], usage: usage(r) });
    res.end('data: [DONE]\n\n');
  }

  // ---- lifecycle -------------------------------------------------------------------------

  return {
    http,
    queue,
    listen(port = 8080, host = '127.0.0.1') {
      return new Promise((resolve, reject) => {
        http.once('error', reject);
        http.listen(port, host, () => {
          http.off('error', reject);
          const a = http.address() as AddressInfo;
          const h = a.family === 'IPv6' ? `[${a.address}]` : a.address;
          resolve({ host: a.address, port: a.port, url: `http://${h}:${a.port}` });
        });
      });
    },
    shutdown(graceMs = 10_000) {
      shutdownPromise ??= (async () => {
        closing = true;
        const closed = new Promise<void>((r) => http.close(() => r()));
        queue.close(); // waiters answer 503
        http.closeIdleConnections();
        const timer = setTimeout(() => shutdownCtl.abort(new ShuttingDown()), graceMs);
        await queue.idle();
        clearTimeout(timer);
        // Responses that just ended leave keep-alive sockets idle: close them, then force the rest.
        let done = false;
        void closed.then(() => {
          done = true;
        });
        for (let i = 0; i < 40 && !done; i++) {
          http.closeIdleConnections();
          await new Promise((r) => setTimeout(r, 50));
        }
        if (!done) http.closeAllConnections();
        await closed;
      })();
      return shutdownPromise;
    },
  };
}
