/**
 * A multimodal prompt's placeholders checked against its media BEFORE any tower runs: each image
 * takes exactly `imageTokens` image soft-token ids and each clip `audioTokens` audio ones (the
 * processor's layout, test/golden/multimodal/README.md). A mismatch — e.g. a tokenizer without
 * the `<image_soft_token>` piece, which leaves the placeholder as plain text — is refused with
 * the counts, instead of after a ~45 s vision pass.
 */
import type { MediaInput } from './media.js';

export interface PlaceholderSpec {
  imageTokenId: number;
  audioTokenId: number;
  /** Soft tokens per image / per audio clip. */
  imageTokens: number;
  audioTokens: number;
}

export function checkPlaceholders(ids: ArrayLike<number>, media: readonly MediaInput[], spec: PlaceholderSpec): void {
  let images = 0,
    audios = 0;
  for (let i = 0; i < ids.length; i++) {
    if (ids[i] === spec.imageTokenId) images++;
    else if (ids[i] === spec.audioTokenId) audios++;
  }
  const nImages = media.filter((m) => m.kind === 'image').length,
    nAudio = media.length - nImages;
  const check = (what: string, id: number, have: number, n: number, per: number) => {
    if (have === n * per) return;
    const hint = have === 0 && n > 0 ? ` (does the tokenizer know the ${what} soft-token piece? the prompt has none of id ${id})` : '';
    throw new RangeError(
      `${have} ${what} token(s) (id ${id}) in the ids but ${n * per} ${what} soft embeddings are needed for ${n} ${what === 'image' ? 'image' : 'clip'}(s) of ${per} tokens${hint}; no tower was run`,
    );
  };
  check('image', spec.imageTokenId, images, nImages, spec.imageTokens);
  check('audio', spec.audioTokenId, audios, nAudio, spec.audioTokens);
}
