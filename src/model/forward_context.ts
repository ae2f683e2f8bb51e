/**
 * What one forward step carries through the decoder, in one object instead of 9-12 positional
 * arguments: the kernels, the config, the reusable work buffers, the step's rows and their KV
 * caches, and the optional trace hook. Gemma3nTextModel.forward builds one per step.
 *
 * Rows and sequences: every activation of a step is [T, ·], one row per token. The rows belong to
 * `sequences`, each a run of consecutive rows with its own KV cache (its first row sits at
 * position `cache.position`). Row-wise math (linears, norms, AltUp, MLP, the per-layer gate)
 * never looks at this; only attention (and RoPE inside it) does, sequence by sequence. Today
 * forward() runs one sequence; a batched step passes several, each with its own cache.
 */
import type { TextConfig } from '../checkpoint/config.js';
import type { Kernels } from '../kernels/kernels.js';
import type { KVCache } from './kv_cache.js';
import type { RotaryEmbedding } from './rope.js';
import type { Scratch } from './scratch.js';
import type { Tracer } from './trace.js';

/** Rows [first, first + count) of the step belong to the sequence whose cache is `cache`. */
export interface SequenceRows {
  readonly cache: KVCache;
  readonly first: number;
  readonly count: number;
}

/** `C`: the config the layers read (Gemma 3n's TextConfig; Gemma 4 passes its own). */
export interface ForwardContext<C = TextConfig> {
  readonly kernels: Kernels;
  readonly config: C;
  /** Intermediate buffers reused from step to step (scratch.ts). */
  readonly work: Scratch;
  /** Rows in this step: the tokens of all sequences. */
  readonly T: number;
  readonly sequences: readonly SequenceRows[];
  /**
   * [L] the RoPE each layer rotates q/k with (Gemma 3n: rope_local_base_freq on sliding layers,
   * rope_theta on full ones; the layers of one kind share one object and its angle table).
   */
  readonly ropes: readonly RotaryEmbedding[];
  /** Sees every named intermediate when set; undefined costs nothing (trace.ts). */
  readonly trace: Tracer | undefined;
  /**
   * [L] written by each layer: the fraction of FFN gate activations gaussian top-k left nonzero
   * (1 for dense layers). Read after the step by the explain trace (explain.ts), never by the math.
   */
  readonly ffnActiveFraction: Float64Array;
}

