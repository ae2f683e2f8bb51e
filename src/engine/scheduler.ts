/**
 * Continuous batching: several generations share one model. Each step runs one batched forward
 * (CausalLM.forwardBatch: Gemma 3n's and Gemma 4's decoders) over
 *   - one token of every sequence that is decoding, and
 *   - up to `prefillChunk` prompt tokens of sequences that are still reading their prompt,
 * so every linear reads its weights once for all of them (decode is memory-bound: advancing 8
 * sequences costs little more than advancing one), and a long prompt is prefilled in chunks
 * between the decode steps of the others instead of stalling them.
 *
 * Each sequence keeps its own KV cache, position, sampler and stop rules. Every row of a batched
 * step is computed exactly as it would be alone, so a sequence's tokens do not depend on what
 * else is in the batch (a temperature-0 answer equals the same request served alone).
 *
 * At most `parallel` sequences run; more wait in a FIFO. A sequence whose consumer stops
 * reading (return(), an abort signal) leaves at the next step. A finished sequence's cache goes
 * to the prefix cache (prefix_cache.ts), so a later prompt that starts the same way reuses it.
 *
 *   const sched = new BatchScheduler(model, { parallel: 4 });
 *   for await (const id of sched.generate(promptIds, { maxTokens: 64, temperature: 0 })) ...
 */
import type { KVCache } from '../model/kv_cache.js';
import type { BatchSequence, CausalLM } from '../model/causal_lm.js';
import { Sampler } from './sampling.js';
import { PrefixCache, type PrefixCacheStats } from './prefix_cache.js';
import { reusablePrefix, type CacheSession, type GenerationMetrics, type TokenStreamOptions } from './token_stream.js';

export interface SchedulerOptions {
  /** Sequences advanced together (slots). Default 4. */
  parallel?: number;
  /** Prompt tokens run per step, over all sequences still reading their prompt. Default 128. */
  prefillChunk?: number;
  /** Bytes of finished sequences' K/V kept for prefix reuse (0 = off). Default 256 MiB. */
  prefixCacheBytes?: number;
  /** Sequences that may wait for a slot; one more throws SchedulerFullError. Default unbounded. */
  maxWaiting?: number;
  /**
   * Past positions sliding-window layers keep beyond the window, so a cached conversation can be
   * reused from a point up to this far before its end. Default 256.
   */
  rewindSlack?: number;
}

export interface SchedulerStats {
  parallel: number;
  /** Sequences in a slot (prefilling or decoding), and those waiting for one. */
  running: number;
  waiting: number;
  /** Tokens generated per second over the last `windowS` seconds. */
  recentTokPerS: number;
  windowS: number;
  /** Batched forward steps run, and tokens generated, since the start. */
  steps: number;
  generatedTokens: number;
  prefixCache: PrefixCacheStats;
}

export class SchedulerFullError extends Error {
  constructor(readonly waiting: number) {
    super(`the scheduler is full: ${waiting} requests are already waiting for a slot`);
  }
}

export class SchedulerClosedError extends Error {
  constructor() {
    super('the scheduler is closed');
  }
}

/** One generation's state. */
interface Sequence {
  prompt: number[];
  embeds: Float32Array | undefined;
  /** Prompt tokens already in the cache (reused or run). */
  fed: number;
  cache: KVCache | null;
  /** A chat session's cache carried across turns: the sequence starts from it and leaves its cache there. */
  session: CacheSession | undefined;
  sampler: Sampler;
  /** Structured output: restricts each step's tokens (src/constrain/). */
  constraint: TokenStreamOptions['constraint'];
  stop: Set<number>;
  maxTokens: number;
  signal: AbortSignal | undefined;
  /** Prompt + generated ids (the repetition penalty's history). */
  history: number[];
  generated: number;
  /** Tokens produced but not yet taken by the consumer. */
  pending: number[];
  done: boolean;
  /** The consumer is gone: leave at the next step. */
  cancelled: boolean;
  error: unknown;
  wake: (() => void) | null;
  metrics: Partial<GenerationMetrics>;
  tSubmit: number;
  tAdmit: number;
  tFirst: number;
}

const now = (): number => (typeof performance !== 'undefined' ? performance.now() : Date.now());
/** Lets I/O (new requests, disconnects, consumers) run between steps. */
const yieldToEventLoop = (): Promise<void> => new Promise((r) => (typeof setImmediate === 'function' ? setImmediate(r) : setTimeout(r, 0)));

