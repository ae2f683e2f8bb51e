/**
 * Merging image and audio soft tokens into the prompt [Gemma3nModel.forward, steps 5-6 of
 * test/golden/multimodal/README.md]. The tower outputs (already mapped by embed_vision /
 * embed_audio into the text space) replace, in sequence order, the embeddings at positions
 * holding the image (or audio) soft-token id; everything else keeps its text or hard-token
 * embedding. The per-layer inputs are then computed from these merged embeddings.
 */
import type { Gemma3nTextModel } from './text_model.js';

export interface SoftTokenRun {
  /** The placeholder id the soft tokens replace (image_token_id / audio_token_id). */
  tokenId: number;
  /** [N, H] rows, scattered into the N positions holding `tokenId`, in order. */
  embeddings: Float32Array;
  /** For error messages: "image", "audio". */
  what: string;
}

export async function mergeSoftTokens(model: Pick<Gemma3nTextModel, 'embed'> & { config: { hiddenSize: number } }, ids: ArrayLike<number>, runs: readonly SoftTokenRun[]): Promise<Float32Array> {
  const H = model.config.hiddenSize;
  const e = await model.embed(ids);
  for (const run of runs) {
    const n = run.embeddings.length / H;
    let k = 0;
    for (let i = 0; i < ids.length; i++) {
      if (ids[i] !== run.tokenId) continue;
      if (k < n) e.set(run.embeddings.subarray(k * H, (k + 1) * H), i * H);
      k++;
    }
    if (k !== n) throw new RangeError(`multimodal prompt: ${k} ${run.what} token(s) (id ${run.tokenId}) in the ids but ${n} ${run.what} soft embeddings to place`);
  }
  return e;
}
