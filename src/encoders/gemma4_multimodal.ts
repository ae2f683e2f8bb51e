/**
 * Gemma 4's multimodal prompt [modeling_gemma4.py, Gemma4Model.forward]: image and audio soft
 * tokens scattered into their placeholder positions of the text embeddings.
 *
 *   placeholders (image/audio/video ids) → pad id for BOTH embedding tables (Gemma4TextModel)
 *   image: valid pooled cells of each image, in order → embed_vision → the image_token_id positions
 *   audio: valid 40 ms steps of each clip → embed_audio → the audio_token_id positions
 *   boi/eoi/boa/eoa are ordinary text tokens; attention stays causal (E2B/E4B)
 *
 * The placeholder counts are checked against the media BEFORE any tower runs: the image token
 * count is known after preprocessing, the audio one from the frame mask.
 */
import type { TensorStore } from '../checkpoint/checkpoint.js';
import type { Gemma4Config } from '../checkpoint/gemma4_config.js';
import type { Kernels } from '../kernels/kernels.js';
import type { Gemma4TextModel } from '../model/gemma4_text_model.js';
import { mergeSoftTokens, type SoftTokenRun } from '../model/multimodal_merge.js';
import type { Tracer } from '../model/trace.js';
import { gemma4AudioTokenCount } from './gemma4_audio/feature_extractor.js';
import { parseGemma4AudioConfig } from './gemma4_audio/config.js';
import { Gemma4AudioTower } from './gemma4_audio/tower.js';
import { Gemma4SoftEmbedder } from './gemma4_soft_embedder.js';
import { parseGemma4VisionConfig } from './gemma4_vision/config.js';
import type { Gemma4VisionInput } from './gemma4_vision/tower.js';
import { Gemma4VisionTower } from './gemma4_vision/tower.js';
import { Q8_SUFFIX } from './tower_weights.js';

/** One clip's features as the extractor gives them: [frames, 128] and a frame mask (1 = valid). */
export interface Gemma4AudioInput {
  features: Float32Array;
  mask: Uint8Array;
  frames: number;
}

export class Gemma4Multimodal {
  private constructor(
    private readonly config: Gemma4Config,
    readonly vision: { tower: Gemma4VisionTower; embedder: Gemma4SoftEmbedder } | null,
    readonly audio: { tower: Gemma4AudioTower; embedder: Gemma4SoftEmbedder } | null,
  ) {}

  /** Loads the towers the config and checkpoint have (either may be absent). */
  static async load(store: TensorStore, kernels: Kernels, config: Gemma4Config): Promise<Gemma4Multimodal> {
    const H = config.text.hiddenSize;
    let vision = null, audio = null;
    const has = (name: string) => store.has(name) || store.has(name + Q8_SUFFIX); // .q8: a packed folder (tower_weights.ts)
    if (config.visionConfig && has('model.vision_tower.patch_embedder.input_proj.weight')) {
      const vc = parseGemma4VisionConfig(config.visionConfig);
      vision = { tower: await Gemma4VisionTower.load(store, kernels, vc), embedder: await Gemma4SoftEmbedder.load(store, kernels, 'model.embed_vision', vc.hiddenSize, H, vc.rmsNormEps) };
    }
    if (config.audioConfig && has('model.audio_tower.output_proj.weight')) {
      const ac = parseGemma4AudioConfig(config.audioConfig);
      audio = { tower: await Gemma4AudioTower.load(store, kernels, ac), embedder: await Gemma4SoftEmbedder.load(store, kernels, 'model.embed_audio', ac.outputProjDims, H, ac.rmsNormEps) };
    }
    return new Gemma4Multimodal(config, vision, audio);
  }

  /** Frees both towers' and embedders' weights. */
  release(): void {
    for (const m of [this.vision, this.audio]) {
      m?.tower.release();
      m?.embedder.release();
    }
  }

  private tokenId(key: string): number {
    const id = this.config.tokenIds[key];
    if (id === undefined) throw new RangeError(`config.json has no ${key}`);
    return id;
  }

  /** Refuses a prompt whose placeholders do not match its media (no tower has run yet). */
  checkPlaceholders(ids: ArrayLike<number>, images: readonly { numSoftTokens: number }[], audio: readonly Gemma4AudioInput[]): void {
    const count = (id: number | undefined) => { let n = 0; for (let i = 0; i < ids.length; i++) if (ids[i] === id) n++; return n; };
    const wantImage = images.reduce((s, im) => s + im.numSoftTokens, 0);
    const wantAudio = audio.reduce((s, a) => s + gemma4AudioTokenCount(a.mask), 0);
    const haveImage = count(this.config.tokenIds.image_token_id), haveAudio = count(this.config.tokenIds.audio_token_id);
    if (haveImage !== wantImage) throw new RangeError(`multimodal prompt: ${haveImage} image token(s) but the ${images.length} image(s) give ${wantImage} soft tokens`);
    if (haveAudio !== wantAudio) throw new RangeError(`multimodal prompt: ${haveAudio} audio token(s) but the ${audio.length} clip(s) give ${wantAudio} soft tokens`);
    if (images.length > 0 && !this.vision) throw new RangeError('this model has no vision tower (model.vision_tower.* weights)');
    if (audio.length > 0 && !this.audio) throw new RangeError('this model has no audio tower (model.audio_tower.* weights)');
  }

  /** The merged input embeddings [T, H] of a prompt with its images (preprocessed) and clips. */
  async embedPrompt(model: Gemma4TextModel, ids: ArrayLike<number>, images: readonly (Gemma4VisionInput & { numSoftTokens: number })[], audio: readonly Gemma4AudioInput[], trace?: Tracer): Promise<Float32Array> {
    this.checkPlaceholders(ids, images, audio);
    const runs: SoftTokenRun[] = [];
    if (images.length > 0) {
      const v = this.vision!;
      const parts = images.map((im) => v.tower.encode(im));
      const n = parts.reduce((s, p) => s + p.numSoftTokens, 0), D = v.tower.config.hiddenSize;
      const soft = new Float32Array(n * D);
      let o = 0;
      for (const p of parts) { soft.set(p.softTokens, o); o += p.softTokens.length; }
      const feats = v.embedder.embed(soft, n);
      trace?.('image_features', feats, [n, model.config.hiddenSize]);
      runs.push({ tokenId: this.tokenId('image_token_id'), embeddings: feats, what: 'image' });
    }
    if (audio.length > 0) {
      const a = this.audio!;
      const parts = audio.map((clip) => a.tower.encode(clip.features, clip.mask, clip.frames));
      const n = parts.reduce((s, p) => s + p.numValid, 0), D = a.tower.config.outputProjDims;
      const rows = new Float32Array(n * D);
      let o = 0;
      for (const p of parts) { rows.set(p.validRows, o); o += p.validRows.length; }
      const feats = a.embedder.embed(rows, n);
      trace?.('audio_features', feats, [n, model.config.hiddenSize]);
      runs.push({ tokenId: this.tokenId('audio_token_id'), embeddings: feats, what: 'audio' });
    }
    return mergeSoftTokens(model, ids, runs);
  }
}