const RATE_WINDOW_S = 10;

export class BatchScheduler {
  readonly parallel: number;
  readonly prefillChunk: number;
  readonly maxWaiting: number;
  readonly rewindSlack: number;
  readonly prefixCache: PrefixCache;
  private readonly waiting: Sequence[] = [];
  private readonly running: Sequence[] = [];
  private looping = false;
  private closed = false;
  private steps = 0;
  private generatedTotal = 0;
  /** [time, tokens] of recent steps, for recentTokPerS. */
  private recent: [number, number][] = [];
  private idleResolvers: (() => void)[] = [];

  constructor(
    readonly model: CausalLM,
    opts: SchedulerOptions = {},
  ) {
    const int = (v: number | undefined, name: string, def: number, min: number) => {
      const x = v ?? def;
      if (!(Number.isInteger(x) && x >= min) && x !== Infinity) throw new RangeError(`scheduler: ${name}=${v} must be an integer >= ${min}`);
      return x;
    };
    this.parallel = int(opts.parallel, 'parallel', 4, 1);
    this.prefillChunk = int(opts.prefillChunk, 'prefillChunk', 128, 1);
    this.maxWaiting = int(opts.maxWaiting, 'maxWaiting', Infinity, 0);
    this.rewindSlack = int(opts.rewindSlack, 'rewindSlack', 256, 0);
    this.prefixCache = new PrefixCache(opts.prefixCacheBytes ?? 256 * 2 ** 20);
  }

  get stats(): SchedulerStats {
    const t = now();
    this.recent = this.recent.filter(([ts]) => t - ts <= RATE_WINDOW_S * 1000);
    const tokens = this.recent.reduce((s, [, n]) => s + n, 0);
    // Over the span actually covered (a server that just started has less than the window).
    const span = this.recent.length > 0 ? Math.max(1000, t - this.recent[0][0]) / 1000 : RATE_WINDOW_S;
    return {
      parallel: this.parallel,
      running: this.running.length,
      waiting: this.waiting.length,
      recentTokPerS: tokens / span,
      windowS: RATE_WINDOW_S,
      steps: this.steps,
      generatedTokens: this.generatedTotal,
      prefixCache: this.prefixCache.stats,
    };
  }

