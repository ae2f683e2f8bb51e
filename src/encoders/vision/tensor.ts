/**
 * The vision tower works on one image at a time in channels-last layout: a feature map is
 * [H, W, C] row-major (PyTorch's NCHW with N = 1, transposed). Channels-last makes every 1×1
 * convolution a plain linear over H·W rows and every per-pixel RMSNorm a row norm, so both
 * go through the shared kernels. Pixel (y, x) is row y·W + x: the same row-major token order
 * timm uses when it flattens a map for attention and the soft tokens.
 */
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
 * first touch (here 38 MB took ~1 s to fault in under load and 1.5 ms to rewrite). Bounded; the
 * encoder empties it after each image.
 */
const pool = new Map<number, Float32Array[]>();
let pooledBytes = 0;
const POOL_MAX_BYTES = 768 << 20;

/** A map whose values are all about to be overwritten: a recycled buffer when one fits, else zeros. */
export function outputMap(h: number, w: number, c: number): FeatureMap {
  const free = pool.get(h * w * c);
  const data = free?.pop();
  if (!data) return featureMap(h, w, c);
  pooledBytes -= data.byteLength;
  return { h, w, c, data };
}

/** Hands a map's buffer back for reuse: the caller and everything it gave the map to must be done with it. */
export function recycle(x: FeatureMap): void {
  const d = x.data;
  if (d.byteOffset !== 0 || d.byteLength !== d.buffer.byteLength || pooledBytes + d.byteLength > POOL_MAX_BYTES) return;
  const free = pool.get(d.length) ?? [];
  if (free.includes(d)) throw new Error('recycle: map buffer recycled twice');
  free.push(d);
  pool.set(d.length, free);
  pooledBytes += d.byteLength;
}

/** Drops every recycled buffer (after an image). */
export function emptyPool(): void {
  pool.clear();
  pooledBytes = 0;
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
