/**
 * Gemma 3n self-attention [modeling_gemma3n.py, Gemma3nTextAttention].
 *
 *   q = RoPE(q_norm(q_proj(x)))                       per head, RMSNorm over head_dim
 *   k = RoPE(k_norm(k_proj(x))), v = v_norm(v_proj(x)) v_norm has no weight
 *   out = o_proj(softmax(q·kᵀ · 1.0 + mask) · v)     scaling 1.0: the q/k norms replace 1/√d
 *
 * GQA: query head h reads kv head ⌊h / (heads/kv_heads)⌋. Sliding layers see the last
 * `sliding_window` positions, full layers everything before. KV-shared layers compute only q
 * and attend over the cache of an earlier layer of the same type.
 */
import type { Kernels } from '../kernels/kernels.js';
import type { TextConfig } from '../checkpoint/config.js';
import type { KVCache } from './kv_cache.js';
import { rmsNorm } from './ops.js';
import type { RotaryEmbedding } from './rope.js';
import type { Scratch } from './scratch.js';
import type { AttentionWeights } from '../checkpoint/weights.js';

/** What attention reads from a config: Gemma 3n's TextConfig and Gemma 4's Gemma4TextConfig both fit. */
export type AttentionConfig = Pick<TextConfig, 'numAttentionHeads' | 'numKeyValueHeads' | 'rmsNormEps' | 'layerTypes' | 'slidingWindow'>;

export function selfAttention(
  kernels: Kernels,
  c: AttentionConfig,
  w: AttentionWeights,
  layer: number,
  x: Float32Array, // [T, H], already input_layernorm'ed
  T: number,
  cache: KVCache,
  rope: RotaryEmbedding,
  out: Float32Array, // [T, H]
  work: Scratch,
): void {
  // The layer's head size from its q_norm: one size in Gemma 3n, 256 / 512 per layer type in Gemma 4.
  const D = w.q_norm.length, nH = c.numAttentionHeads, nKV = c.numKeyValueHeads;
  const pos0 = cache.position;

  const own = cache.layers[layer];
  const q = work.take('attn.q', T * nH * D);
  const k = work.take('attn.k', T * nKV * D), v = work.take('attn.v', T * nKV * D);
  // q, k and v project the same x: one kernel call (KV-shared layers project q only)
  if (own) kernels.linearMany([w.q_proj, w.k_proj!, w.v_proj!], x, T, [q, k, v]);
  else kernels.linear(w.q_proj, x, T, q);
  rmsNorm(q, w.q_norm, T * nH, D, c.rmsNormEps);
  rope.apply(q, T, nH, pos0);

  if (own) {
    // This layer produces K/V: norm, rotate, and store them in its cache.
    rmsNorm(k, w.k_norm, T * nKV, D, c.rmsNormEps);
    rope.apply(k, T, nKV, pos0);
    rmsNorm(v, null, T * nKV, D, c.rmsNormEps);
    own.append(k, v, T);
  }
  const kv = cache.layers[cache.source[layer]]!;

  const ctx = work.take('attn.ctx', T * nH * D);
  kernels.attention({
    q, k: kv.k, v: kv.v, T, S: kv.length,
    numHeads: nH, numKvHeads: nKV, headDim: D,
    qPos0: pos0, kPos0: kv.startPos,
    window: c.layerTypes[layer] === 'sliding_attention' ? c.slidingWindow : 0,
    scale: 1.0,
    out: ctx,
  });
  kernels.linear(w.o_proj, ctx, T, out);
}
