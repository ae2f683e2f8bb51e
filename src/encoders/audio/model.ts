/**
 * The whole audio path as one object: feature extractor + `audio_tower` + `embed_audio`, plus the
 * merge step of `Gemma3nModel.forward` that turns a clip into exactly `audio_soft_tokens_per_image`
 * prompt embeddings.
 */
import type { FileProvider } from '../../io/byte_source.js';
import type { Kernels } from '../../kernels/kernels.js';
import { TsKernels } from '../../kernels/ts_kernels.js';
import type { TensorStore } from '../../checkpoint/checkpoint.js';
import { Checkpoint } from '../../checkpoint/checkpoint.js';
import { CheckpointError } from '../../checkpoint/safetensors.js';
import { parseAudioConfig, type AudioModelConfig } from './config.js';
import { AudioEmbedder } from './embedder.js';
import type { MultimodalEmbedder } from '../multimodal_embedder.js';
import type { Tracer } from '../../model/trace.js';
import { AudioEncoder, type AudioEncoding } from './encoder.js';
import { FeatureExtractor, type AudioFeatures } from './feature_extractor.js';
import { quantizeOnLoad, type TowerFormat, type TowerWeights } from '../tower_weights.js';

export class AudioModel {
  readonly featureExtractor = new FeatureExtractor();

  constructor(readonly config: AudioModelConfig, readonly encoder: AudioEncoder, readonly embedder: MultimodalEmbedder) {}

  /** Loads the audio tower and embedder of a checkpoint given its full gemma3n config object. */
  /**
   * `opts.linearFormat: 'q4'` quantizes the linears stored unpacked on load, per family
   * (src/encoders/tower_weights.ts); packed ones (`NAME.q4`) always load packed.
   */
  static async load(
    ckpt: TowerWeights & { readonly location: string }, fullConfig: unknown, kernels: Kernels,
    opts: { linearFormat?: TowerFormat; minQuantized?: number } = {},
  ): Promise<AudioModel> {
    const config = parseAudioConfig(fullConfig, `${ckpt.location}/config.json`);
    if (config.audio.inputFeatSize !== new FeatureExtractor().opts.featureSize) {
      throw new CheckpointError(`${ckpt.location}/config.json: audio_config.input_feat_size ${config.audio.inputFeatSize} differs from the 128 mel bins of the feature extractor`);
    }
    const weights: TowerWeights = opts.linearFormat === 'q4' ? quantizeOnLoad(ckpt, { minQuantized: opts.minQuantized }) : ckpt;
    const encoder = await AudioEncoder.load(weights, config.audio, kernels);
    const embedder = await AudioEmbedder.load(weights, config, kernels);
    return new AudioModel(config, encoder, embedder);
  }

  /** Opens `config.json` and the checkpoint of a model folder, loads the audio weights and closes the files. */
  static async open(folder: FileProvider, kernels: Kernels): Promise<AudioModel> {
    let cfg: unknown;
    try {
      cfg = JSON.parse(await folder.readText('config.json'));
    } catch (e) {
      throw new CheckpointError(`${folder.location}/config.json: cannot read (${(e as Error).message})`);
    }
    const ckpt = await Checkpoint.open(folder);
    try {
      return await AudioModel.load(ckpt, cfg, kernels);
    } finally {
      await ckpt.close(); // every weight is in memory now
    }
  }

  /** 16 kHz mono waveforms → log-mel batch (padded to the longest, as the reference). */
  extractFeatures(waveforms: readonly Float32Array[]): AudioFeatures {
    return this.featureExtractor.extract(waveforms);
  }

  encode(f: AudioFeatures, hook?: Tracer): AudioEncoding {
    return this.encoder.encode(f.features, f.mask, f.batch, f.frames, hook);
  }

  /** `encode`, yielding to the event loop between conformer blocks. */
  encodeAsync(f: AudioFeatures, hook?: Tracer): Promise<AudioEncoding> {
    return this.encoder.encodeAsync(f.features, f.mask, f.batch, f.frames, hook);
  }

  /** Soft embeddings [B, T', text hidden] of an encoding (`embed_audio(inputs_embeds=...)`). */
  embed(enc: AudioEncoding): Float32Array {
    return this.embedder.embedSoft(enc.hidden, enc.batch * enc.steps);
  }

  /** `embed_audio(input_ids=[[text_vocab_size − 1]])`: the embedding that fills padded audio tokens. */
  paddingEmbedding(): Float32Array {
    return this.embedder.embedIds([this.config.textVocabSize - 1]);
  }

  /**
   * The prompt embeddings of each clip, as `Gemma3nModel.forward` builds them: padded steps are
   * replaced by the padding embedding and the sequence is extended with it to
   * `audio_soft_tokens_per_image` tokens. Returns [B, tokens, text hidden].
   */
  mergeForPrompt(enc: AudioEncoding, soft: Float32Array = this.embed(enc)): Float32Array {
    const N = this.config.audioSoftTokensPerImage, H = this.config.textHiddenSize;
    if (enc.steps > N) throw new Error(`audio: ${enc.steps} soft tokens exceed audio_soft_tokens_per_image ${N} (clip longer than 30 s?)`);
    const pad = this.paddingEmbedding();
    const out = new Float32Array(enc.batch * N * H);
    for (let b = 0; b < enc.batch; b++) {
      for (let t = 0; t < N; t++) {
        const dst = (b * N + t) * H;
        if (t < enc.steps && !enc.paddedMask[b * enc.steps + t]) out.set(soft.subarray((b * enc.steps + t) * H, (b * enc.steps + t + 1) * H), dst);
        else out.set(pad, dst);
      }
    }
    return out;
  }

  release(): void {
    this.encoder.release();
    this.embedder.release();
  }
}

/** Loads `model.audio_tower.*` and `model.embed_audio.*` given the parsed full gemma3n config.json. */
export function loadAudioEncoder(checkpoint: TensorStore, fullConfig: unknown, kernels: Kernels = new TsKernels()): Promise<AudioModel> {
  return AudioModel.load(checkpoint, fullConfig, kernels);
}
