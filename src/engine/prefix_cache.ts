/**
 * Prompt-prefix reuse across requests (as llama.cpp's prompt cache): when a sequence ends, its
 * KV cache is kept here with the ids it holds; a new prompt that starts with the same tokens
 * (the same system prompt, or an OpenAI client resending the whole chat history) starts from a
 * copy of those keys and values instead of recomputing them. Bounded by a byte budget, least
 * recently used entries go first.
 *
 * Reused K/V are the values the same rows would get if recomputed (each row is computed alone,
 * see CausalLM.forwardBatch), so reuse changes no output.
 */
import type { KVCache } from '../model/kv_cache.js';
import type { CausalLM } from '../model/causal_lm.js';

interface Entry {
  ids: number[];
  cache: KVCache;
  bytes: number;
}

export interface PrefixCacheStats {
  entries: number;
  bytes: number;
  budgetBytes: number;
  /** Lookups that reused at least one token, and those that reused none. */
  hits: number;
  misses: number;
  /** Prompt tokens taken from the cache instead of being recomputed. */
  reusedTokens: number;
}

/** Bytes a cache's buffers hold (their allocated size, not only the rows in use). */
export function cacheBytes(cache: KVCache): number {
  return cache.layers.reduce((s, kv) => s + (kv ? (kv.k.length + kv.v.length) * 4 : 0), 0);
}

/** Longest n with a[i] === b[i] for i < n. */
function commonPrefix(a: readonly number[], b: ArrayLike<number>): number {
  const m = Math.min(a.length, b.length);
  let n = 0;
  while (n < m && a[n] === b[n]) n++;
  return n;
}

/**
 * min(n, cache.position) when `cache` still holds every row a continuation from there needs,
 * else 0: sliding-window layers evict rows older than the window (plus the cache's rewind
 * slack), and a query at position p needs their keys from max(0, p - (W - 1)) on.
 */
export function usablePrefix(cache: KVCache, n: number): number {
  const p = Math.min(n, cache.position);
  const W = cache.config.slidingWindow;
  for (let i = 0; i < cache.layers.length; i++) {
    const kv = cache.layers[i];
    if (kv && cache.config.layerTypes[i] === 'sliding_attention' && kv.startPos > Math.max(0, p - (W - 1))) return 0;
  }
  return p;
}

/** A new cache holding positions [0, n) of `src` (which must hold what n needs: usablePrefix). */
export function copyPrefix(model: CausalLM, src: KVCache, n: number, rewindSlack: number): KVCache {
  const dst = model.newCache(rewindSlack);
  src.layers.forEach((kv, i) => {
    const d = dst.layers[i];
    if (!kv || !d) return;
    const rows = Math.max(0, Math.min(kv.length, n - kv.startPos));
    d.startPos = kv.startPos;
    if (rows > 0) d.append(kv.k.subarray(0, rows * kv.rowWidth), kv.v.subarray(0, rows * kv.rowWidth), rows);
  });
  dst.position = n;
  dst.evictSliding();
  return dst;
}

export class PrefixCache {
  /** Most recently used last. */
  private entries: Entry[] = [];
  private used = 0;
  private hits = 0;
  private misses = 0;
  private reusedTokens = 0;

  constructor(readonly budgetBytes: number) {
    if (!(budgetBytes >= 0)) throw new RangeError(`prefix cache budget must be >= 0 bytes, got ${budgetBytes}`);
  }

  get stats(): PrefixCacheStats {
    return {
      entries: this.entries.length,
      bytes: this.used,
      budgetBytes: this.budgetBytes,
      hits: this.hits,
      misses: this.misses,
      reusedTokens: this.reusedTokens,
    };
  }

  /**
   * A cache for `prompt` that already holds its longest cached prefix (at most prompt.length - 1
   * tokens: the last prompt token must run to give logits), or null when nothing matches.
   */
  take(model: CausalLM, prompt: ArrayLike<number>, rewindSlack: number): { cache: KVCache; reused: number } | null {
    let best: Entry | null = null,
      bestN = 0;
    for (const e of this.entries) {
      const n = usablePrefix(e.cache, Math.min(commonPrefix(e.ids, prompt), prompt.length - 1));
      if (n > bestN) {
        best = e;
        bestN = n;
      }
    }
    if (!best) {
      this.misses++;
      return null;
    }
    this.hits++;
    this.reusedTokens += bestN;
    // Most recently used goes last.
    this.entries.splice(this.entries.indexOf(best), 1);
    this.entries.push(best);
    return { cache: copyPrefix(model, best.cache, bestN, rewindSlack), reused: bestN };
  }

  /**
   * Keeps a finished sequence's cache (ownership passes here) holding `ids`; releases it at once
   * when it does not fit the budget or an entry already covers it.
   */
  put(ids: readonly number[], cache: KVCache): void {
    ids = ids.slice(0, cache.position);
    const bytes = cacheBytes(cache);
    if (ids.length === 0 || bytes > this.budgetBytes || this.entries.some((e) => e.ids.length >= ids.length && commonPrefix(e.ids, ids) === ids.length)) {
      cache.release();
      return;
    }
    // Entries this one extends are redundant: its prefix holds them.
    for (const e of this.entries.filter((e) => commonPrefix(ids, e.ids) === e.ids.length)) this.drop(e);
    this.entries.push({ ids: [...ids], cache, bytes });
    this.used += bytes;
    while (this.used > this.budgetBytes) this.drop(this.entries[0]);
  }

  private drop(e: Entry): void {
    this.entries.splice(this.entries.indexOf(e), 1);
    this.used -= e.bytes;
    e.cache.release();
  }

  /** Releases every entry. */
  clear(): void {
    for (const e of [...this.entries]) this.drop(e);
  }
}
