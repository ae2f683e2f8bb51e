/**
 * The audio and vision towers of a Gemma3nForConditionalGeneration checkpoint, loaded only
 * when a request needs them and releasable afterwards (they are ~300 M and ~600 M parameters
 * in E2B, useless for text-only work). Their small embedders (embed_vision / embed_audio) are
 * loaded up front, because reserved ids such as end-of-image use them even in text.
 *
 * Also: turning images and audio clips into the soft-token embeddings that replace the
 * placeholder ids of a prompt (test/golden/multimodal/README.md, "How the merge works").
 */
import type { Kernels } from '../kernels/kernels.js';
import type { TensorStore } from '../checkpoint/checkpoint.js';
import type { ModelConfig } from '../checkpoint/config.js';
import { mergeSoftTokens, type SoftTokenRun } from '../model/multimodal_merge.js';
import type { CausalLM } from '../model/causal_lm.js';
import { expandMultimodalPlaceholders } from '../tokenizer/index.js';
import { checkPlaceholders } from './placeholders.js';
import type { MediaInput, MediaTowers, PreparedMedia } from './media.js';
import { AudioModel, decodeAudioFile, type AudioFeatures } from '../encoders/audio/index.js';
import type { MultimodalEmbedder } from '../encoders/multimodal_embedder.js';
import {
  encodeImageAsync,
  GEMMA3N_VISION,
  MobileNetV5Encoder,
  prefixed,
  preprocessImage,
  VISION_TOWER_PREFIX,
  type ImageInput,
  type VisionTower,
} from '../encoders/vision/index.js';
import { embedSoftTokens, loadVisionEmbedder } from '../encoders/vision/embedder.js';
import { parseAudioConfig } from '../encoders/audio/config.js';
import { MultimodalEmbedder as Embedder } from '../encoders/multimodal_embedder.js';
import { quantizeOnLoad, type TowerFormat, type TowerWeights } from '../encoders/tower_weights.js';

export interface TowersLoadOptions {
  /** 'q4': tower linears stored unpacked are quantized on load, per family (src/encoders/tower_weights.ts). Packed ones always load packed. */
  linearFormat?: TowerFormat;
}

export type { MediaInput } from './media.js';

type Json = Record<string, unknown>;

export class Towers implements MediaTowers {
  private visionTower: VisionTower | null = null;
  private audioModel: AudioModel | null = null;

  private constructor(
    private readonly store: TensorStore,
    private readonly config: ModelConfig,
    private readonly kernels: Kernels,
    readonly visionEmbedder: MultimodalEmbedder | null,
    readonly audioEmbedder: MultimodalEmbedder | null,
    /** What the towers read: the checkpoint, quantizing on load when asked. */
    private readonly weights: TowerWeights,
  ) {}

  /** Loads the embedders present in the checkpoint; the towers wait for first use. */
  static async load(store: TensorStore, config: ModelConfig, kernels: Kernels, opts: TowersLoadOptions = {}): Promise<Towers> {
    const H = config.text.hiddenSize;
    const weights: TowerWeights = opts.linearFormat === 'q4' ? quantizeOnLoad(store) : store;
    let vision: MultimodalEmbedder | null = null,
      audio: MultimodalEmbedder | null = null;
    if (config.visionConfig && store.has('model.embed_vision.embedding.weight')) {
      const vc = config.visionConfig as Json;
      vision = await loadVisionEmbedder(weights, kernels, H, 'model.embed_vision', {
        hiddenSize: (vc.hidden_size as number | undefined) ?? 2048,
        vocabOffset: (vc.vocab_offset as number | undefined) ?? 262_144,
        vocabSize: (vc.vocab_size as number | undefined) ?? 128,
        eps: (vc.rms_norm_eps as number | undefined) ?? 1e-6,
      });
    }
    if (config.audioConfig && store.has('model.embed_audio.embedding.weight')) {
      const ac = parseAudioConfig(config.raw, `${store.location}/config.json`);
      audio = await Embedder.load(weights, kernels, 'model.embed_audio', {
        hiddenSize: ac.audio.hiddenSize,
        textHiddenSize: H,
        vocabOffset: ac.audio.vocabOffset,
        vocabSize: ac.audio.vocabSize,
        eps: ac.audio.rmsNormEps,
      });
    }
    return new Towers(store, config, kernels, vision, audio, weights);
  }

  get hasVision(): boolean {
    return this.visionEmbedder !== null && this.store.has('model.vision_tower.timm_model.conv_stem.conv.weight');
  }

  get hasAudio(): boolean {
    return this.audioEmbedder !== null && this.store.names().some((n) => n.startsWith('model.audio_tower.'));
  }

