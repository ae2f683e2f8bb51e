/**
 * Named intermediate tensors, for golden-output testing and for learners (`gemma3n trace`).
 * The forward pass calls `trace(name, data, shape)` at each step when a tracer is given and
 * does nothing otherwise. Names follow the checkpoint's module names where one exists.
 */
export type Tracer = (name: string, data: Float32Array, shape: number[]) => void;

/** What one layer did in a forward step (the explain trace). */
export interface LayerExplain {
  index: number;
  type: 'sliding' | 'full';
  /** The layer whose K/V this layer attended over (itself unless KV-shared). */
  kvSource: number;
  /** Keys visible to the last query of the step. */
  keysAttended: number;
  ffnWidth: number;
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
