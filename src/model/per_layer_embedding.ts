/**
 * Per-layer embeddings (PLE), Gemma 3n's second embedding path, both halves in one file.
 *
 * Into the model [Gemma3nTextModel.get_per_layer_inputs, project_per_layer_inputs]: besides the
 * usual token embedding, every token looks up a row of embed_tokens_per_layer ([V, L·P]), one
 * P-wide slice per layer, mixed with a projection of the main embedding e:
 *   per_layer_inputs = (RMSNorm_P(per_layer_model_projection(e) · H^-½) + table[id] · √P) · 2^-½
 *                                                                       [T, L, P]
 * Into each layer [Gemma3nTextDecoderLayer.forward, after altup.correct]: the corrected active
 * stream gates the layer's slice, and the result goes to streams 1..A-1:
 *   first_prediction = post_per_layer_input_norm(per_layer_projection(
 *                        gelu(per_layer_input_gate(first_prediction)) · per_layer_input))
 *
 * The table is large (~2 B parameters in E2B) but each token touches one row, which is why it
 * can stay on disk (src/checkpoint/streamed_table.ts).
 */
import type { TextConfig } from '../checkpoint/config.js';
import type { LayerWeights, TextWeights } from '../checkpoint/weights.js';
import type { Kernels } from '../kernels/kernels.js';
import type { ForwardContext } from './forward_context.js';
import { rowOps } from './ops.js';

/** Per-layer table ids: ids outside the table (image/audio ids) use row 0, as Gemma3nModel does. */
export function perLayerIds(ids: ArrayLike<number>, c: Pick<TextConfig, 'vocabSizePerLayerInput'>): Int32Array {
  const out = new Int32Array(ids.length);
  for (let i = 0; i < ids.length; i++) out[i] = ids[i] >= 0 && ids[i] < c.vocabSizePerLayerInput ? ids[i] : 0;
  return out;
}

/** table[id] · √P for each token, [T, L, P] [get_per_layer_inputs; Gemma3nTextScaledWordEmbedding]. */
export async function getPerLayerInputs(w: Pick<TextWeights, 'embed_tokens_per_layer'>, c: Pick<TextConfig, 'numHiddenLayers' | 'hiddenSizePerLayerInput' | 'vocabSizePerLayerInput'>, ids: ArrayLike<number>): Promise<Float32Array> {
  const P = c.hiddenSizePerLayerInput;
  const table = new Float32Array(ids.length * c.numHiddenLayers * P);
  await w.embed_tokens_per_layer.lookup(perLayerIds(ids, c), table);
  const embedScale = Math.fround(Math.sqrt(P)); // embed_scale = √P
  for (let i = 0; i < table.length; i++) table[i] *= embedScale;
  return table;
}

/**
 * (RMSNorm_P(per_layer_model_projection(e) · H^-½) + perLayerInputs) · 2^-½, [T, L, P]
 * [project_per_layer_inputs]. `inputsEmbeds` [T, H] is the scaled (and merged) embedding.
 */
export function projectPerLayerInputs(
  kernels: Kernels,
  w: Pick<TextWeights, 'per_layer_model_projection' | 'per_layer_projection_norm'>,
  c: Pick<TextConfig, 'numHiddenLayers' | 'hiddenSizePerLayerInput' | 'hiddenSize' | 'rmsNormEps'>,
  inputsEmbeds: Float32Array, perLayerInputs: Float32Array,
  T: number,
): Float32Array {
  const L = c.numHiddenLayers, P = c.hiddenSizePerLayerInput, H = c.hiddenSize;
  const proj = new Float32Array(T * L * P);
  kernels.linear(w.per_layer_model_projection, inputsEmbeds, T, proj);
  const projScale = Math.fround(1 / Math.sqrt(H)); // per_layer_projection_scale = H**-0.5
  for (let i = 0; i < proj.length; i++) proj[i] = Math.fround(proj[i] * projScale);
  rowOps(kernels).rmsNorm(proj, w.per_layer_projection_norm, T * L, P, c.rmsNormEps);
  const inputScale = Math.fround(Math.SQRT1_2); // per_layer_input_scale = rsqrt(2)
  for (let i = 0; i < proj.length; i++) proj[i] = Math.fround(proj[i] + perLayerInputs[i]) * inputScale;
  return proj;
}

/**
 * The layer half: x = the scaled corrected active stream [T, H], perLayerInput = this layer's
 * slice [T, P] → out [T, H] (returned), the `first_prediction` added to streams 1..A-1.
 */
export function gatePerLayerInput(ctx: ForwardContext, w: LayerWeights, x: Float32Array, perLayerInput: Float32Array, out: Float32Array): Float32Array {
  const { kernels, config: c, T } = ctx;
  const P = c.hiddenSizePerLayerInput;
  const gate = ctx.work.take('ple.gate', T * P);
  kernels.linear(w.per_layer_input_gate, x, T, gate);
  kernels.geluMul(gate, perLayerInput, T * P); // act_fn(gate) · per_layer_input
  kernels.linear(w.per_layer_projection, gate, T, out);
  return rowOps(kernels).rmsNorm(out, w.post_per_layer_input_norm, T, c.hiddenSize, c.rmsNormEps);
}