  /**
   * Yields the generated ids of one prompt, batched with whatever else runs. Same contract as
   * generateTokens (token_stream.ts): stop tokens are yielded and end the sequence, `metrics`
   * is complete when the iterator finishes. With `opts.session` (a chat's cache carried across
   * turns) the sequence starts from the session's cache where it holds a prefix of the prompt, as
   * generateTokens does, and leaves its cache in the session instead of the prefix cache.
   */
  async *generate(promptIds: ArrayLike<number>, opts: TokenStreamOptions, metrics: Partial<GenerationMetrics> = {}): AsyncGenerator<number, GenerationMetrics> {
    const c = this.model.config;
    if (promptIds.length === 0) throw new RangeError('generate: the prompt is empty (give at least one token)');
    if (!(Number.isInteger(opts.maxTokens) && opts.maxTokens >= 0)) throw new RangeError(`generate: maxTokens=${opts.maxTokens} must be an integer >= 0`);
    if (promptIds.length + opts.maxTokens > c.maxPositionEmbeddings)
      throw new RangeError(
        `generate: prompt (${promptIds.length} tokens) + maxTokens (${opts.maxTokens}) exceeds the context of ${c.maxPositionEmbeddings} tokens`,
      );
    for (let i = 0; i < promptIds.length; i++) {
      const id = promptIds[i];
      if (!Number.isInteger(id) || id < 0 || id >= c.vocabSize)
        throw new RangeError(`generate: token id ${id} at index ${i} is outside the vocabulary [0, ${c.vocabSize})`);
    }
    if (opts.inputsEmbeds && opts.inputsEmbeds.length !== promptIds.length * c.hiddenSize)
      throw new RangeError(`generate: inputsEmbeds has ${opts.inputsEmbeds.length} values, expected ${promptIds.length}x${c.hiddenSize}`);
    if (opts.session && [...this.running, ...this.waiting].some((s) => s.session === opts.session))
      throw new Error('generate: this session already has a generation running (one turn at a time)');
    if (this.closed) throw new SchedulerClosedError();
    const seq: Sequence = {
      prompt: Array.from(promptIds),
      embeds: opts.inputsEmbeds,
      fed: 0,
      cache: null,
      session: opts.session,
      sampler: new Sampler(opts),
      constraint: opts.constraint,
      stop: new Set(opts.stopTokens ?? []),
      maxTokens: opts.maxTokens,
      signal: opts.signal,
      history: Array.from(promptIds),
      generated: 0,
      pending: [],
      done: false,
      cancelled: false,
      error: undefined,
      wake: null,
      metrics,
      tSubmit: now(),
      tAdmit: 0,
      tFirst: 0,
    };
    Object.assign(metrics, { promptTokens: seq.prompt.length, prefillTokens: seq.prompt.length, generatedTokens: 0, stopReason: 'max_tokens' as const });
    if (opts.maxTokens === 0) return this.finishMetrics(seq);
    if (this.running.length >= this.parallel && this.waiting.length >= this.maxWaiting) throw new SchedulerFullError(this.waiting.length);
    this.waiting.push(seq);
    // Wake the consumer when the signal fires while it waits for a token.
    const onAbort = () => seq.wake?.();
    opts.signal?.addEventListener('abort', onAbort);
    this.kick();
    try {
      for (;;) {
        while (seq.pending.length > 0) yield seq.pending.shift()!;
        if (seq.error !== undefined) throw seq.error;
        if (seq.done) break;
        if (seq.signal?.aborted) {
          seq.cancelled = true;
          break;
        }
        await new Promise<void>((r) => {
          seq.wake = r;
        });
        seq.wake = null;
      }
    } finally {
      opts.signal?.removeEventListener('abort', onAbort);
      if (!seq.done) {
        // The consumer left (return(), an exception, the signal): free the slot at the next step.
        seq.cancelled = true;
        const w = this.waiting.indexOf(seq);
        if (w >= 0) {
          this.waiting.splice(w, 1);
          this.retire(seq, 'aborted');
        }
        this.kick();
      }
    }
    if (seq.cancelled && seq.metrics.stopReason !== 'stop_token') seq.metrics.stopReason = 'aborted';
    return this.finishMetrics(seq);
  }

  /** Resolves when no sequence runs or waits. */
  idle(): Promise<void> {
    if (!this.looping) return Promise.resolve();
    return new Promise((r) => this.idleResolvers.push(r));
  }

  /** Refuses new work, lets running and waiting sequences finish; then frees the prefix cache. */
  async close(): Promise<void> {
    this.closed = true;
    await this.idle();
    this.prefixCache.clear();
  }

  private finishMetrics(seq: Sequence): GenerationMetrics {
    const m = seq.metrics;
    const tEnd = now();
    const tAdmit = seq.tAdmit || tEnd;
    m.prefillMs ??= tEnd - tAdmit;
    m.timeToFirstTokenMs ??= tEnd - seq.tSubmit;
    m.decodeMs = m.generatedTokens! > 1 ? tEnd - seq.tFirst : 0;
    m.prefillTokPerS = m.prefillTokens! / (m.prefillMs / 1000 || Infinity);
    m.decodeTokPerS = m.generatedTokens! > 1 ? (m.generatedTokens! - 1) / (m.decodeMs / 1000) : 0;
    return m as GenerationMetrics;
  }

  private kick(): void {
    if (this.looping) return;
    this.looping = true;
    void this.loop();
  }

  private async loop(): Promise<void> {
    try {
      for (;;) {
        this.admit();
        // Sequences whose consumer left, or whose signal fired, free their slot now.
        for (const s of [...this.running]) {
          if (s.cancelled || s.signal?.aborted) this.retire(s, 'aborted');
        }
        if (this.running.length === 0) {
          if (this.waiting.length === 0) break;
          continue;
        }
        await this.step();
        await yieldToEventLoop();
      }
    } finally {
      this.looping = false;
      for (const r of this.idleResolvers.splice(0)) r();
      // A request that arrived while the loop was ending.
      if (this.waiting.length > 0 || this.running.length > 0) this.kick();
    }
  }

