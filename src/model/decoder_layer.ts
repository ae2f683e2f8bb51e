/**
 * One Gemma 3n decoder layer [modeling_gemma3n.py, Gemma3nTextDecoderLayer.forward].
 *
 *   pred      = altup.predict(streams)                 [A, T, H]
 *   a         = pred[active];  n = input_layernorm(a)
 *   attn_laurel = (a + post_attention_layernorm(attn(n)) + laurel(n)) / √2
 *   out       = attn_laurel + post_feedforward_layernorm(mlp(pre_feedforward_layernorm(attn_laurel)))
 *   corrected = altup.correct(pred, out)
 *   g         = corrected[active] · correct_output_scale
 *   g         = post_per_layer_input_norm(per_layer_projection(gelu(per_layer_input_gate(g)) · ple[layer]))
 *   corrected[1:] += g                                  (stream 0 does not get the PLE term)
 */
import type { Kernels } from '../kernels/kernels.js';
import { altupCorrect, altupPredict } from './altup.js';
import { selfAttention } from './attention.js';
import type { TextConfig } from '../checkpoint/config.js';
import type { KVCache } from './kv_cache.js';
import { laurel } from './laurel.js';
import { mlp } from './mlp.js';
import { rmsNorm } from './ops.js';
import type { RotaryEmbedding } from './rope.js';
import type { Scratch } from './scratch.js';
import type { StepExplain, Tracer } from './trace.js';
import type { LayerWeights } from '../checkpoint/weights.js';

/** Runs one layer on `streams` [A, T, H], updating them in place (and returning them). */
export function decoderLayer(
  kernels: Kernels,
  c: TextConfig,
  w: LayerWeights,
  layer: number,
  streams: Float32Array, // [A, T, H]
  perLayerInput: Float32Array, // [T, P], this layer's slice
  T: number,
  cache: KVCache,
  rope: RotaryEmbedding,
  work: Scratch,
  trace?: Tracer,
  explain?: StepExplain,
): Float32Array {
  const H = c.hiddenSize, P = c.hiddenSizePerLayerInput, A = c.altupNumInputs, TH = T * H, eps = c.rmsNormEps;
  const I = c.intermediateSize[layer];
  const name = `layers.${layer}`;

  const pred = altupPredict(w.altup, streams, T, c, work);
  const active = pred.subarray(c.altupActiveIdx * TH, (c.altupActiveIdx + 1) * TH);
  const normed = rmsNorm(active, w.input_layernorm, T, H, eps, work.take('layer.normed', TH));

  const laurelOut = work.take('layer.laurel', TH);
  laurel(kernels, w.laurel, normed, T, H, c.laurelRank, eps, laurelOut, work);

  const attn = work.take('layer.attn', TH);
  selfAttention(kernels, c, w.self_attn, layer, normed, T, cache, rope, attn, work);
  rmsNorm(attn, w.post_attention_layernorm, T, H, eps);
  trace?.(`${name}.self_attn`, attn, [1, T, H]);

  // (a + attn + laurel) / √2: the two residual branches are averaged in norm.
  const attnLaurel = work.take('layer.attnLaurel', TH);
  for (let i = 0; i < TH; i++) attnLaurel[i] = (active[i] + attn[i] + laurelOut[i]) * Math.SQRT1_2;

  const ffIn = rmsNorm(attnLaurel, w.pre_feedforward_layernorm, T, H, eps, work.take('layer.ffIn', TH));
  const ffOut = work.take('layer.ffOut', TH);
  const sparsity = c.activationSparsityPattern[layer];
  let activeFraction = 1;
  mlp(kernels, w.mlp, sparsity, ffIn, T, I, ffOut, work, explain ? (f) => { activeFraction = f; } : undefined);
  rmsNorm(ffOut, w.post_feedforward_layernorm, T, H, eps);
  for (let i = 0; i < TH; i++) ffOut[i] += attnLaurel[i];
  trace?.(`${name}.block_output`, ffOut, [1, T, H]);

  // The old streams are no longer read: the corrected ones replace them.
  const corrected = altupCorrect(w.altup, pred, ffOut, T, c, work, streams);
  if (explain) {
    const kv = cache.layers[cache.source[layer]]!;
    const window = c.layerTypes[layer] === 'sliding_attention' ? c.slidingWindow : Infinity;
    explain.layers ??= [];
    explain.layers.push({
      index: layer,
      type: c.layerTypes[layer] === 'sliding_attention' ? 'sliding' : 'full',
      kvSource: cache.source[layer],
      keysAttended: Math.min(window, kv.startPos + kv.length),
      ffnWidth: I,
      ffnActiveFraction: activeFraction,
    });
  }

  // Per-layer embedding gate: the corrected active stream, scaled, gates this layer's PLE slice.
  const g = work.take('layer.pleIn', TH);
  const activeCorrected = corrected.subarray(c.altupActiveIdx * TH, (c.altupActiveIdx + 1) * TH);
  if (c.altupCorrectScale) {
    const scale = w.altup.correct_output_scale;
    for (let t = 0; t < T; t++) for (let h = 0; h < H; h++) g[t * H + h] = activeCorrected[t * H + h] * scale[h];
  } else g.set(activeCorrected);
  const gate = work.take('layer.pleGate', T * P);
  kernels.linear(w.per_layer_input_gate, g, T, gate);
  kernels.geluMul(gate, perLayerInput, T * P);
  const ple = work.take('layer.ple', TH);
  kernels.linear(w.per_layer_projection, gate, T, ple);
  rmsNorm(ple, w.post_per_layer_input_norm, T, H, eps);
  for (let s = 1; s < A; s++) {
    const o = s * TH;
    for (let i = 0; i < TH; i++) corrected[o + i] += ple[i];
  }
  return corrected;
}
