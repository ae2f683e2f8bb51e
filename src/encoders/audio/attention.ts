/**
 * Chunked local self-attention with relative positions (`Gemma3nAudioAttention` together with
 * `Gemma3nAudioRelativePositionEmbedding`), the attention of the USM conformer.
 *
 * The reference cuts queries into blocks of W = chunk_size and gives every block a key context of
 * C = W + P + F steps (P = context_left − 1 past steps, F = context_right future steps). Its
 * masking makes that exactly a sliding window: query t sees keys s with t − P ≤ s ≤ t + F that
 * exist and are not padding. This file computes the window directly, per query.
 *
 *   logits[t, s] = q_t · k_s + q_t · R[t − s]              ("term_ac" + shifted "term_bd")
 *   q_t scaled per dimension by hd^-½ / ln 2 · softplus(per_dim_scale)   (no other 1/√d)
 *   R[r] = pos_proj(concat(sin(r·τ), cos(r·τ))), τ_i = 1e4^(−i/(D/2 − 1)), i < D/2  (D = model width)
 *   logits = tanh(logits / cap) · cap, then masked to finfo(float32).min, softmax in float32.
 */
import type { Kernels } from '../../kernels/kernels.js';
import type { TowerWeights } from '../tower_weights.js';
import type { AudioConfig } from './config.js';
import { Linear, loadVector, softplus } from './nn.js';

/** torch.finfo(torch.float32).min: the reference's masked logit (not −∞; see `forward`). */
const F32_MIN = -3.4028234663852886e38;

export class AudioAttention {
  readonly numHeads: number;
  readonly headDim: number;
  /** P: past steps a query sees (context_left − 1). */
  readonly maxPast: number;
  /** F: future steps a query sees (context_right). */
  readonly maxFuture: number;
  readonly chunkSize: number;
  /** Query scale per head dimension [hd]: q_scale · softplus(per_dim_scale). */
  readonly queryScale: Float32Array;
  /** Projected relative-position embeddings [P + F + 1, H·hd]; row f is relative position P − f. */
  readonly relEmb: Float32Array;

  private constructor(
    readonly q: Linear,
    readonly k: Linear,
    readonly v: Linear,
    perDimScale: Float32Array,
    posProj: Linear,
    readonly cfg: AudioConfig,
  ) {
    this.numHeads = cfg.confNumAttentionHeads;
    this.headDim = cfg.hiddenSize / this.numHeads;
    this.maxPast = Math.max(0, cfg.confAttentionContextLeft - 1);
    this.maxFuture = cfg.confAttentionContextRight;
    this.chunkSize = cfg.confAttentionChunkSize;
    // q_scale = hd^-0.5 · 1/softplus(0) = hd^-0.5 / ln 2, a float32 buffer in the reference.
    const qScale = Math.fround(this.headDim ** -0.5 * Math.fround(1 / Math.fround(softplus(0))));
    this.queryScale = new Float32Array(this.headDim);
    for (let d = 0; d < this.headDim; d++) this.queryScale[d] = Math.fround(qScale * Math.fround(softplus(perDimScale[d])));
    this.relEmb = relativePositionEmbeddings(posProj, cfg.hiddenSize, this.maxPast, this.maxFuture);
    posProj.release();
  }

  static async load(ckpt: TowerWeights, kernels: Kernels, prefix: string, cfg: AudioConfig): Promise<AudioAttention> {
    const D = cfg.hiddenSize, hd = D / cfg.confNumAttentionHeads;
    const [q, k, v, pos] = await Promise.all([
      Linear.load(ckpt, kernels, `${prefix}.q_proj.weight`, D, D),
      Linear.load(ckpt, kernels, `${prefix}.k_proj.weight`, D, D),
      Linear.load(ckpt, kernels, `${prefix}.v_proj.weight`, D, D),
      Linear.load(ckpt, kernels, `${prefix}.relative_position_embedding.pos_proj.weight`, D, D),
    ]);
    const pds = await loadVector(ckpt, `${prefix}.per_dim_scale`, hd);
    return new AudioAttention(q, k, v, pds, pos, cfg);
  }