  /** Moves waiting sequences into free slots, each starting from its longest cached prefix. */
  private admit(): void {
    while (this.running.length < this.parallel && this.waiting.length > 0) {
      const s = this.waiting.shift()!;
      if (s.cancelled || s.signal?.aborted) {
        this.retire(s, 'aborted');
        continue;
      }
      s.tAdmit = now();
      // A chat session's own cache first (its longest prefix of the prompt), as generateTokens.
      const own = s.session?.cache;
      if (own && !s.embeds) {
        const keep = reusablePrefix(own, s.session!.ids, s.prompt);
        if (keep >= 0 && own.rewind(keep)) {
          s.cache = own;
          s.fed = keep;
        }
      }
      if (!s.cache) {
        own?.release(); // a session cache that cannot be reused gives its memory back now
        // Soft-token embeddings are not identified by the ids: such prompts are not matched.
        const hit = s.embeds ? null : this.prefixCache.take(this.model, s.prompt, this.rewindSlack);
        s.cache = hit?.cache ?? this.model.newCache(this.rewindSlack);
        s.fed = hit?.reused ?? 0;
      }
      if (s.session) {
        s.session.cache = s.cache;
        s.session.ids = [];
      }
      s.metrics.prefillTokens = s.prompt.length - s.fed;
      this.running.push(s);
    }
  }

  /** One batched forward: every decoding sequence's next token and a budget of prompt tokens. */
  private async step(): Promise<void> {
    const batch: BatchSequence[] = [];
    const members: Sequence[] = [];
    let budget = this.prefillChunk;
    // Decoding sequences first (one row each), then prompts in arrival order.
    for (const s of this.running) {
      if (s.fed < s.prompt.length) continue;
      batch.push({ ids: [s.history[s.history.length - 1]], cache: s.cache! });
      members.push(s);
    }
    for (const s of this.running) {
      if (s.fed >= s.prompt.length || budget === 0) continue;
      const n = Math.min(budget, s.prompt.length - s.fed);
      const end = s.fed + n;
      const H = this.model.config.hiddenSize;
      batch.push({
        ids: s.prompt.slice(s.fed, end),
        cache: s.cache!,
        logits: end === s.prompt.length,
        inputsEmbeds: s.embeds?.subarray(s.fed * H, end * H),
      });
      members.push(s);
      s.fed = end;
      budget -= n;
    }
    let logits: Float32Array[];
    try {
      logits = await this.model.forwardBatch(batch);
    } catch (e) {
      // A failed step leaves its sequences' caches half-written: they end with the error.
      for (const s of members) {
        s.error = e;
        this.retire(s, 'aborted');
      }
      return;
    }
    this.steps++;
    let produced = 0;
    const t = now();
    members.forEach((s, i) => {
      if (logits[i].length === 0 || s.done) return;
      s.constraint?.maskLogits(logits[i]);
      const next = s.sampler.sample(logits[i], s.history);
      s.constraint?.accept(next);
      if (s.generated === 0) {
        s.tFirst = t;
        s.metrics.prefillMs = t - s.tAdmit;
        s.metrics.timeToFirstTokenMs = t - s.tSubmit;
      }
      s.history.push(next);
      s.generated++;
      produced++;
      s.metrics.generatedTokens = s.generated;
      s.pending.push(next);
      if (s.stop.has(next)) {
        s.metrics.stopReason = 'stop_token';
        this.retire(s, 'stop_token');
      } else if (s.generated >= s.maxTokens) this.retire(s, 'max_tokens');
      else s.wake?.();
    });
    this.generatedTotal += produced;
    this.recent.push([t, produced]);
    if (this.recent.length > 4096) this.recent.splice(0, 2048);
  }

  /** Ends a sequence: leaves its slot, hands its cache to the prefix cache, wakes its consumer. */
  private retire(s: Sequence, reason: GenerationMetrics['stopReason']): void {
    const i = this.running.indexOf(s);
    if (i >= 0) this.running.splice(i, 1);
    if (!s.done) {
      s.done = true;
      if (reason === 'aborted' && s.metrics.stopReason !== 'stop_token') s.metrics.stopReason = 'aborted';
    }
    if (s.cache) {
      // The cache holds history[0, position): the prompt and every generated token run so far.
      if (s.session) {
        // The session keeps it for its next turn (a failed step leaves it half-written: dropped).
        if (s.error === undefined) s.session.ids = s.history.slice(0, s.cache.position);
        else {
          s.cache.release();
          s.session.cache = null;
          s.session.ids = [];
        }
      } else if (s.error === undefined && !s.embeds) this.prefixCache.put(s.history.slice(0, s.cache.position), s.cache);
      else s.cache.release();
      s.cache = null;
    }
    s.wake?.();
  }
}
