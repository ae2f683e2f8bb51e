/**
 * `Gemma3nMultimodalEmbedder` [modeling_gemma3n.py]: maps a tower's outputs ("soft tokens")
 * or its reserved token ids ("hard tokens") into the text model's embedding space. The same
 * module serves vision (`model.embed_vision.*`) and audio (`model.embed_audio.*`).
 *
 *   soft: RMSNorm(soft_embedding_norm) → embedding_projection (D → text hidden) → RMSNorm without scale
 *   hard: embedding[id − vocab_offset] → RMSNorm(hard_embedding_norm) → same projection and norm
 *
 * All norms are Gemma 3n RMSNorms (x · rsqrt(mean(x²)+eps) · w, not 1+w); no √hidden scale.
 */
import type { Kernels, LinearWeight } from '../kernels/kernels.js';
import { loadTowerLinear, type TowerWeights } from './tower_weights.js';
import { rmsNorm } from '../model/ops.js';

export interface EmbedderShape {
  /** Width of the tower's outputs (D). */
  hiddenSize: number;
  textHiddenSize: number;
  vocabOffset: number;
  vocabSize: number;
  eps: number;
}

export class MultimodalEmbedder {
  constructor(
    readonly shape: EmbedderShape,
    private readonly kernels: Kernels,
    readonly embedding: Float32Array, // [vocab, D]
    readonly hardEmbeddingNorm: Float32Array, // [D]
    readonly softEmbeddingNorm: Float32Array, // [D]
    readonly embeddingProjection: LinearWeight, // [text hidden, D]
  ) {}

  get hiddenSize(): number { return this.shape.hiddenSize; }
  get textHiddenSize(): number { return this.shape.textHiddenSize; }
  get vocabOffset(): number { return this.shape.vocabOffset; }
  get vocabSize(): number { return this.shape.vocabSize; }
  get eps(): number { return this.shape.eps; }

  static async load(ckpt: TowerWeights, kernels: Kernels, prefix: string, shape: EmbedderShape): Promise<MultimodalEmbedder> {
    const D = shape.hiddenSize;
    const proj = await loadTowerLinear(ckpt, `${prefix}.embedding_projection.weight`, [shape.textHiddenSize, D], kernels);
    return new MultimodalEmbedder(
      shape,
      kernels,
      await ckpt.readF32(`${prefix}.embedding.weight`, [shape.vocabSize, D]),
      await ckpt.readF32(`${prefix}.hard_embedding_norm.weight`, [D]),
      await ckpt.readF32(`${prefix}.soft_embedding_norm.weight`, [D]),
      proj,
    );
  }

  /** Whether `id` is one of this tower's hard tokens. */
  owns(id: number): boolean {
    return id >= this.vocabOffset && id < this.vocabOffset + this.vocabSize;
  }

  /** Soft path: x [N, D] (tower outputs) → [N, text hidden]. */
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
        throw new RangeError(`multimodal embedder: token id ${ids[i]} is outside its vocabulary [${this.vocabOffset}, ${this.vocabOffset + this.vocabSize})`);
      }
      h.set(this.embedding.subarray(row * D, (row + 1) * D), i * D);
    }
    rmsNorm(h, this.hardEmbeddingNorm, N, D, this.eps);
    return this.project(h, N);
  }

  private project(h: Float32Array, N: number): Float32Array {
    const y = new Float32Array(N * this.textHiddenSize);
    this.kernels.linear(this.embeddingProjection, h, N, y);
    return rmsNorm(y, null, N, this.textHiddenSize, this.eps); // embedding_post_projection_norm: no scale
  }

  release(): void {
    this.kernels.release(this.embeddingProjection);
  }
}
