/**
 * What generation needs from a decoder: Gemma 3n's and Gemma 4's text models both provide it,
 * so greedy decoding, sampling and the KV-cache paths work for either.
 */
import type { KVCache } from './kv_cache.js';
import type { ForwardOptions, ForwardResult } from './text_model.js';

export interface CausalLM {
  /** T new tokens after those already in `cache`; logits for the last (default), all or none. */
  forward(ids: ArrayLike<number>, cache: KVCache, opts?: ForwardOptions): Promise<ForwardResult>;
  newCache(rewindSlack?: number): KVCache;
}
