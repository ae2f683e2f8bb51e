/**
 * One USM conformer block (`Gemma3nAudioConformerBlock`) and its four modules:
 *
 *   x = ffw_layer_start(x)          half-step feed-forward   (Conformer, arXiv:2005.08100)
 *   x = attention(x)                chunked local attention with relative positions
 *   x = x · valid                   padded steps zeroed before the convolution
 *   x = lconv1d(x)                  GLU → causal depthwise conv → SiLU
 *   x = ffw_layer_end(x)
 *   x = norm(clamp(x))
 *
 * `clamp` is torch.clamp(±gradient_clipping): 1e10 (a no-op) in the real model, but it sits at six
 * sites and is part of the math. Every RMSNorm here uses its weight as is (not 1 + w).
 */
import type { Kernels } from '../../kernels/kernels.js';
import type { Tracer } from '../../model/trace.js';
import type { TowerWeights } from '../tower_weights.js';
import { rmsNorm } from '../../model/ops.js';
import { AudioAttention } from './attention.js';
import type { AudioConfig } from './config.js';
import { Linear, clampInPlace, loadVector, sigmoid, siluInPlace } from './nn.js';

/** eps of the Gemma3nRMSNorm instances built without an explicit eps (the default 1e-6). */
const DEFAULT_RMS_EPS = 1e-6;

/** The trace hook (src/model/trace.ts) on named intermediates, [T, dim]. Costs nothing when absent. */
export type BlockHook = Tracer;

/** `Gemma3nAudioConformerFeedForward`: x + 0.5 · post_norm(clamp(W2 · silu(W1 · pre_norm(clamp(x))))). */
export class ConformerFeedForward {
  private constructor(
    readonly preNorm: Float32Array, // [D]
    readonly ffw1: Linear, // [4D, D]
    readonly ffw2: Linear, // [D, 4D]
    readonly postNorm: Float32Array, // [D]
    readonly cfg: AudioConfig,
  ) {}

  static async load(ckpt: TowerWeights, kernels: Kernels, prefix: string, cfg: AudioConfig): Promise<ConformerFeedForward> {
    const D = cfg.hiddenSize;
    return new ConformerFeedForward(
      await loadVector(ckpt, `${prefix}.pre_layer_norm.weight`, D),
      await Linear.load(ckpt, kernels, `${prefix}.ffw_layer_1.weight`, 4 * D, D),
      await Linear.load(ckpt, kernels, `${prefix}.ffw_layer_2.weight`, D, 4 * D),
      await loadVector(ckpt, `${prefix}.post_layer_norm.weight`, D),
      cfg,
    );
  }

  /** x [T, D] → new [T, D]; the residual is the unclamped input. */
  forward(x: Float32Array, T: number): Float32Array {
    const D = this.cfg.hiddenSize, clip = this.cfg.gradientClipping;
    const h = Float32Array.from(x);
    clampInPlace(h, clip);
    rmsNorm(h, this.preNorm, T, D, DEFAULT_RMS_EPS);
    const u = this.ffw1.forward(h, T);
    siluInPlace(u);
    const y = this.ffw2.forward(u, T, h);
    clampInPlace(y, clip);
    rmsNorm(y, this.postNorm, T, D, DEFAULT_RMS_EPS);
    const scale = Math.fround(this.cfg.confResidualWeight);
    for (let i = 0; i < T * D; i++) y[i] = x[i] + Math.fround(y[i] * scale);
    return y;
  }

  release(): void {
    this.ffw1.release();
    this.ffw2.release();
  }
}

/** `Gemma3nAudioConformerAttention`: x + post_norm(clamp(post(attn(pre_attn_norm(clamp(x)))))). */
export class ConformerAttention {
  private constructor(
    readonly preAttnNorm: Float32Array,
    readonly attn: AudioAttention,
    readonly post: Linear, // [D, D]
    readonly postNorm: Float32Array,
    readonly cfg: AudioConfig,
  ) {}

  static async load(ckpt: TowerWeights, kernels: Kernels, prefix: string, cfg: AudioConfig): Promise<ConformerAttention> {
    const D = cfg.hiddenSize;
    return new ConformerAttention(
      await loadVector(ckpt, `${prefix}.pre_attn_norm.weight`, D),
      await AudioAttention.load(ckpt, kernels, `${prefix}.attn`, cfg),
      await Linear.load(ckpt, kernels, `${prefix}.post.weight`, D, D),
      await loadVector(ckpt, `${prefix}.post_norm.weight`, D),
      cfg,
    );
  }

  forward(x: Float32Array, T: number, valid: Uint8Array, hook?: BlockHook): Float32Array {
    const D = this.cfg.hiddenSize, clip = this.cfg.gradientClipping;
    const h = Float32Array.from(x);
    clampInPlace(h, clip);
    rmsNorm(h, this.preAttnNorm, T, D, DEFAULT_RMS_EPS);
    const ctx = this.attn.forward(h, T, valid); // [T, H·hd]
    hook?.('attention.attn_out', ctx, [T, D]);
    const y = this.post.forward(ctx, T, h);
    clampInPlace(y, clip);
    rmsNorm(y, this.postNorm, T, D, DEFAULT_RMS_EPS);
    for (let i = 0; i < T * D; i++) y[i] += x[i];
    return y;
  }

