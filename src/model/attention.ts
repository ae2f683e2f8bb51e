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
import type { TextConfig } from '../checkpoint/config.js';
import type { AttentionWeights } from '../checkpoint/weights.js';
import type { ForwardContext } from './forward_context.js';
import { rowOps } from './ops.js';

/** What attention reads from a config: Gemma 3n's TextConfig and Gemma 4's Gemma4TextConfig both fit. */
export type AttentionConfig = Pick<TextConfig, 'numAttentionHeads' | 'numKeyValueHeads' | 'rmsNormEps' | 'layerTypes' | 'slidingWindow'>;

/**
 * x [T, H] (already input_layernorm'ed) → out [T, H]. Projections, norms and RoPE run on all rows
 * at once (each row at its own sequence's position); the cache append and the attention itself run
 * per sequence (forward_context.ts).
 */
export function selfAttention(ctx: ForwardContext<AttentionConfig>, w: AttentionWeights, layer: number, x: Float32Array, out: Float32Array): void {
  const { kernels, config: c, work, T } = ctx;
  // The layer's head size from its q_norm: one size in Gemma 3n, 256 / 512 per layer type in Gemma 4.
  const D = w.q_norm.length, nH = c.numAttentionHeads, nKV = c.numKeyValueHeads;
  const qW = nH * D, kvW = nKV * D;
  const rope = ctx.ropes[layer]!;
  const { rmsNorm } = rowOps(kernels);
  // KV-shared layers (the last num_kv_shared_layers) own no cache entry: they read their source's.
  const ownsKV = ctx.sequences[0]!.cache.layers[layer] !== null;

  const q = work.take('attn.q', T * qW);
  const k = work.take('attn.k', T * kvW), v = work.take('attn.v', T * kvW);
  // q, k and v project the same x: one kernel call (KV-shared layers project q only)
  if (ownsKV) kernels.linearMany([w.q_proj, w.k_proj!, w.v_proj!], x, T, [q, k, v]);
  else kernels.linear(w.q_proj, x, T, q);
  rmsNorm(q, w.q_norm, T * nH, D, c.rmsNormEps);
  if (ownsKV) {
    rmsNorm(k, w.k_norm, T * nKV, D, c.rmsNormEps);
    rmsNorm(v, null, T * nKV, D, c.rmsNormEps);
  }

  // RoPE on every row at once, each at its own sequence's position.
  const positions = new Int32Array(T);
  for (const { cache, first, count } of ctx.sequences) for (let i = 0; i < count; i++) positions[first + i] = cache.position + i;
  const ops = rowOps(kernels);
  rope.applyRows(q, positions, nH, ops);
  if (ownsKV) rope.applyRows(k, positions, nKV, ops);

  const attnOutput = work.take('attn.ctx', T * qW);
  for (const { cache, first, count } of ctx.sequences) {
    const pos0 = cache.position;
    const own = cache.layers[layer];
    // This layer produces K/V: store the sequence's rotated rows in its cache.
    if (own) own.append(k.subarray(first * kvW, (first + count) * kvW), v.subarray(first * kvW, (first + count) * kvW), count);
    const kv = cache.layers[cache.source[layer]]!;
    kernels.attention({
      q: q.subarray(first * qW, (first + count) * qW), k: kv.k, v: kv.v, T: count, S: kv.length,
      numHeads: nH, numKvHeads: nKV, headDim: D,
      qPos0: pos0, kPos0: kv.startPos,
      window: c.layerTypes[layer] === 'sliding_attention' ? c.slidingWindow : 0,
      scale: 1.0,
      out: attnOutput.subarray(first * qW, (first + count) * qW),
    });
  }
  kernels.linear(w.o_proj, attnOutput, T, out);
}
