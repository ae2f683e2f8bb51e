/**
 * One Gemma 4 decoder layer [modeling_gemma4.py, Gemma4TextDecoderLayer]. One residual stream
 * (Gemma 3n's AltUp, LAuReL and activation sparsity are gone); attention is Gemma 3n's
 * (attention.ts) with this layer's head size; the per-layer input is injected after the MLP,
 * and `layer_scalar` scales the whole state at the end:
 *
 *   x = x + post_attention_layernorm(attn(input_layernorm(x)))
 *   x = x + post_feedforward_layernorm(down(gelu_tanh(gate(y)) ⊙ up(y))),  y = pre_feedforward_layernorm(x)
 *   x = x + post_per_layer_input_norm(per_layer_projection(gelu_tanh(per_layer_input_gate(x)) ⊙ pli_l))
 *   x = x · layer_scalar
 */
import type { Gemma4LayerWeights } from '../checkpoint/gemma4_weights.js';
import type { Gemma4TextConfig } from '../checkpoint/gemma4_config.js';
import { selfAttention } from './attention.js';
import type { ForwardContext } from './forward_context.js';
import { rmsNorm } from './ops.js';

export function gemma4DecoderLayer(
  ctx: ForwardContext<Gemma4TextConfig>, w: Gemma4LayerWeights, layer: number,
  x: Float32Array, // [T, H], updated in place
  perLayerInput: Float32Array, // [T, P]
): void {
  const { kernels: k, config: c, work, T, trace } = ctx;
  const H = c.hiddenSize, P = c.hiddenSizePerLayerInput, I = c.layerIntermediateSizes[layer], eps = c.rmsNormEps, TH = T * H;
  const name = `layers.${layer}`;

  const h = rmsNorm(x, w.input_layernorm, T, H, eps, work.take('g4.h', TH));
  const attn = work.take('g4.attn', TH);
  selfAttention(ctx, w.self_attn, layer, h, attn);
  rmsNorm(attn, w.post_attention_layernorm, T, H, eps);
  for (let i = 0; i < TH; i++) x[i] += attn[i];
  trace?.(`${name}.attn_residual`, x, [T, H]);

  const y = rmsNorm(x, w.pre_feedforward_layernorm, T, H, eps, work.take('g4.y', TH));
  const gate = work.take('g4.gate', T * I), up = work.take('g4.up', T * I);
  k.linearMany([w.mlp.gate_proj, w.mlp.up_proj], y, T, [gate, up]);
  k.geluMul(gate, up, T * I);
  const mlp = work.take('g4.mlp', TH);
  k.linear(w.mlp.down_proj, gate, T, mlp);
  rmsNorm(mlp, w.post_feedforward_layernorm, T, H, eps);
  for (let i = 0; i < TH; i++) x[i] += mlp[i];
  trace?.(`${name}.mlp_residual`, x, [T, H]);

  const g = work.take('g4.ple_gate', T * P);
  k.linear(w.per_layer_input_gate, x, T, g);
  k.geluMul(g, perLayerInput, T * P);
  const ple = work.take('g4.ple', TH);
  k.linear(w.per_layer_projection, g, T, ple);
  rmsNorm(ple, w.post_per_layer_input_norm, T, H, eps);
  const s = Math.fround(w.layer_scalar);
  for (let i = 0; i < TH; i++) x[i] = Math.fround(x[i] + ple[i]) * s;
}
