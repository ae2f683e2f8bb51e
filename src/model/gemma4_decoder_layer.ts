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
 *
 * Trace names (with `trace --all`): the outputs of the reference layer's submodules, as a forward
 * hook on that module path sees them, so another runtime can be diffed module by module:
 *   layers.l.{input_layernorm, self_attn (after o_proj), post_attention_layernorm,
 *   pre_feedforward_layernorm, mlp, post_feedforward_layernorm} [1,T,H],
 *   layers.l.{per_layer_input, per_layer_input_gate (before the GELU)} [1,T,P],
 *   layers.l.{per_layer_projection, post_per_layer_input_norm} [1,T,H].
 * The two residual sums, which the reference keeps in its local `residual`, are named as the
 * input of the module they feed: layers.l.pre_feedforward_layernorm.input (after attention) and
 * layers.l.per_layer_input_gate.input (after the MLP). The layer's output is layer_outputs.l.
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
  trace?.(`${name}.input_layernorm`, h, [1, T, H]);
  const attn = work.take('g4.attn', TH);
  selfAttention(ctx, w.self_attn, layer, h, attn);
  trace?.(`${name}.self_attn`, attn, [1, T, H]);
  rmsNorm(attn, w.post_attention_layernorm, T, H, eps);
  trace?.(`${name}.post_attention_layernorm`, attn, [1, T, H]);
  for (let i = 0; i < TH; i++) x[i] += attn[i];
  trace?.(`${name}.pre_feedforward_layernorm.input`, x, [1, T, H]);

  const y = rmsNorm(x, w.pre_feedforward_layernorm, T, H, eps, work.take('g4.y', TH));
  trace?.(`${name}.pre_feedforward_layernorm`, y, [1, T, H]);
  const gate = work.take('g4.gate', T * I), up = work.take('g4.up', T * I);
  k.linearMany([w.mlp.gate_proj, w.mlp.up_proj], y, T, [gate, up]);
  k.geluMul(gate, up, T * I);
  const mlp = work.take('g4.mlp', TH);
  k.linear(w.mlp.down_proj, gate, T, mlp);
  trace?.(`${name}.mlp`, mlp, [1, T, H]);
  rmsNorm(mlp, w.post_feedforward_layernorm, T, H, eps);
  trace?.(`${name}.post_feedforward_layernorm`, mlp, [1, T, H]);
  for (let i = 0; i < TH; i++) x[i] += mlp[i];
  trace?.(`${name}.per_layer_input_gate.input`, x, [1, T, H]);

  trace?.(`${name}.per_layer_input`, perLayerInput, [1, T, P]);
  const g = work.take('g4.ple_gate', T * P);
  k.linear(w.per_layer_input_gate, x, T, g);
  trace?.(`${name}.per_layer_input_gate`, g, [1, T, P]);
  k.geluMul(g, perLayerInput, T * P);
  const ple = work.take('g4.ple', TH);
  k.linear(w.per_layer_projection, g, T, ple);
  trace?.(`${name}.per_layer_projection`, ple, [1, T, H]);
  rmsNorm(ple, w.post_per_layer_input_norm, T, H, eps);
  trace?.(`${name}.post_per_layer_input_norm`, ple, [1, T, H]);
  const s = Math.fround(w.layer_scalar);
  for (let i = 0; i < TH; i++) x[i] = Math.fround(x[i] + ple[i]) * s;
}