  /** Soft tokens per image / audio clip in a prompt. */
  get imageTokens(): number {
    return (this.config.raw.vision_soft_tokens_per_image as number | undefined) ?? 256;
  }
  get audioTokens(): number {
    return (this.config.raw.audio_soft_tokens_per_image as number | undefined) ?? 188;
  }

  async vision(): Promise<VisionTower> {
    if (!this.hasVision) throw new Error('this model has no vision tower (model.vision_tower.* weights)');
    if (!this.visionTower) {
      const encoder = await MobileNetV5Encoder.load(prefixed(this.weights, VISION_TOWER_PREFIX), this.kernels, GEMMA3N_VISION);
      this.visionTower = { encoder, embedder: this.visionEmbedder };
    }
    return this.visionTower;
  }

  async audio(): Promise<AudioModel> {
    if (!this.hasAudio) throw new Error('this model has no audio tower (model.audio_tower.* weights)');
    this.audioModel ??= await AudioModel.load(this.store, this.config.raw, this.kernels, { linearFormat: this.weights.linearFormat });
    return this.audioModel;
  }

  /** Frees the towers' weights (they load again on the next request that needs them). */
  release(): void {
    this.audioModel?.release();
    this.audioModel = null;
    this.visionTower?.encoder.release();
    this.visionTower = null;
  }

  get loaded(): { vision: boolean; audio: boolean } {
    return { vision: this.visionTower !== null, audio: this.audioModel !== null };
  }

  /** [imageTokens, H] embeddings of one image: tower → ·√2048 → embed_vision (soft path). */
  async imageEmbeddings(m: { image?: ImageInput; pixelValues?: Float32Array }): Promise<Float32Array> {
    const tower = await this.vision();
    const pixels = m.pixelValues ?? preprocessImage(m.image!);
    const soft = await encodeImageAsync(tower, pixels); // yields between blocks (see mergedEmbeddings)
    const n = soft.length / tower.encoder.config.numFeatures;
    return embedSoftTokens(this.visionEmbedder!, soft, n);
  }

  /** [audioTokens, H] embeddings of one clip: features → conformer → embed_audio → padded to the fixed count. */
  async audioEmbeddings(m: { audio?: Uint8Array | Float32Array; features?: AudioFeatures }): Promise<Float32Array> {
    const model = await this.audio();
    let f = m.features;
    if (!f) {
      const wave = m.audio instanceof Float32Array ? m.audio : decodeAudioFile(m.audio!, 'audio clip');
      f = model.extractFeatures([wave]);
    }
    return model.mergeForPrompt(await model.encodeAsync(f)); // yields between conformer blocks
  }

  /**
   * Gemma 3n's media need no preparation: every image takes 256 soft tokens, every clip 188
   * (MediaTowers.prepare, media.ts). The template's "<image_soft_token>" / "<audio_soft_token>"
   * placeholders expand as Gemma3nProcessor does.
   */
  async prepare(media: readonly MediaInput[]): Promise<PreparedMedia> {
    return {
      expandText: (text) => expandMultimodalPlaceholders(text, { imageTokens: this.imageTokens, audioTokens: this.audioTokens }),
      embed: async (model, ids) => {
        checkPlaceholders(ids, media, {
          imageTokenId: this.config.imageTokenId ?? 262_145,
          audioTokenId: this.config.audioTokenId ?? 262_273,
          imageTokens: this.imageTokens,
          audioTokens: this.audioTokens,
        });
        return this.mergedEmbeddings(model, ids, media);
      },
    };
  }

  /**
   * The merged prompt embeddings for ids that hold image/audio placeholder ids. The towers give
   * the event loop a turn after every block (MobileNet-V5 block, conformer block), so a server's
   * batched decode steps (scheduler.ts) run between the slices of a tower instead of stalling
   * for the whole image or clip; the steps and the slices alternate.
   */
  async mergedEmbeddings(model: CausalLM, ids: ArrayLike<number>, media: readonly MediaInput[]): Promise<Float32Array> {
    const images: Float32Array[] = [],
      audios: Float32Array[] = [];
    for (const m of media) {
      if (m.kind === 'image') images.push(await this.imageEmbeddings(m));
      else audios.push(await this.audioEmbeddings(m));
    }
    const runs: SoftTokenRun[] = [];
    const concat = (parts: Float32Array[]) => {
      const out = new Float32Array(parts.reduce((s, p) => s + p.length, 0));
      let o = 0;
      for (const p of parts) {
        out.set(p, o);
        o += p.length;
      }
      return out;
    };
    const imageId = this.config.imageTokenId ?? 262_145,
      audioId = this.config.audioTokenId ?? 262_273;
    runs.push({ tokenId: imageId, embeddings: concat(images), what: 'image' });
    runs.push({ tokenId: audioId, embeddings: concat(audios), what: 'audio' });
    return mergeSoftTokens(model, ids, runs);
  }
}
