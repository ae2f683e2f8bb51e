/**
 * The key/value cache: per non-shared layer, the keys and values of past positions
 * (already normed and rotated), so decoding one token needs only that token's projections.
 *
 * Sliding-window layers evict positions no future query can see: after position p, a query
 * at p+1 sees keys in (p+1-W, p+1], so only the last W-1 positions need to stay.
 * KV-shared layers (the last num_kv_shared_layers) own no cache: they read their source's.
 *
 * The buffers come from the kernel backend when it offers memory its attention kernel reads in
 * place (WasmKernels: WASM memory), so a decode step copies no past keys or values.
 */
import type { Kernels } from '../kernels/kernels.js';
import { kvSourceLayers, type TextConfig } from '../checkpoint/config.js';

/** Where cache buffers live: the kernels' own memory, or ordinary arrays. */
export type FloatAllocator = Pick<Kernels, 'allocF32' | 'freeF32'>;

export class LayerKV {
  k: Float32Array;
  v: Float32Array;
  /** Rows stored, and the absolute position of row 0. */
  length = 0;
  startPos = 0;

  constructor(readonly rowWidth: number, capacity = 16, private readonly memory: FloatAllocator = {}) {
    this.k = this.alloc(capacity * rowWidth);
    this.v = this.alloc(capacity * rowWidth);
  }

  private alloc(n: number): Float32Array {
    return this.memory.allocF32?.(n) ?? new Float32Array(n);
  }

  /** Gives the buffers back to the kernels' memory; the layer is empty afterwards. */
  release(): void {
    this.memory.freeF32?.(this.k);
    this.memory.freeF32?.(this.v);
    this.k = new Float32Array(0);
    this.v = new Float32Array(0);
    this.length = 0;
    this.startPos = 0;
  }

  get capacity(): number {
    return Math.max(1, this.k.length / this.rowWidth);
  }

  /** Appends T rows of keys and values (each [T, rowWidth]). */
  append(k: Float32Array, v: Float32Array, T: number): void {
    const need = this.length + T;
    if (need > this.capacity) {
      let cap = this.capacity;
      while (cap < need) cap *= 2;
      const nk = this.alloc(cap * this.rowWidth), nv = this.alloc(cap * this.rowWidth);
      nk.set(this.k.subarray(0, this.length * this.rowWidth));
      nv.set(this.v.subarray(0, this.length * this.rowWidth));
      this.memory.freeF32?.(this.k);
      this.memory.freeF32?.(this.v);
      this.k = nk;
      this.v = nv;
    }
    this.k.set(k.subarray(0, T * this.rowWidth), this.length * this.rowWidth);
    this.v.set(v.subarray(0, T * this.rowWidth), this.length * this.rowWidth);
    this.length = need;
  }

  /** Drops rows whose position is below `pos`. */
  evictBefore(pos: number): void {
    const drop = Math.min(this.length, pos - this.startPos);
    if (drop <= 0) return;
    const w = this.rowWidth;
    this.k.copyWithin(0, drop * w, this.length * w);
    this.v.copyWithin(0, drop * w, this.length * w);
    this.length -= drop;
    this.startPos += drop;
  }

  /** Drops rows at or after position `pos` (rolls the cache back). */
  truncateFrom(pos: number): void {
    this.length = Math.max(0, Math.min(this.length, pos - this.startPos));
  }

  get bytes(): number {
    return 2 * this.length * this.rowWidth * 4;
  }
}

/**
 * What the cache reads from a config. `layerHeadDims` gives each layer's head size where it
 * varies (Gemma 4: 256 on sliding, 512 on full layers); `kvSources` each layer's K/V source
 * (default: Gemma 3n's rule, kvSourceLayers).
 */
export type KVCacheConfig = Pick<TextConfig, 'numHiddenLayers' | 'numKvSharedLayers' | 'layerTypes' | 'numKeyValueHeads' | 'headDim' | 'slidingWindow'> & {
  layerHeadDims?: readonly number[];
  kvSources?: readonly number[];
};

export class KVCache {
  /** One entry per layer; null for KV-shared layers. */
  readonly layers: (LayerKV | null)[];
  /** For each layer, the index of the layer whose cache it reads. */
  readonly source: number[];
  /** Absolute position of the next token to process. */
  position = 0;

  /**
   * `rewindSlack`: extra past positions sliding layers keep beyond the window, so a chat can
   * rewind that far (to re-run a re-tokenized reply) without rebuilding the cache.
   * `memory`: where the buffers live (Gemma3nTextModel.newCache passes its kernels).
   */
  constructor(readonly config: KVCacheConfig, readonly rewindSlack = 0, memory: FloatAllocator = {}) {
    this.source = config.kvSources ? [...config.kvSources] : kvSourceLayers(config);
    const width = (i: number) => config.numKeyValueHeads * (config.layerHeadDims?.[i] ?? config.headDim);
    this.layers = this.source.map((src, i) => (src === i ? new LayerKV(width(i), 16, memory) : null));
  }

  /**
   * Frees the buffers now (they are also reclaimed when the cache is garbage collected);
   * the cache is empty afterwards and can be filled again from position 0.
   */
  release(): void {
    for (const kv of this.layers) kv?.release();
    this.position = 0;
  }

  /** Evicts what sliding layers can no longer use, given the next position. */
  evictSliding(): void {
    const keepFrom = this.position - (this.config.slidingWindow - 1) - this.rewindSlack;
    this.layers.forEach((kv, i) => {
      if (kv && this.config.layerTypes[i] === 'sliding_attention') kv.evictBefore(keepFrom);
    });
  }

  /** Bytes held by keys and values. */
  get bytes(): number {
    return this.layers.reduce((s, kv) => s + (kv?.bytes ?? 0), 0);
  }

  /**
   * Rewinds to `pos` (to re-run from a common prefix). Only possible where sliding layers
   * still hold every position they would need.
   */
  rewind(pos: number): boolean {
    if (pos > this.position) return false;
    for (let i = 0; i < this.layers.length; i++) {
      const kv = this.layers[i];
      if (!kv) continue;
      if (this.config.layerTypes[i] === 'sliding_attention' && kv.startPos > Math.max(0, pos - (this.config.slidingWindow - 1))) return false;
    }
    for (const kv of this.layers) kv?.truncateFrom(pos);
    this.position = pos;
    return true;
  }
}
