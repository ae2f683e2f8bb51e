/**
 * Gemma 4's vision and audio towers behind the engine's media seam (media.ts), loaded when a
 * request first needs them and releasable afterwards, as Gemma 3n's (towers.ts).
 *
 * What differs from Gemma 3n [processing_gemma4.py, Gemma4Processor]:
 *   - an image takes a variable number of soft tokens (aspect-preserving resize to a budget of
 *     70/140/280/560/1120, default 280), known after preprocessing;
 *   - a clip takes one soft token per valid 40 ms step (from the feature extractor's frame mask);
 *   - the template writes `<|image|>` / `<|audio|>` once per item, and the processor replaces each
 *     with `<|image>` + N × `<|image|>` + `<image|>` (audio: `<|audio>` + M × `<|audio|>` + `<audio|>`);
 *   - the begin/end markers are ordinary text tokens (no "hard" embeddings).
 * The merge itself is src/encoders/gemma4_multimodal.ts.
 */
import type { TensorStore } from '../checkpoint/checkpoint.js';
import type { Gemma4Config } from '../checkpoint/gemma4_config.js';
import { decodeAudioFile } from '../encoders/audio/index.js';
import { Gemma4AudioFeatureExtractor, gemma4AudioTokenCount } from '../encoders/gemma4_audio/index.js';
import { Gemma4Multimodal, type Gemma4AudioInput } from '../encoders/gemma4_multimodal.js';
import { preprocessGemma4Image, type Gemma4PixelInput } from '../encoders/gemma4_vision/index.js';
import { decodeImage, rgbFromRgba, type RgbImage } from '../encoders/vision/image_decode.js';
import type { ImageInput } from '../encoders/vision/index.js';
import { Q8_SUFFIX } from '../encoders/tower_weights.js';
import type { Kernels } from '../kernels/kernels.js';
import type { Gemma4TextModel } from '../model/gemma4_text_model.js';
import type { MediaInput, MediaTowers, PreparedMedia } from './media.js';

/** The token text of Gemma 4's media markers (the released tokenizer's pieces). */
export const GEMMA4_MEDIA_TOKENS = Object.freeze({
  boi: '<|image>',
  image: '<|image|>',
  eoi: '<image|>',
  boa: '<|audio>',
  audio: '<|audio|>',
  eoa: '<audio|>',
});

export interface Gemma4TowersOptions {
  /** Soft-token budget per image: 70, 140, 280 (the processor's default), 560 or 1120. */
  imageSoftTokens?: number;
}

export class Gemma4Towers implements MediaTowers {
  private towers: Gemma4Multimodal | null = null;
  private readonly features = new Gemma4AudioFeatureExtractor();

  constructor(
    private readonly store: TensorStore,
    private readonly config: Gemma4Config,
    private readonly kernels: Kernels,
    private readonly opts: Gemma4TowersOptions = {},
  ) {}

  /** A tower's weight as stored, or packed int8 (`.q8`) in a quantized folder. */
  private has(name: string): boolean {
    return this.store.has(name) || this.store.has(name + Q8_SUFFIX);
  }

  get hasVision(): boolean {
    return this.config.visionConfig !== null && this.has('model.vision_tower.patch_embedder.input_proj.weight');
  }

  get hasAudio(): boolean {
    return this.config.audioConfig !== null && this.has('model.audio_tower.output_proj.weight');
  }

  get loaded(): { vision: boolean; audio: boolean } {
    return { vision: (this.towers?.vision ?? null) !== null, audio: (this.towers?.audio ?? null) !== null };
  }

  release(): void {
    this.towers?.release();
    this.towers = null;
  }

  private async multimodal(): Promise<Gemma4Multimodal> {
    this.towers ??= await Gemma4Multimodal.load(this.store, this.kernels, this.config);
    return this.towers;
  }

  private image(m: { image?: ImageInput; pixelValues?: Float32Array }): Gemma4PixelInput {
    if (!m.image) throw new Error('a Gemma 4 image part needs `image` (PNG/JPEG bytes or RGB pixels); `pixelValues` is the Gemma 3n 768×768 layout');
    let rgb: RgbImage;
    if (m.image instanceof Uint8Array) rgb = decodeImage(m.image);
    else if (m.image.data.length === m.image.width * m.image.height * 4) rgb = rgbFromRgba(m.image);
    else rgb = m.image as RgbImage;
    return preprocessGemma4Image(rgb, { maxSoftTokens: this.opts.imageSoftTokens });
  }

  private clip(m: {
    audio?: Uint8Array | Float32Array;
    features?: { features: Float32Array; mask: Uint8Array; batch: number; frames: number; featureSize: number };
  }): Gemma4AudioInput {
    if (m.features) {
      const f = m.features;
      if (f.batch !== 1 || f.featureSize !== 128)
        throw new RangeError(`audio features: expected one clip of 128 mel bins, got batch ${f.batch} × ${f.featureSize}`);
      return { features: f.features, mask: f.mask, frames: f.frames };
    }
    if (!m.audio) throw new Error('an audio part needs `audio` (WAV bytes or 16 kHz mono samples) or `features`');
    const wave = m.audio instanceof Float32Array ? m.audio : decodeAudioFile(m.audio, 'audio clip');
    const f = this.features.extract([wave]);
    return { features: f.features, mask: f.mask, frames: f.frames };
  }

  async prepare(media: readonly MediaInput[]): Promise<PreparedMedia> {
    const images: Gemma4PixelInput[] = [],
      clips: Gemma4AudioInput[] = [];
    // Soft tokens per item, in prompt order, for the placeholder expansion.
    const counts: { kind: 'image' | 'audio'; n: number }[] = [];
    for (const m of media) {
      if (m.kind === 'image') {
        const im = this.image(m);
        images.push(im);
        counts.push({ kind: 'image', n: im.numSoftTokens });
      } else {
        const clip = this.clip(m);
        clips.push(clip);
        counts.push({ kind: 'audio', n: gemma4AudioTokenCount(clip.mask) });
      }
    }
    return {
      expandText: (text) => expandGemma4Placeholders(text, counts),
      embed: async (model, ids) => {
        const mm = await this.multimodal();
        return mm.embedPrompt(model as Gemma4TextModel, ids, images, clips);
      },
    };
  }
}

/**
 * Replaces, in order, each `<|image|>` / `<|audio|>` the chat template wrote (one per item) by
 * begin marker + N soft-token placeholders + end marker [Gemma4Processor.replace_image_token,
 * replace_audio_token]. One pass, so the placeholders it writes are not expanded again.
 */
export function expandGemma4Placeholders(text: string, items: readonly { kind: 'image' | 'audio'; n: number }[]): string {
  const t = GEMMA4_MEDIA_TOKENS;
  let next = 0;
  const out = text.replace(/<\|image\|>|<\|audio\|>/g, (m) => {
    const kind = m === t.image ? 'image' : 'audio';
    const item = items[next++];
    if (!item || item.kind !== kind)
      throw new RangeError(`chat template: placeholder ${next} is ${m} but media item ${next} is ${item ? `an ${item.kind}` : 'missing'}`);
    return kind === 'image' ? `${t.boi}${t.image.repeat(item.n)}${t.eoi}` : `${t.boa}${t.audio.repeat(item.n)}${t.eoa}`;
  });
  if (next !== items.length) throw new RangeError(`chat template: ${next} media placeholder(s) for ${items.length} image/audio part(s)`);
  return out;
}
