/**
 * `model.embed_vision` and `model.embed_audio` for Gemma 4 [modeling_gemma4.py, Gemma4MultimodalEmbedder]: soft tokens
 * only — a weightless RMSNorm, then a bias-free projection to the text hidden size. (Gemma 3n's
 * embedder also had hard-token rows and a post-projection norm; Gemma 4 has neither.)
 */
import type { TensorStore } from '../checkpoint/checkpoint.js';
import type { Kernels, LinearWeight } from '../kernels/kernels.js';
import { rmsNorm } from '../model/ops.js';
import { loadTowerLinear } from './tower_weights.js';

export class Gemma4SoftEmbedder {
  private constructor(
    private readonly kernels: Kernels,
    private readonly projection: LinearWeight,
    readonly eps: number,
  ) {}

  static async load(store: TensorStore, kernels: Kernels, prefix: string, inDim: number, textHiddenSize: number, eps = 1e-6): Promise<Gemma4SoftEmbedder> {
    const w = await loadTowerLinear(store, `${prefix}.embedding_projection.weight`, [textHiddenSize, inDim], kernels);
    return new Gemma4SoftEmbedder(kernels, w, eps);
  }

  get inDim(): number { return this.projection.inDim; }
  get outDim(): number { return this.projection.outDim; }

  /** [N, inDim] → [N, text hidden]. */
  embed(soft: Float32Array, N: number): Float32Array {
    const D = this.projection.inDim;
    if (soft.length !== N * D) throw new RangeError(`embedder: ${soft.length} values for [${N}, ${D}]`);
    const normed = rmsNorm(soft, null, N, D, this.eps, new Float32Array(N * D));
    const out = new Float32Array(N * this.projection.outDim);
    this.kernels.linear(this.projection, normed, N, out);
    return out;
  }

  release(): void {
    this.kernels.release(this.projection);
  }
}
