/**
 * `Gemma3nMultimodalEmbedder` for audio (weights `model.embed_audio.*`): maps audio encodings
 * ("soft tokens") or audio token ids ("hard tokens") into the text model's embedding space.
 *
 *   soft: RMSNorm(soft_embedding_norm) → embedding_projection (D → text hidden) → RMSNorm without scale
 *   hard: embedding[id − vocab_offset] → RMSNorm(hard_embedding_norm) → same projection and norm
 */
import type { Kernels } from '../../kernels/kernels.js';
import type { Checkpoint } from '../../model/checkpoint.js';
import { rmsNorm } from '../../model/ops.js';
import type { AudioModelConfig } from './config.js';
import { Linear, loadVector } from './nn.js';

export class AudioEmbedder {
  readonly hiddenSize: number;
  readonly textHiddenSize: number;
  readonly vocabOffset: number;
  readonly vocabSize: number;
  readonly eps: number;

  private constructor(
    readonly embedding: Float32Array, // [vocab, D]
    readonly hardEmbeddingNorm: Float32Array, // [D]
    readonly softEmbeddingNorm: Float32Array, // [D]
    readonly embeddingProjection: Linear, // [text hidden, D]
    cfg: AudioModelConfig,
  ) {
    this.hiddenSize = cfg.audio.hiddenSize;
    this.textHiddenSize = cfg.textHiddenSize;
    this.vocabOffset = cfg.audio.vocabOffset;
    this.vocabSize = cfg.audio.vocabSize;
    this.eps = cfg.audio.rmsNormEps;
  }

  static async load(ckpt: Checkpoint, cfg: AudioModelConfig, kernels: Kernels, prefix = 'model.embed_audio'): Promise<AudioEmbedder> {
    const D = cfg.audio.hiddenSize;
    return new AudioEmbedder(
      await ckpt.readF32(`${prefix}.embedding.weight`, [cfg.audio.vocabSize, D]),
      await loadVector(ckpt, `${prefix}.hard_embedding_norm.weight`, D),
      await loadVector(ckpt, `${prefix}.soft_embedding_norm.weight`, D),
      await Linear.load(ckpt, kernels, `${prefix}.embedding_projection.weight`, cfg.textHiddenSize, D),
      cfg,
    );
  }

  /** Soft path: x [N, D] (encoder outputs) → [N, text hidden]. */
  embedSoft(x: Float32Array, N: number): Float32Array {
    const h = rmsNorm(x, this.softEmbeddingNorm, N, this.hiddenSize, this.eps, new Float32Array(N * this.hiddenSize));
    return this.project(h, N);
  }

  /** Hard path: token ids in [vocab_offset, vocab_offset + vocab_size) → [N, text hidden]. */
  embedIds(ids: ArrayLike<number>): Float32Array {
    const D = this.hiddenSize, N = ids.length;
    const h = new Float32Array(N * D);
    for (let i = 0; i < N; i++) {
      const row = ids[i] - this.vocabOffset;
      if (!Number.isInteger(row) || row < 0 || row >= this.vocabSize) {
        throw new RangeError(`embed_audio: token id ${ids[i]} is outside the audio vocabulary [${this.vocabOffset}, ${this.vocabOffset + this.vocabSize})`);
      }
      h.set(this.embedding.subarray(row * D, (row + 1) * D), i * D);
    }
    rmsNorm(h, this.hardEmbeddingNorm, N, D, this.eps);
    return this.project(h, N);
  }

  private project(h: Float32Array, N: number): Float32Array {
    const y = this.embeddingProjection.forward(h, N);
    return rmsNorm(y, null, N, this.textHiddenSize, this.eps); // embedding_post_projection_norm: no scale
  }

  release(): void {
    this.embeddingProjection.release();
  }
}
