/**
 * embed_vision: the vision tower's Gemma3nMultimodalEmbedder (`model.embed_vision.*`), the
 * module shared with audio (src/encoders/multimodal_embedder.ts), with the vision sizes of the
 * released Gemma3nVisionConfig: hidden 2048, vocab_offset 262144, vocab_size 128, eps 1e-6.
 *
 * Before it, `Gemma3nModel.get_image_features` scales the soft tokens by √2048
 * [modeling_gemma3n.py]; the soft_embedding_norm RMSNorm then nearly cancels that scale (only
 * eps sees it), but we apply it to match the reference to the last bit of eps.
 */
import type { Kernels } from '../../kernels/kernels.js';
import { MultimodalEmbedder, type EmbedderShape } from '../multimodal_embedder.js';
import { loadTowerLinear } from '../tower_weights.js';
import type { TensorReader } from './tensor.js';

export const VISION_EMBEDDER_DEFAULTS = { hiddenSize: 2048, vocabOffset: 262144, vocabSize: 128, eps: 1e-6 } as const;

export async function loadVisionEmbedder(
  r: TensorReader, kernels: Kernels, textHiddenSize: number,
  prefix = 'model.embed_vision', shape: Partial<EmbedderShape> = {},
): Promise<MultimodalEmbedder> {
  const s: EmbedderShape = { ...VISION_EMBEDDER_DEFAULTS, textHiddenSize, ...shape };
  const D = s.hiddenSize;
  const proj = await loadTowerLinear(r, `${prefix}.embedding_projection.weight`, [s.textHiddenSize, D], kernels);
  return new MultimodalEmbedder(
    s,
    kernels,
    await r.readF32(`${prefix}.embedding.weight`, [s.vocabSize, D]),
    await r.readF32(`${prefix}.hard_embedding_norm.weight`, [D]),
    await r.readF32(`${prefix}.soft_embedding_norm.weight`, [D]),
    proj,
  );
}

/**
 * Soft tokens [N, 2048] (the tower output, before scaling) → [N, text hidden]:
 * `embed_vision(inputs_embeds = soft · √2048)`.
 */
export function embedSoftTokens(embedder: MultimodalEmbedder, softTokens: Float32Array, N: number): Float32Array {
  const D = embedder.hiddenSize;
  if (softTokens.length !== N * D) throw new Error(`embed_vision: ${softTokens.length} values for [${N}, ${D}]`);
  const s = Math.fround(Math.sqrt(D)); // vision_config.hidden_size ** 0.5, multiplied in the tower's float32
  const scaled = new Float32Array(softTokens.length);
  for (let i = 0; i < scaled.length; i++) scaled[i] = softTokens[i] * s;
  return embedder.embedSoft(scaled, N);
}
