/**
 * Gemma 4's audio self-attention [modeling_gemma4.py, Gemma4AudioAttention]: Gemma 3n's chunked
 * local attention with relative positions (src/encoders/audio/attention.ts), with three changes
 * that matter: the KEYS are scaled too, the window holds context_left − 1 keys INCLUDING the query
 * itself (12 for the released 13), and q/k/v/post are clipped linears.
 *
 *   q = q_proj(x) · (hd^-½ / ln 2) · softplus(per_dim_scale),   k = k_proj(x) · ln(1 + e) / ln 2
 *   logits[t, s] = q_t·k_s + q_t·r(pv(t − s)),  r(p) = relative_k_proj(concat(sin(p·τ), cos(p·τ)))
 *   τ_i = exp(−i·ln(1e4) / max(H/2 − 1, 1)), i < H/2;  pv(d) = C//2 − (context_left − 1) + d
 *   logits = tanh(logits / cap) · cap, masked → −1e9; softmax in float32
 *   allowed: s valid and 0 ≤ t − s < context_left − 1, or 0 < s − t < context_right
 *
 * The reference computes this in chunk-sized blocks; its mask makes it the plain window above,
 * which is what this file computes, per query.
 */
import type { TensorStore } from '../../checkpoint/checkpoint.js';
import type { Kernels } from '../../kernels/kernels.js';
import { ClippedLinear } from '../clipped_linear.js';
import type { Gemma4AudioConfig } from './config.js';

const softplus = (x: number): number => Math.log1p(Math.exp(-Math.abs(x))) + Math.max(x, 0);

/** concat(sin(p·τ), cos(p·τ)) for one relative position p [H]. */
export function relativePositionSinusoid(p: number, H: number): Float32Array {
  const n = H / 2, out = new Float32Array(H);
  const logInc = Math.log(1e4) / Math.max(n - 1, 1);
  for (let i = 0; i < n; i++) {
    const inv = Math.fround(Math.exp(-i * logInc));
    const a = Math.fround(p * inv);
    out[i] = Math.sin(a);
    out[n + i] = Math.cos(a);
  }
  return out;
}

export class Gemma4AudioAttention {
  readonly heads: number;
  readonly headDim: number;
  /** Keys before the query that it sees (context_left − 2), and after it (context_right). */
  readonly maxPast: number;
  readonly maxFuture: number;
  /** [hd]: (hd^-½ / ln 2) · softplus(per_dim_scale). */
  readonly queryScale: Float32Array;
  readonly keyScale: number;
  /** Projected relative embeddings, row j ↔ distance d = maxPast − j (d < 0: future) [maxPast + maxFuture + 1, H]. */
  readonly relEmb: Float32Array;

  private constructor(
    private readonly c: Gemma4AudioConfig,
    readonly q_proj: ClippedLinear, readonly k_proj: ClippedLinear, readonly v_proj: ClippedLinear, readonly post: ClippedLinear,
    perDimScale: Float32Array, relativeK: Float32Array,
  ) {
    const H = c.hiddenSize;
    this.heads = c.numAttentionHeads;
    this.headDim = H / this.heads;
    this.maxPast = c.attentionContextLeft - 2;
    this.maxFuture = Math.max(c.attentionContextRight - 1, 0);
    const qScale = Math.fround(this.headDim ** -0.5 / Math.log(2));
    this.queryScale = new Float32Array(this.headDim);
    for (let d = 0; d < this.headDim; d++) this.queryScale[d] = Math.fround(softplus(perDimScale[d]));
    for (let d = 0; d < this.headDim; d++) this.queryScale[d] = Math.fround(qScale * this.queryScale[d]);
    this.keyScale = Math.fround(Math.log(1 + Math.E) / Math.log(2));
    const C = c.attentionChunkSize + c.attentionContextLeft - 1 + c.attentionContextRight;
    const rows = this.maxPast + this.maxFuture + 1;
    this.relEmb = new Float32Array(rows * H);
    for (let j = 0; j < rows; j++) {
      const d = this.maxPast - j;
      const s = relativePositionSinusoid(Math.floor(C / 2) - (c.attentionContextLeft - 1) + d, H);
      for (let o = 0; o < H; o++) {
        let acc = 0;
        for (let i = 0; i < H; i++) acc += relativeK[o * H + i] * s[i];
        this.relEmb[j * H + o] = acc;
      }
    }
  }

  static async load(store: TensorStore, kernels: Kernels, prefix: string, c: Gemma4AudioConfig): Promise<Gemma4AudioAttention> {
    const H = c.hiddenSize, clip = c.useClippedLinears;
    const lin = (n: string) => ClippedLinear.load(store, kernels, `${prefix}.${n}`, H, H, clip);
    return new Gemma4AudioAttention(
      c, await lin('q_proj'), await lin('k_proj'), await lin('v_proj'), await lin('post'),
      await store.readF32(`${prefix}.per_dim_scale`, [H / c.numAttentionHeads]),
      await store.readF32(`${prefix}.relative_k_proj.weight`, [H, H]),
    );
  }

  /** x [T, H] (not modified) with the step mask [T] (1 = valid) → post(attention) [T, H]. */
  forward(x: Float32Array, mask: Uint8Array, T: number): Float32Array {
    const H = this.c.hiddenSize, nH = this.heads, hd = this.headDim, cap = this.c.attentionLogitCap;
    const q = this.q_proj.forward(x.slice(), T), k = this.k_proj.forward(x.slice(), T), v = this.v_proj.forward(x.slice(), T);
    for (let t = 0; t < T; t++) {
      for (let i = 0; i < H; i++) {
        q[t * H + i] = Math.fround(q[t * H + i] * this.queryScale[i % hd]);
        k[t * H + i] = Math.fround(k[t * H + i] * this.keyScale);
      }
    }
    const ctx = new Float32Array(T * H);
    const span = this.maxPast + this.maxFuture + 1;
    const logits = new Float64Array(span);
    for (let t = 0; t < T; t++) {
      for (let h = 0; h < nH; h++) {
        const qo = t * H + h * hd;
        let max = -Infinity;
        for (let j = 0; j < span; j++) {
          const s = t - this.maxPast + j; // key step; distance d = t − s = maxPast − j
          let z = this.c.attentionInvalidLogitsValue;
          if (s >= 0 && s < T && mask[s]) {
            let ac = 0, bd = 0;
            const ko = s * H + h * hd, ro = j * H + h * hd;
            for (let d = 0; d < hd; d++) { ac += q[qo + d] * k[ko + d]; bd += q[qo + d] * this.relEmb[ro + d]; }
            const l = Math.fround(Math.fround(ac) + Math.fround(bd));
            z = Math.fround(Math.tanh(l / cap) * cap);
          }
          logits[j] = z;
          if (z > max) max = z;
        }
        let sum = 0;
        for (let j = 0; j < span; j++) { logits[j] = Math.fround(Math.exp(logits[j] - max)); sum += logits[j]; }
        for (let j = 0; j < span; j++) {
          const s = t - this.maxPast + j;
          if (s < 0 || s >= T) continue;
          const p = logits[j] / sum;
          if (p === 0) continue;
          const vo = s * H + h * hd;
          for (let d = 0; d < hd; d++) ctx[qo + d] += p * v[vo + d];
        }
      }
    }
    return this.post.forward(ctx, T);
  }

  release(): void {
    for (const l of [this.q_proj, this.k_proj, this.v_proj, this.post]) l.release();
  }
}