  release(): void {
    this.attn.release();
    this.post.release();
  }
}

/**
 * `Gemma3nAudioConformerLightConv1d`: x + linear_end(silu(conv_norm(clamp(dwconv(glu(linear_start(pre_norm(x)))))))),
 * where dwconv is a depthwise causal conv (left padding K − 1, no bias).
 */
export class ConformerLightConv1d {
  private constructor(
    readonly preNorm: Float32Array,
    readonly linearStart: Linear, // [2D, D]
    readonly depthwise: Float32Array, // [D, 1, K]
    readonly convNorm: Float32Array,
    readonly linearEnd: Linear, // [D, D]
    readonly cfg: AudioConfig,
  ) {}

  static async load(ckpt: TowerWeights, kernels: Kernels, prefix: string, cfg: AudioConfig): Promise<ConformerLightConv1d> {
    const D = cfg.hiddenSize, K = cfg.confConvKernelSize;
    return new ConformerLightConv1d(
      await loadVector(ckpt, `${prefix}.pre_layer_norm.weight`, D),
      await Linear.load(ckpt, kernels, `${prefix}.linear_start.weight`, 2 * D, D),
      await ckpt.readF32(`${prefix}.depthwise_conv1d.weight`, [D, 1, K]),
      await loadVector(ckpt, `${prefix}.conv_norm.weight`, D),
      await Linear.load(ckpt, kernels, `${prefix}.linear_end.weight`, D, D),
      cfg,
    );
  }

  forward(x: Float32Array, T: number): Float32Array {
    const D = this.cfg.hiddenSize, K = this.cfg.confConvKernelSize, eps = this.cfg.rmsNormEps;
    const h = rmsNorm(x, this.preNorm, T, D, eps, new Float32Array(T * D));
    const ab = this.linearStart.forward(h, T); // [T, 2D]
    // GLU over the last dim: first half · sigmoid(second half).
    const g = h;
    for (let t = 0; t < T; t++) {
      const o = t * 2 * D;
      for (let d = 0; d < D; d++) g[t * D + d] = ab[o + d] * sigmoid(ab[o + D + d]);
    }
    // Depthwise causal conv: y[t, d] = Σ_k w[d, k] · g[t − (K − 1) + k, d].
    const w = this.depthwise;
    const c = new Float32Array(T * D);
    for (let t = 0; t < T; t++) {
      for (let d = 0; d < D; d++) {
        let acc = 0;
        for (let k = 0; k < K; k++) {
          const s = t - (K - 1) + k;
          if (s >= 0) acc += w[d * K + k] * g[s * D + d];
        }
        c[t * D + d] = acc;
      }
    }
    clampInPlace(c, this.cfg.gradientClipping);
    rmsNorm(c, this.convNorm, T, D, eps);
    siluInPlace(c);
    const y = this.linearEnd.forward(c, T, g);
    for (let i = 0; i < T * D; i++) y[i] += x[i];
    return y;
  }

  release(): void {
    this.linearStart.release();
    this.linearEnd.release();
  }
}

export class ConformerBlock {
  private constructor(
    readonly ffwLayerStart: ConformerFeedForward,
    readonly attention: ConformerAttention,
    readonly lconv1d: ConformerLightConv1d,
    readonly ffwLayerEnd: ConformerFeedForward,
    readonly norm: Float32Array,
    readonly cfg: AudioConfig,
  ) {}

  static async load(ckpt: TowerWeights, kernels: Kernels, prefix: string, cfg: AudioConfig): Promise<ConformerBlock> {
    return new ConformerBlock(
      await ConformerFeedForward.load(ckpt, kernels, `${prefix}.ffw_layer_start`, cfg),
      await ConformerAttention.load(ckpt, kernels, `${prefix}.attention`, cfg),
      await ConformerLightConv1d.load(ckpt, kernels, `${prefix}.lconv1d`, cfg),
      await ConformerFeedForward.load(ckpt, kernels, `${prefix}.ffw_layer_end`, cfg),
      await loadVector(ckpt, `${prefix}.norm.weight`, cfg.hiddenSize),
      cfg,
    );
  }

  /** x [T, D], valid [T] (1 = real step) → [T, D]. */
  forward(x: Float32Array, T: number, valid: Uint8Array, hook?: BlockHook): Float32Array {
    const D = this.cfg.hiddenSize;
    x = this.ffwLayerStart.forward(x, T);
    hook?.('ffw_layer_start_out', x, [T, D]);
    x = this.attention.forward(x, T, valid, hook);
    hook?.('attention_out', x, [T, D]);
    for (let t = 0; t < T; t++) if (!valid[t]) x.fill(0, t * D, (t + 1) * D);
    x = this.lconv1d.forward(x, T);
    hook?.('lconv1d_out', x, [T, D]);
    x = this.ffwLayerEnd.forward(x, T);
    hook?.('ffw_layer_end_out', x, [T, D]);
    clampInPlace(x, this.cfg.gradientClipping);
    rmsNorm(x, this.norm, T, D, DEFAULT_RMS_EPS);
    hook?.('out', x, [T, D]);
    return x;
  }

  release(): void {
    this.ffwLayerStart.release();
    this.attention.release();
    this.lconv1d.release();
    this.ffwLayerEnd.release();
  }
}