  /**
   * x [T, D] (already clamped and normed), valid [T] (1 = real step) → context vectors [T, H·hd],
   * before the `post` projection.
   */
  forward(x: Float32Array, T: number, valid: Uint8Array): Float32Array {
    const { numHeads: H, headDim: hd, maxPast: P, maxFuture: Fw, chunkSize: W, queryScale, relEmb } = this;
    const D = H * hd, span = P + Fw + 1, C = W + P + Fw;
    const cap = this.cfg.confAttentionLogitCap;
    const q = this.q.forward(x, T), k = this.k.forward(x, T), v = this.v.forward(x, T);
    for (let t = 0; t < T; t++) for (let i = 0; i < D; i++) q[t * D + i] *= queryScale[i % hd];
    const out = new Float32Array(T * D);
    const logits = new Float64Array(span);
    for (let t = 0; t < T; t++) {
      for (let n = 0; n < H; n++) {
        const qo = t * D + n * hd;
        let max = -Infinity, any = false;
        // Window column f ↔ key s = t − P + f ↔ relative position t − s = P − f = relEmb row f.
        for (let f = 0; f < span; f++) {
          const s = t - P + f;
          if (s < 0 || s >= T || !valid[s]) { logits[f] = F32_MIN; continue; }
          const ko = s * D + n * hd, ro = f * D + n * hd;
          let ac = 0, bd = 0;
          for (let h = 0; h < hd; h++) { ac += q[qo + h] * k[ko + h]; bd += q[qo + h] * relEmb[ro + h]; }
          const l = Math.tanh((ac + bd) / cap) * cap; // soft cap before masking
          logits[f] = l;
          if (l > max) max = l;
          any = true;
        }
        const oo = t * D + n * hd;
        if (!any) {
          // Padded query with no visible key: every logit of its C-wide block context is
          // finfo.min, so the float32 softmax is uniform over C columns (−∞ would give NaN).
          // Columns outside [0, T) are zero padding, so the output is Σ v / C over the rest.
          const start = Math.floor(t / W) * W - P;
          for (let s = Math.max(0, start); s < Math.min(T, start + C); s++) {
            const vo = s * D + n * hd;
            for (let h = 0; h < hd; h++) out[oo + h] += v[vo + h] / C;
          }
          continue;
        }
        let sum = 0;
        for (let f = 0; f < span; f++) {
          const e = logits[f] === F32_MIN ? 0 : Math.exp(logits[f] - max);
          logits[f] = e;
          sum += e;
        }
        for (let f = 0; f < span; f++) {
          const p = logits[f] / sum;
          if (p === 0) continue;
          const vo = (t - P + f) * D + n * hd;
          for (let h = 0; h < hd; h++) out[oo + h] += p * v[vo + h];
        }
      }
    }
    return out;
  }

  release(): void {
    this.q.release();
    this.k.release();
    this.v.release();
  }
}

/**
 * Sinusoidal timing signal at relative positions [P, P−1, …, −F] projected by `pos_proj`
 * (`_get_timing_signal_1d_pos`): D/2 timescales over the model width, sin then cos (not
 * interleaved), computed in float32 like the reference. Returns [P + F + 1, D].
 */
export function relativePositionEmbeddings(posProj: Linear, D: number, P: number, F: number): Float32Array {
  const n = Math.floor(D / 2), span = P + F + 1;
  const logInc = Math.log(1e4 / 1) / Math.max(n - 1, 1);
  const invTimescales = new Float32Array(n);
  for (let i = 0; i < n; i++) invTimescales[i] = Math.exp(Math.fround(i * -logInc));
  const signal = new Float32Array(span * D);
  for (let f = 0; f < span; f++) {
    const pos = P - f;
    for (let i = 0; i < n; i++) {
      const x = Math.fround(pos * invTimescales[i]);
      signal[f * D + i] = Math.sin(x);
      signal[f * D + n + i] = Math.cos(x);
    }
  }
  return posProj.forward(signal, span);
}
