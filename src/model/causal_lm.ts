/**
 * What the engine needs from a decoder: Gemma 3n's (text_model.ts) and Gemma 4's
 * (gemma4_text_model.ts) text models both provide it, so generation, sampling, chat sessions,
 * the batching scheduler, the prefix cache, tracing and the server work for either family.
 *
 *   prefill:      forward(promptIds, cache)         T new tokens after those in the cache
 *   decode step:  forward([lastId], cache)          T = 1
 *   batched step: forwardBatch([{ids, cache}, ...]) several sequences, each with its own cache
 */
import type { Kernels } from '../kernels/kernels.js';
import type { StepExplain } from './explain.js';
import type { KVCache } from './kv_cache.js';
import type { Tracer } from './trace.js';

export interface ForwardOptions {
  /** Which positions get logits: all T, only the last (default), or none. */
  logits?: 'all' | 'last' | 'none';
  /** Replaces the scaled token embeddings [T, H] (multimodal soft tokens are merged here). */
  inputsEmbeds?: Float32Array;
  trace?: Tracer;
  explain?: StepExplain;
}

/** One sequence of a batched step (forwardBatch). */
export interface BatchSequence {
  /** Its new tokens: one when decoding, a chunk when prefilling. */
  ids: ArrayLike<number>;
  cache: KVCache;
  /** Replaces these tokens' scaled embeddings [ids.length, H] (multimodal soft tokens). */
  inputsEmbeds?: Float32Array;
  /** Whether the logits of its last row are wanted (default true). */
  logits?: boolean;
}

export interface ForwardResult {
  /** [rows, vocab] logits after soft-capping, rows = T, 1 or 0. */
  logits: Float32Array;
  rows: number;
}

/** The config fields the engine reads, named alike in both families' text configs. */
export interface CausalLMConfig {
  readonly hiddenSize: number;
  readonly numHiddenLayers: number;
  readonly vocabSize: number;
  readonly maxPositionEmbeddings: number;
  /** generation_config / config eos ids: generation stops on them for chat prompts. */
  readonly eosTokenIds: readonly number[];
}

export interface CausalLM {
  readonly config: CausalLMConfig;
  readonly kernels: Kernels;
  /** True while weights are read from the checkpoint on demand (a streamed PLE table): keep it open. */
  readonly readsCheckpoint: boolean;
  /** T new tokens after those already in `cache`; logits for the last (default), all or none. */
  forward(ids: ArrayLike<number>, cache: KVCache, opts?: ForwardOptions): Promise<ForwardResult>;
  /**
   * Several sequences in one step, each after the tokens in its own cache; per sequence, the
   * logits of its last row (empty when its `logits` is false). Bit-identical to running each
   * sequence alone.
   */
  forwardBatch(batch: readonly BatchSequence[]): Promise<Float32Array[]>;
  /** A fresh KV cache; `rewindSlack` lets a chat rewind that many positions cheaply. */
  newCache(rewindSlack?: number): KVCache;
  /** The scaled token embeddings [T, H] (multimodal merging overwrites the placeholder rows). */
  embed(ids: ArrayLike<number>): Promise<Float32Array>;
}
