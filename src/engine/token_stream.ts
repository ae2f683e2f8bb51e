/**
 * The decoding loop with everything a caller needs around it: sampling, stop tokens,
 * cancellation, a reusable KV cache, and timing metrics. Text-level concerns (tokenizer,
 * chat template, stop strings) sit one level up, in engine.ts.
 */
import type { KVCache } from '../model/kv_cache.js';
import { Sampler, type SamplingOptions } from './sampling.js';
import type { CausalLM } from '../model/causal_lm.js';
import type { StepExplain } from '../model/explain.js';
import type { LogitsConstraint } from '../constrain/index.js';

export interface TokenStreamOptions extends SamplingOptions {
  maxTokens: number;
  /** Generation stops after emitting one of these (it is yielded, then the loop ends). */
  stopTokens?: readonly number[];
  signal?: AbortSignal;
  /** Keeps the KV cache between calls: a chat turn only runs the tokens that are new. */
  session?: CacheSession;
  /** Called after each forward step with what the model did (the explain trace) and the token it chose. */
  onExplain?: (explain: StepExplain, token: number) => void;
  /** Replaces the prompt's scaled embeddings (multimodal prompts). */
  inputsEmbeds?: Float32Array;
  /** Restricts each step to the tokens it allows (structured output, src/constrain/). */
  constraint?: LogitsConstraint;
}

/** A KV cache and the ids it holds, carried across the turns of one conversation. */
export interface CacheSession {
  cache: KVCache | null;
  ids: number[];
}

export interface GenerationMetrics {
  promptTokens: number;
  /** Prompt tokens actually run (the rest came from the reused cache). */
  prefillTokens: number;
  generatedTokens: number;
  prefillMs: number;
  decodeMs: number;
  timeToFirstTokenMs: number;
  prefillTokPerS: number;
  decodeTokPerS: number;
  stopReason: 'max_tokens' | 'stop_token' | 'aborted';
}

/** How far back a chat turn may rewind sliding-window layers without a full re-run. */
const REWIND_SLACK = 256;

const now = (): number => (typeof performance !== 'undefined' ? performance.now() : Date.now());

/**
 * Longest common prefix of the cached ids and the new prompt (at most prompt.length - 1: the last
 * prompt token must run to give logits), so a chat turn only runs what's new; -1 when the ids do
 * not describe the cache.
 */
export function reusablePrefix(cache: KVCache, cached: readonly number[], prompt: ArrayLike<number>): number {
  if (cached.length !== cache.position) return -1;
  let n = 0;
  while (n < cached.length && n < prompt.length - 1 && cached[n] === prompt[n]) n++;
  return n;
}

/**
 * Yields generated token ids one by one. `metrics` is filled in as it goes and complete
 * when the iterator finishes.
 */
export async function* generateTokens(
  model: CausalLM,
  promptIds: ArrayLike<number>,
  opts: TokenStreamOptions,
  metrics: Partial<GenerationMetrics> = {},
): AsyncGenerator<number, GenerationMetrics> {
  if (promptIds.length === 0) throw new RangeError('generate: the prompt is empty (give at least one token)');
  if (!(Number.isInteger(opts.maxTokens) && opts.maxTokens >= 0)) throw new RangeError(`generate: maxTokens=${opts.maxTokens} must be an integer >= 0`);
  const ctx = model.config.maxPositionEmbeddings;
  if (promptIds.length + opts.maxTokens > ctx)
    throw new RangeError(`generate: prompt (${promptIds.length} tokens) + maxTokens (${opts.maxTokens}) exceeds the context of ${ctx} tokens`);
  const sampler = new Sampler(opts);
  const stop = new Set(opts.stopTokens ?? []);

  // Reuse the session's cache for the longest prefix it already holds (not with soft tokens,
  // whose embeddings the ids alone do not identify).
  const session = opts.session;
  // Sessions keep some positions past the sliding window so a turn can rewind into the reply.
  let cache: KVCache | null = null;
  let start = 0;
  if (session?.cache && !opts.inputsEmbeds) {
    const keep = reusablePrefix(session.cache, session.ids, promptIds);
    if (keep >= 0 && session.cache.rewind(keep)) {
      cache = session.cache;
      start = keep;
    }
  }
  if (!cache) {
    session?.cache?.release(); // a cache that cannot be reused gives its (WASM) memory back now
    cache = model.newCache(session ? REWIND_SLACK : 0);
  }
  if (session) {
    session.cache = cache;
    session.ids = [];
  }
  const history: number[] = Array.from(promptIds);
  Object.assign(metrics, { promptTokens: promptIds.length, prefillTokens: promptIds.length - start, generatedTokens: 0, stopReason: 'max_tokens' as const });

  const t0 = now();
  let input: ArrayLike<number> = Array.from(promptIds).slice(start);
  let embeds = opts.inputsEmbeds;
  if (embeds && start > 0) throw new Error('generate: inputsEmbeds cannot be combined with a reused cache');
  let tFirst = t0;
  try {
    for (let step = 0; step < opts.maxTokens; step++) {
      if (opts.signal?.aborted) {
        metrics.stopReason = 'aborted';
        break;
      }
      const explain: StepExplain | undefined = opts.onExplain ? {} : undefined;
      const { logits } = await model.forward(input, cache, { logits: 'last', inputsEmbeds: embeds, explain });
      embeds = undefined;
      opts.constraint?.maskLogits(logits);
      const next = sampler.sample(logits, history);
      opts.constraint?.accept(next);
      if (explain) opts.onExplain!(explain, next);
      if (step === 0) {
        tFirst = now();
        metrics.prefillMs = tFirst - t0;
        metrics.timeToFirstTokenMs = tFirst - t0;
      }
      history.push(next);
      metrics.generatedTokens = step + 1;
      yield next;
      if (stop.has(next)) {
        metrics.stopReason = 'stop_token';
        break;
      }
      input = [next];
    }
  } finally {
    if (!session) cache.release(); // one-shot generation: the cache dies here
  }
  const tEnd = now();
  metrics.prefillMs ??= tEnd - t0;
  metrics.timeToFirstTokenMs ??= metrics.prefillMs;
  // Decode time covers the steps after the first token (the first comes out of the prefill).
  metrics.decodeMs = metrics.generatedTokens! > 1 ? tEnd - tFirst : 0;
  metrics.prefillTokPerS = metrics.prefillTokens! / (metrics.prefillMs / 1000 || Infinity);
  metrics.decodeTokPerS = metrics.generatedTokens! > 1 ? (metrics.generatedTokens! - 1) / (metrics.decodeMs / 1000) : 0;
  if (session) session.ids = history.slice(0, cache.position);
  return metrics as GenerationMetrics;
}
