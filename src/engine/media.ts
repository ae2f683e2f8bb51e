/**
 * The seam between the engine and a model family's audio/vision towers: Gemma 3n's
 * (towers.ts: MobileNet-V5 and the USM conformer, fixed 256 / 188 soft tokens) and Gemma 4's
 * (gemma4_towers.ts: the ViT with a variable number of soft tokens, the new audio tower with
 * one soft token per 40 ms). The engine renders the chat, asks the towers to prepare the
 * prompt's media, expands the placeholders the template wrote, tokenizes, and asks for the
 * merged embeddings; everything family-specific happens behind these two calls.
 */
import type { AudioFeatures } from '../encoders/audio/index.js';
import type { ImageInput } from '../encoders/vision/index.js';
import type { CausalLM } from '../model/causal_lm.js';

/**
 * An image or audio clip of a prompt, in the order they appear: the file's bytes (PNG/JPEG,
 * WAV) or decoded pixels / 16 kHz samples, or what the family's processor would give
 * (Gemma 3n: pixel_values [3, 768, 768], or audio features).
 */
export type MediaInput =
  | { kind: 'image'; image?: ImageInput; pixelValues?: Float32Array }
  | { kind: 'audio'; audio?: Uint8Array | Float32Array; features?: AudioFeatures };

/** One prompt's media after preprocessing (image resize, audio features): sizes are known, no tower has run. */
export interface PreparedMedia {
  /**
   * The chat text with each image / audio placeholder the template wrote replaced by what the
   * model reads: begin marker, one soft-token placeholder per soft token, end marker.
   */
  expandText(text: string): string;
  /**
   * The prompt's embeddings [T, H] with the soft tokens merged at their placeholder ids. The
   * placeholder counts are checked against the media before any tower runs.
   */
  embed(model: CausalLM, ids: ArrayLike<number>): Promise<Float32Array>;
}

export interface MediaTowers {
  readonly hasVision: boolean;
  readonly hasAudio: boolean;
  /** Decodes and preprocesses the media, in prompt order (cheap next to the towers). */
  prepare(media: readonly MediaInput[]): Promise<PreparedMedia>;
  /** Frees the towers' weights (they load again when a request needs them). */
  release(): void;
  readonly loaded: { vision: boolean; audio: boolean };
}
