/**
 * The explain trace (`gemma3n generate --explain`, the `onExplain` option): per forward step,
 * which layers ran and how, which per-layer-embedding rows were fetched, how big the KV cache
 * is. Collected around the math, never inside it: text_model.ts calls these functions before
 * and after the layer loop, from what the step left behind (the cache, the streamed table's
 * stats, ForwardContext.ffnActiveFraction).
 */
import type { TextConfig } from '../checkpoint/config.js';
import type { EmbeddingTable } from '../checkpoint/embedding_table.js';
import { StreamedTable } from '../checkpoint/streamed_table.js';
import type { KVCache } from './kv_cache.js';
import { perLayerIds } from './per_layer_embedding.js';

/** What one layer did in a forward step. */
export interface LayerExplain {
  index: number;
  type: 'sliding' | 'full';
  /** The layer whose K/V this layer attended over (itself unless KV-shared). */
  kvSource: number;
  /** Keys visible to the last query of the step. */
  keysAttended: number;
  ffnWidth: number;
  /** The layer's attention head size where it varies by layer (Gemma 4: 256 sliding, 512 full). */
  headDim?: number;
  /** Fraction of FFN gate activations left nonzero by gaussian top-k (1 where not sparsified). */
  ffnActiveFraction: number;
}

/**
 * Per-forward-step facts for learners: which layers ran and how, which per-layer-embedding
 * rows were fetched, and how big the KV cache is. Pass an empty object; forward() fills it.
 */
export interface StepExplain {
  position?: number;
  tokens?: number;
  layers?: LayerExplain[];
  /** Token ids whose PLE rows were looked up, and those read from storage (not cached). */
  pleRowsLookedUp?: number[];
  pleRowsFetched?: number[] | null;
  pleBytesFetched?: number;
  kvCacheBytes?: number;
  /** Layers that own a KV cache entry, and shared layers with their source. */
  kvSharedLayers?: { layer: number; source: number }[];
}

/** Before the layers: the step's place and the per-layer-embedding rows it looked up. */
export function explainInputs(ex: StepExplain, c: Pick<TextConfig, 'vocabSizePerLayerInput'>, ids: ArrayLike<number>, cache: KVCache, perLayerTable: EmbeddingTable): void {
  ex.position = cache.position;
  ex.tokens = ids.length;
  ex.layers = [];
  ex.pleRowsLookedUp = Array.from(perLayerIds(ids, c));
  const streamed = perLayerTable instanceof StreamedTable ? perLayerTable : null;
  ex.pleRowsFetched = streamed ? [...streamed.stats.lastFetched] : null;
  ex.pleBytesFetched = streamed ? streamed.stats.lastFetched.length * streamed.rowBytes : 0;
  ex.kvSharedLayers = cache.source.map((src, l) => ({ layer: l, source: src })).filter((x) => x.layer !== x.source);
}

/**
 * After the layers, before the cache advances and evicts: what each layer attended and kept
 * active. `ffnWidths` [L]: each layer's MLP width; `headDims` [L] where head sizes vary by layer.
 */
export function explainLayers(ex: StepExplain, c: Pick<TextConfig, 'layerTypes' | 'slidingWindow'>, cache: KVCache, ffnWidths: ArrayLike<number>, ffnActiveFraction: Float64Array, headDims?: ArrayLike<number>): void {
  ex.layers = c.layerTypes.map((type, layer) => {
    const kv = cache.layers[cache.source[layer]]!;
    const window = type === 'sliding_attention' ? c.slidingWindow : Infinity;
    return {
      index: layer,
      type: type === 'sliding_attention' ? 'sliding' : 'full',
      kvSource: cache.source[layer],
      keysAttended: Math.min(window, kv.startPos + kv.length),
      ffnWidth: ffnWidths[layer],
      ...(headDims ? { headDim: headDims[layer] } : {}),
      ffnActiveFraction: ffnActiveFraction[layer],
    };
  });
}
