/**
 * Deterministic synthetic weights for the vision tower: the formula of the vision golden README
 * ("Deterministic weight formula"), which the golden full-model outputs were computed with.
 * Used by tests (the full encoder golden needs no weight file) and the benchmark (real shapes,
 * no checkpoint). For tensor name N, flat index i:
 *   u = fmix32(fnv1a32(N) XOR (i · 0x9E3779B9 mod 2^32)),  r = u · 2^-32 ∈ [0, 1)
 *   conv weight [O, I/g, kh, kw]:  (2r − 1) · sqrt(3 / (I/g · kh · kw))
 *   *layer_scale.gamma:            0.2 + (r − 0.5) · 0.2
 *   *.bias:                        (r − 0.5) · 0.2
 *   other 1-D (norm weights):      1 + (r − 0.5) · 0.4
 * each computed in float64 and rounded once to float32.
 */
import type { TensorReader } from './tensor.js';

function fnv1a32(s: string): number {
  let h = 0x811c9dc5;
  for (const b of new TextEncoder().encode(s)) h = Math.imul(h ^ b, 0x01000193) >>> 0;
  return h;
}

function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b) >>> 0;
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35) >>> 0;
  h ^= h >>> 16;
  return h >>> 0;
}

/** The formula tensor `name` of `shape` (names without the checkpoint prefix, e.g. "blocks.2.9.attn.key.proj.weight"). */
export function formulaTensor(name: string, shape: readonly number[]): Float32Array {
  const n = shape.reduce((a, b) => a * b, 1);
  const H = fnv1a32(name);
  const out = new Float32Array(n);
  const r = (i: number): number => fmix32((H ^ Math.imul(i, 0x9e3779b9)) >>> 0) * 2 ** -32;
  if (shape.length === 4) {
    const bound = Math.sqrt(3 / (shape[1] * shape[2] * shape[3]));
    for (let i = 0; i < n; i++) out[i] = (2 * r(i) - 1) * bound;
  } else if (name.endsWith('layer_scale.gamma')) {
    for (let i = 0; i < n; i++) out[i] = 0.2 + (r(i) - 0.5) * 0.2;
  } else if (name.endsWith('.bias')) {
    for (let i = 0; i < n; i++) out[i] = (r(i) - 0.5) * 0.2;
  } else {
    for (let i = 0; i < n; i++) out[i] = 1.0 + (r(i) - 0.5) * 0.4;
  }
  return out;
}

/** A TensorReader that makes every requested tensor from the formula (the shape must be given). */
export function formulaWeights(prefix = ''): TensorReader {
  return {
    async readF32(name, shape) {
      if (!shape) throw new Error(`formulaWeights: '${name}' requested without a shape`);
      return formulaTensor(name.startsWith(prefix) ? name.slice(prefix.length) : name, shape);
    },
    has: (name) => !/\.q[48]$/.test(name), // any f32 tensor, never a packed one
  };
}
