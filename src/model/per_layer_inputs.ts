/**
 * Per-layer embeddings (PLE), Gemma 3n's second embedding path [Gemma3nTextModel:
 * get_per_layer_inputs, project_per_layer_inputs].
 *
 * Besides the usual token embedding, every token looks up a row of embed_tokens_per_layer
 * ([V, L·P]), one P-wide slice per layer. It is mixed with a projection of the main embedding:
 *   proj = RMSNorm_P(per_layer_model_projection(e) · H^-½)      reshaped [T, L, P]
 *   per_layer_inputs = (proj + table[id] · √P) · 2^-½
 * Layer k then gates its output with slice k (see decoder_layer.ts). The table is large
 * (~2 B parameters in E2B) but each token touches one row, which is why it can stay on disk.
 */
import type { Kernels } from '../kernels/kernels.js';
import type { TextConfig } from '../checkpoint/config.js';
import { rmsNorm } from './ops.js';
import type { TextWeights } from '../checkpoint/weights.js';

/** Per-layer table ids: ids outside the table (image/audio ids) use row 0, as Gemma3nModel does. */
export function perLayerIds(ids: ArrayLike<number>, c: Pick<TextConfig, 'vocabSizePerLayerInput'>): Int32Array {
  const out = new Int32Array(ids.length);
  for (let i = 0; i < ids.length; i++) out[i] = ids[i] >= 0 && ids[i] < c.vocabSizePerLayerInput ? ids[i] : 0;
  return out;
}

export async function perLayerInputs(
  kernels: Kernels,
  w: Pick<TextWeights, 'per_layer_model_projection' | 'per_layer_projection_norm' | 'embed_tokens_per_layer'>,
  c: Pick<TextConfig, 'numHiddenLayers' | 'hiddenSizePerLayerInput' | 'hiddenSize' | 'rmsNormEps' | 'vocabSizePerLayerInput'>,
  ids: ArrayLike<number>,
  inputsEmbeds: Float32Array, // [T, H], scaled
  T: number,
): Promise<Float32Array> {
  const L = c.numHiddenLayers, P = c.hiddenSizePerLayerInput, H = c.hiddenSize;
  const LP = L * P;
  const proj = new Float32Array(T * LP);
  kernels.linear(w.per_layer_model_projection, inputsEmbeds, T, proj);
  const projScale = Math.fround(1 / Math.sqrt(H)); // per_layer_projection_scale = H**-0.5
  for (let i = 0; i < proj.length; i++) proj[i] = Math.fround(proj[i] * projScale);
  rmsNorm(proj, w.per_layer_projection_norm, T * L, P, c.rmsNormEps);

  const table = new Float32Array(T * LP);
  await w.embed_tokens_per_layer.lookup(perLayerIds(ids, c), table);
  const embedScale = Math.fround(Math.sqrt(P)); // Gemma3nTextScaledWordEmbedding, embed_scale = √P
  const inputScale = Math.fround(Math.SQRT1_2); // per_layer_input_scale = rsqrt(2)
  for (let i = 0; i < proj.length; i++) proj[i] = Math.fround(proj[i] + Math.fround(table[i] * embedScale)) * inputScale;
  return proj;
}
