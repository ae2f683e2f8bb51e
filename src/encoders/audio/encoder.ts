/**
 * The Gemma 3n audio encoder (`Gemma3nAudioEncoder`, weights `model.audio_tower.*`), a USM-style
 * conformer [arXiv:2303.01037]:
 *
 *   features [B, T, 128] → sub-sample conv projection [B, T/4, D] → N conformer blocks
 *   → keep every 4th step (conf_reduction_factor) → zero the padded steps.
 *
 * 30 s of audio: 480000 samples → 2997 frames → 1499 → 750 → 188 tokens.
 *
 * Batch items never mix (every op is per item, and padding is only ever at the end), so the
 * batch is encoded one item at a time.
 */
import type { Kernels } from '../../kernels/kernels.js';
import type { Tracer } from '../../model/trace.js';
import type { TowerWeights } from '../tower_weights.js';
import type { AudioConfig } from './config.js';
import { ConformerBlock } from './conformer.js';
import { SubSampleConvProjection } from './sscp.js';

/** Encoder output for a batch. */
export interface AudioEncoding {
  /** [B, T', D], zero at padded steps. */
  hidden: Float32Array;
  /** [B, T'], 1 = PADDED (the reference encoder's convention, `audio_mel_mask`). */
  paddedMask: Uint8Array;
  batch: number;
  steps: number;
  hiddenSize: number;
}

/**
 * Tap on named per-item intermediates, in golden-file naming: `sscp.conv_0_out` [C, T, F],
 * `sscp.out` [T, D], `conformer.{i}.ffw_layer_start_out` [T, D], `conformer.{i}.attention.attn_out`
 * [T, H, hd], … `conformer.{i}.out` [T, D], called clip by clip (clip 0 first).
 */
export type EncoderHook = Tracer;

export class AudioEncoder {
  private constructor(
    readonly cfg: AudioConfig,
    readonly subsampleConvProjection: SubSampleConvProjection,
    readonly conformer: ConformerBlock[],
  ) {}

  /** Loads `${prefix}.subsample_conv_projection.*` and `${prefix}.conformer.{i}.*`. */
  static async load(ckpt: TowerWeights, cfg: AudioConfig, kernels: Kernels, prefix = 'model.audio_tower'): Promise<AudioEncoder> {
    const sscp = await SubSampleConvProjection.load(ckpt, kernels, `${prefix}.subsample_conv_projection`, cfg);
    const blocks: ConformerBlock[] = [];
    for (let i = 0; i < cfg.confNumHiddenLayers; i++) blocks.push(await ConformerBlock.load(ckpt, kernels, `${prefix}.conformer.${i}`, cfg));
    return new AudioEncoder(cfg, sscp, blocks);
  }

  /** Conformer steps for T frames (before the reduction). */
  subsampledSteps(T: number): number {
    return this.subsampleConvProjection.outSteps(T);
  }

  /** Output steps for T frames: ⌈T_sub / reduction⌉. */
  outputSteps(T: number): number {
    return Math.ceil(this.subsampledSteps(T) / this.cfg.confReductionFactor);
  }

  /**
   * features [B, T, inputFeatSize]; validMask [B, T] with 1 = valid frame, as the feature extractor
   * returns it (the model passes `~input_features_mask` to the encoder; we take the extractor's
   * form and invert here).
   */
  encode(features: Float32Array, validMask: Uint8Array, B: number, T: number, hook?: Tracer): AudioEncoding {
    const steps = this.steps(features, validMask, B, T, hook);
    for (;;) {
      const r = steps.next();
      if (r.done) return r.value;
    }
  }

  /**
   * The same, giving the event loop a turn after the sub-sampler and after every conformer block
   * (a 30 s clip takes seconds): a server's batched decode steps run in between (src/engine/towers.ts).
   */
  async encodeAsync(features: Float32Array, validMask: Uint8Array, B: number, T: number, hook?: Tracer): Promise<AudioEncoding> {
    const steps = this.steps(features, validMask, B, T, hook);
    for (;;) {
      const r = steps.next();
      if (r.done) return r.value;
      await new Promise((resolve) => setTimeout(resolve, 0));
    }
  }

  /** The encoder as a generator that pauses after the sub-sampler and after each conformer block. */
  private *steps(features: Float32Array, validMask: Uint8Array, B: number, T: number, hook?: Tracer): Generator<void, AudioEncoding> {
    const F = this.cfg.inputFeatSize, D = this.cfg.hiddenSize, R = this.cfg.confReductionFactor;
    if (features.length !== B * T * F) throw new Error(`audio encoder: features hold ${features.length} values, expected [${B}, ${T}, ${F}]`);
    if (validMask.length !== B * T) throw new Error(`audio encoder: mask holds ${validMask.length} values, expected [${B}, ${T}]`);
    const Ts = this.subsampledSteps(T);
    if (T < 1 || Ts < 1) throw new Error(`audio encoder: ${T} feature frames is too short to encode (the clip needs at least 513 samples)`);
    const To = Math.ceil(Ts / R);
    const hidden = new Float32Array(B * To * D);
    const paddedMask = new Uint8Array(B * To);
    // Time sub-sampling of the mask is by index, not pooling: mask_sub[t] = mask[min(t·4, T − 1)].
    const stride = this.cfg.sscpConvStrideSize[0][0] * this.cfg.sscpConvStrideSize[1][0];
    for (let b = 0; b < B; b++) {
      const valid = new Uint8Array(Ts);
      for (let t = 0; t < Ts; t++) valid[t] = validMask[b * T + Math.min(t * stride, T - 1)] ? 1 : 0;
      const x0 = features.subarray(b * T * F, (b + 1) * T * F);
      const sscpHook = hook && ((name: string, x: Float32Array, [t, f, c]: number[]) => hook(`sscp.${name}`, channelsFirst(x, t, f, c), [c, t, f]));
      let x = this.subsampleConvProjection.forward(x0, T, sscpHook);
      hook?.('sscp.out', x, [Ts, D]);
      for (let i = 0; i < this.conformer.length; i++) {
        yield;
        const blockHook = hook && ((name: string, y: Float32Array, [t, d]: number[]) => {
          const shape = name === 'attention.attn_out' ? [t, this.cfg.confNumAttentionHeads, d / this.cfg.confNumAttentionHeads] : [t, d];
          hook(`conformer.${i}.${name}`, y, shape);
        });
        x = this.conformer[i].forward(x, Ts, valid, blockHook);
      }
      // [:, ::R] then masked_fill(padded, 0).
      for (let t = 0; t < To; t++) {
        const padded = !valid[t * R];
        paddedMask[b * To + t] = padded ? 1 : 0;
        if (!padded) hidden.set(x.subarray(t * R * D, (t * R + 1) * D), (b * To + t) * D);
      }
    }
    return { hidden, paddedMask, batch: B, steps: To, hiddenSize: D };
  }

  release(): void {
    this.subsampleConvProjection.release();
    for (const blk of this.conformer) blk.release();
  }
}

/** [T, F, C] → [C, T, F] (the NCHW layout of the reference's conv outputs). */
function channelsFirst(x: Float32Array, T: number, F: number, C: number): Float32Array {
  const y = new Float32Array(x.length);
  for (let t = 0; t < T; t++) for (let f = 0; f < F; f++) for (let c = 0; c < C; c++) y[(c * T + t) * F + f] = x[(t * F + f) * C + c];
  return y;
}
