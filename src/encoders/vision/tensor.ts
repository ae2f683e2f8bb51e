/**
 * The vision tower works on one image at a time in channels-last layout: a feature map is
 * [H, W, C] row-major (PyTorch's NCHW with N = 1, transposed). Channels-last makes every 1×1
 * convolution a plain linear over H·W rows and every per-pixel RMSNorm a row norm, so both
 * go through the shared kernels. Pixel (y, x) is row y·W + x: the same row-major token order
 * timm uses when it flattens a map for attention and the soft tokens.
 */
import type { Kernels } from '../../kernels/kernels.js';
import type { TowerWeights } from '../tower_weights.js';

export interface FeatureMap {
  readonly h: number;
  readonly w: number;
  readonly c: number;
  /** h · w · c values, [H, W, C]. */
  readonly data: Float32Array;
}

export function featureMap(h: number, w: number, c: number, data = new Float32Array(h * w * c)): FeatureMap {
  if (data.length !== h * w * c) throw new Error(`featureMap: ${data.length} values for [${h}, ${w}, ${c}]`);
  return { h, w, c, data };
}

/**
 * Buffers of maps the tower is done with, by length, for the next map of that size: a 768² image
 * allocates gigabytes of short-lived maps, and a fresh buffer costs a page fault per 4 KiB on
 * first touch (here 38 MB took ~1 s to fault in under load and 1.5 ms to rewrite). With kernels
 * that can allocate in their own memory (WasmKernels.allocF32) the maps live there, so the
 * kernels read and write them in place instead of copying every input and output. Bounded; the
 * encoder empties it after each image.
 */
interface Pool {
  readonly kernels: Kernels | null;
  readonly free: Map<number, Float32Array[]>;
  bytes: number;
}
const pools = new Map<Kernels | null, Pool>();
/** The pool each pooled buffer belongs to. */
const owners = new WeakMap<Float32Array, Pool>();
const POOL_MAX_BYTES = 768 << 20;

/**
 * A map whose values are all about to be overwritten (contents undefined): a recycled buffer when
 * one fits, else a new one, in `kernels`' memory when it has allocF32.
 */
export function outputMap(h: number, w: number, c: number, kernels?: Kernels): FeatureMap {
  const key = kernels?.allocF32 ? kernels : null;
  let pool = pools.get(key);
  if (!pool) pools.set(key, (pool = { kernels: key, free: new Map(), bytes: 0 }));
  const n = h * w * c;
  let data = pool.free.get(n)?.pop();
  if (data) pool.bytes -= data.byteLength;
  else {
    data = key ? key.allocF32!(n) : new Float32Array(n);
    owners.set(data, pool);
  }
  return { h, w, c, data };
}

/** Hands a map from outputMap back for reuse: the caller and everything it gave the map to must be done with it. */
export function recycle(x: FeatureMap): void {
  const d = x.data, pool = owners.get(d);
  if (!pool) return; // not from outputMap
  const free = pool.free.get(d.length) ?? [];
  if (free.includes(d)) throw new Error('recycle: map buffer recycled twice');
  if (pool.bytes + d.byteLength > POOL_MAX_BYTES) {
    owners.delete(d);
    pool.kernels?.freeF32?.(d);
    return;
  }
  free.push(d);
  pool.free.set(d.length, free);
  pool.bytes += d.byteLength;
}

/** Frees every recycled buffer (after an image). */
export function emptyPool(): void {
  for (const pool of pools.values()) {
    for (const list of pool.free.values()) for (const d of list) { owners.delete(d); pool.kernels?.freeF32?.(d); }
  }
  pools.clear();
}

/** dst[at ..] = src, through byte views (V8 copies a Float32Array out of shared memory element by element, far slower). */
export function copyFloats(src: Float32Array, dst: Float32Array, at = 0): void {
  new Uint8Array(dst.buffer, dst.byteOffset + at * 4, src.byteLength).set(new Uint8Array(src.buffer, src.byteOffset, src.byteLength));
}

/** [C, H, W] (PyTorch NCHW, batch 1) → channels-last map. */
export function fromCHW(chw: Float32Array, c: number, h: number, w: number): FeatureMap {
  if (chw.length !== c * h * w) throw new Error(`fromCHW: ${chw.length} values for [${c}, ${h}, ${w}]`);
  const out = new Float32Array(chw.length);
  const hw = h * w;
  for (let ch = 0; ch < c; ch++) {
    const src = ch * hw;
    for (let p = 0; p < hw; p++) out[p * c + ch] = chw[src + p];
  }
  return { h, w, c, data: out };
}

/** Channels-last map → [C, H, W] (to compare with, or hand back as, PyTorch NCHW). */
export function toCHW(x: FeatureMap): Float32Array {
  const { h, w, c, data } = x;
  const hw = h * w;
  const out = new Float32Array(data.length);
  for (let p = 0; p < hw; p++) {
    const src = p * c;
    for (let ch = 0; ch < c; ch++) out[ch * hw + p] = data[src + ch];
  }
  return out;
}

/**
 * Something that yields float32 tensors by name, checking the shape (a Checkpoint, a
 * safetensors file), and optionally the packed int4 tensors of a quantized checkpoint.
 */
export type TensorReader = TowerWeights;

/** A reader that prepends `prefix` to every name (e.g. "model.vision_tower.timm_model."). */
export function prefixed(reader: TensorReader, prefix: string): TensorReader {
  if (!prefix) return reader;
  return {
    readF32: (name, shape) => reader.readF32(prefix + name, shape),
    has: reader.has ? (name) => reader.has!(prefix + name) : undefined,
    readBytes: reader.readBytes ? (name) => reader.readBytes!(prefix + name) : undefined,
    file: reader.file,
    linearFormat: reader.linearFormat,
    minQuantized: reader.minQuantized,
    families: reader.families,
  };
}
