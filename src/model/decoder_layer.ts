/**
 * One Gemma 3n decoder layer [modeling_gemma3n.py, Gemma3nTextDecoderLayer.forward]; the local
 * names are the reference's, and each is a trace name (`layers.N.<name>`, trace.ts).
 *
 *   predictions              = altup.predict(hidden_states)                     [A, T, H]
 *   active_prediction        = predictions[altup_active_idx]                    [T, H]
 *   active_prediction_normed = input_layernorm(active_prediction)
 *   laurel_output            = laurel(active_prediction_normed)
 *   attn                     = post_attention_layernorm(self_attn(active_prediction_normed))
 *   attn_gated               = active_prediction + attn
 *   attn_laurel              = (attn_gated + laurel_output) / √2
 *   attn_norm                = pre_feedforward_layernorm(attn_laurel)
 *   attn_ffw                 = mlp(attn_norm)
 *   attn_ffw_norm            = post_feedforward_layernorm(attn_ffw)
 *   attn_ffw_laurel_gated    = attn_laurel + attn_ffw_norm
 *   corrected_predictions    = altup.correct(predictions, attn_ffw_laurel_gated) [A, T, H]
 *   first_prediction         = altup.scale_corrected_output(corrected_predictions[altup_active_idx])
 *   first_prediction         = per-layer input gate (per_layer_embedding.ts)    [T, H]
 *   corrected_predictions[1:] += first_prediction       (stream 0 does not get the PLE term)
 */
import type { LayerWeights } from '../checkpoint/weights.js';
import { altupCorrect, altupPredict, scaleCorrectedOutput } from './altup.js';
import { selfAttention } from './attention.js';
import type { ForwardContext } from './forward_context.js';
import { laurel } from './laurel.js';
import { mlp } from './mlp.js';
import { rowOps } from './ops.js';
import { gatePerLayerInput } from './per_layer_embedding.js';

/**
 * Runs layer `layer` on `hiddenStates` [A, T, H], replacing them with the corrected predictions
 * (in place). `perLayerInput` [T, P] is this layer's slice of per_layer_inputs.
 */
export function decoderLayer(ctx: ForwardContext, w: LayerWeights, layer: number, hiddenStates: Float32Array, perLayerInput: Float32Array): void {
  const { config: c, work, T, trace } = ctx;
  const H = c.hiddenSize, A = c.altupNumInputs, TH = T * H, eps = c.rmsNormEps;
  const active = c.altupActiveIdx * TH;
  const name = `layers.${layer}`;
  const { rmsNorm, sum3Scaled, addRepeated } = rowOps(ctx.kernels);

  // AltUp predict: the block runs on one stream only.
  const predictions = altupPredict(ctx, w.altup, hiddenStates);
  const activePrediction = predictions.subarray(active, active + TH);
  const activePredictionNormed = rmsNorm(activePrediction, w.input_layernorm, T, H, eps, work.take('layer.active_prediction_normed', TH));
  const laurelOutput = laurel(ctx, w.laurel, activePredictionNormed, work.take('layer.laurel_output', TH));
  trace?.(`${name}.predictions`, predictions, [A, 1, T, H]);
  trace?.(`${name}.active_prediction`, activePrediction, [1, T, H]);
  trace?.(`${name}.active_prediction_normed`, activePredictionNormed, [1, T, H]);
  trace?.(`${name}.laurel_output`, laurelOutput, [1, T, H]);

  // Attention, and the two residual branches averaged in norm: (a + attn + laurel) / √2,
  // summed in one pass (attn_gated is formed separately only for the trace).
  const attn = work.take('layer.attn', TH);
  selfAttention(ctx, w.self_attn, layer, activePredictionNormed, attn);
  rmsNorm(attn, w.post_attention_layernorm, T, H, eps);
  const attnLaurel = work.take('layer.attn_laurel', TH);
  sum3Scaled(activePrediction, attn, laurelOutput, Math.SQRT1_2, attnLaurel, TH);
  if (trace) {
    trace(`${name}.attn`, attn, [1, T, H]);
    const attnGated = work.take('trace.attn_gated', TH);
    for (let i = 0; i < TH; i++) attnGated[i] = activePrediction[i] + attn[i];
    trace(`${name}.attn_gated`, attnGated, [1, T, H]);
    trace(`${name}.attn_laurel`, attnLaurel, [1, T, H]);
  }

  // MLP, with its own residual.
  const attnNorm = rmsNorm(attnLaurel, w.pre_feedforward_layernorm, T, H, eps, work.take('layer.attn_norm', TH));
  const attnFfw = work.take('layer.attn_ffw', TH);
  ctx.ffnActiveFraction[layer] = mlp(ctx, w.mlp, layer, attnNorm, attnFfw);
  trace?.(`${name}.attn_norm`, attnNorm, [1, T, H]);
  trace?.(`${name}.attn_ffw`, attnFfw, [1, T, H]);
  const attnFfwNorm = rmsNorm(attnFfw, w.post_feedforward_layernorm, T, H, eps); // in place
  trace?.(`${name}.attn_ffw_norm`, attnFfwNorm, [1, T, H]);
  const attnFfwLaurelGated = attnFfwNorm; // in place
  addRepeated(attnFfwLaurelGated, attnLaurel, TH);
  trace?.(`${name}.attn_ffw_laurel_gated`, attnFfwLaurelGated, [1, T, H]);

  // AltUp correct, into hiddenStates (the old streams are no longer read).
  const correctedPredictions = altupCorrect(ctx, w.altup, predictions, attnFfwLaurelGated, hiddenStates);
  trace?.(`${name}.corrected_predictions`, correctedPredictions, [A, 1, T, H]);

  // The per-layer input, gated by the corrected active stream, goes to streams 1..A-1.
  let firstPrediction = correctedPredictions.subarray(active, active + TH);
  if (c.altupCorrectScale) firstPrediction = scaleCorrectedOutput(ctx, w.altup, firstPrediction, work.take('layer.first_prediction', TH));
  firstPrediction = gatePerLayerInput(ctx, w, firstPrediction, perLayerInput, work.take('layer.per_layer_output', TH));
  trace?.(`${name}.per_layer_input`, perLayerInput, [1, T, c.hiddenSizePerLayerInput]);
  trace?.(`${name}.first_prediction`, firstPrediction, [1, T, H]);
  addRepeated(correctedPredictions.subarray(TH, A * TH), firstPrediction, TH, A - 1);
}
