/**
 * Sub-sample conv projection (`Gemma3nAudioSubSampleConvProjection`): two stride-2 3×3 convs over
 * (time, freq), each followed by a cumulative group norm and ReLU, then a linear projection of the
 * flattened (freq, channel) plane to the conformer width. Time is divided by 4: T → ⌈T/2⌉ → ⌈T/4⌉,
 * and frequency 128 → 64 → 32.
 *
 * Activations here are channels-last [T, F, C] (the reference permutes to this layout for the norm
 * and the flatten), so each conv is an im2col followed by one `kernels.linear`.
 */
import type { Kernels } from '../../kernels/kernels.js';
import type { Tracer } from '../../model/trace.js';
import { loadTowerLinear, type TowerWeights } from '../tower_weights.js';
import type { AudioConfig } from './config.js';
import { Linear, loadVector } from './nn.js';

/** Output steps processed per im2col slab: bounds the scratch memory for long clips. */
const SLAB_STEPS = 32;

/** One `Gemma3nAudioSSCPConvBlock`: manual pad → Conv2d (no bias) → cumulative group norm → ReLU. */
export class SSCPConvBlock {
  private constructor(
    /** Conv weight [Cout, Cin·kh·kw] as a linear over im2col rows. */
    readonly conv: Linear,
    /** Group norm scale per output channel [Cout]. */
    readonly normWeight: Float32Array,
    readonly inChannels: number,
    readonly outChannels: number,
    readonly inFreq: number,
    readonly kernel: [number, number],
    readonly stride: [number, number],
    readonly eps: number,
  ) {}

  static async load(ckpt: TowerWeights, kernels: Kernels, prefix: string, cfg: AudioConfig, idx: number, inFreq: number): Promise<SSCPConvBlock> {
    const cin = idx === 0 ? 1 : cfg.sscpConvChannelSize[idx - 1];
    const cout = cfg.sscpConvChannelSize[idx];
    const [kh, kw] = cfg.sscpConvKernelSize[idx];
    // Conv2d weight [Cout, Cin, kh, kw] is, row-major, exactly a [Cout, Cin·kh·kw] linear weight.
    const conv = new Linear(kernels, await loadTowerLinear(ckpt, `${prefix}.conv.weight`, [cout, cin, kh, kw], kernels));
    const norm = await loadVector(ckpt, `${prefix}.norm.weight`, cout);
    return new SSCPConvBlock(conv, norm, cin, cout, inFreq, [kh, kw], cfg.sscpConvStrideSize[idx], cfg.sscpConvGroupNormEps);
  }

  /** Frequency bins out: pad (1, 1), then a valid conv: (F + 2 − kw) / sw + 1. */
  get outFreq(): number {
    return Math.floor((this.inFreq + 2 - this.kernel[1]) / this.stride[1]) + 1;
  }

  /** Time steps out: pad (0, kh − 1) at the end only ("reverse causal"), so T_out = (T − 1) / sh + 1. */
  outSteps(T: number): number {
    return Math.floor((T + this.kernel[0] - 1 - this.kernel[0]) / this.stride[0]) + 1;
  }

  /** x [T, inFreq, Cin] → [T_out, outFreq, Cout]. */
  forward(x: Float32Array, T: number): Float32Array {
    const { inChannels: Cin, outChannels: Cout, inFreq: F } = this;
    const [kh, kw] = this.kernel, [sh, sw] = this.stride;
    const To = this.outSteps(T), Fo = this.outFreq, K = Cin * kh * kw;
    const y = new Float32Array(To * Fo * Cout);
    const cols = new Float32Array(Math.min(SLAB_STEPS, To) * Fo * K);
    for (let t0 = 0; t0 < To; t0 += SLAB_STEPS) {
      const t1 = Math.min(To, t0 + SLAB_STEPS);
      // im2col: row (t, f), column (ci, i, j) ← x[sh·t + i, sw·f + j − 1, ci]; zero outside the input
      // (freq padding 1 on each side, time padding kh − 1 at the end).
      cols.fill(0);
      for (let t = t0; t < t1; t++) {
        for (let f = 0; f < Fo; f++) {
          const row = ((t - t0) * Fo + f) * K;
          for (let i = 0; i < kh; i++) {
            const ti = sh * t + i;
            if (ti >= T) continue;
            for (let j = 0; j < kw; j++) {
              const fi = sw * f + j - 1;
              if (fi < 0 || fi >= F) continue;
              const src = (ti * F + fi) * Cin;
              for (let ci = 0; ci < Cin; ci++) cols[row + (ci * kh + i) * kw + j] = x[src + ci];
            }
          }
        }
      }
      this.conv.forward(cols, (t1 - t0) * Fo, y.subarray(t0 * Fo * Cout, t1 * Fo * Cout));
    }
    cumulativeGroupNorm(y, To, Fo * Cout, Cout, this.normWeight, this.eps);
    for (let i = 0; i < y.length; i++) if (y[i] < 0) y[i] = 0; // ReLU
    return y;
  }
}

/**
 * `Gemma3nAudioCumulativeGroupNorm` (one group, cumulative over time), in place on x [T, G] where
 * G = F·C holds the group of step t with channels fastest:
 *   m_t = Σ_{t'≤t} Σ x_{t'} / (G·(t+1)),
 *   v_t = Σ_{t'≤t} Σ (x_{t'} − m_{t'})² / (G·(t+1))   (each step against its *own* running mean),
 *   y = (x − m_t) · (v_t + eps)^-½ · w[c].
 * No masking: padded steps only affect later (padded) steps. Accumulated in float64.
 */
export function cumulativeGroupNorm(x: Float32Array, T: number, G: number, C: number, w: Float32Array, eps: number): void {
  let sum = 0, sumSq = 0;
  for (let t = 0; t < T; t++) {
    const o = t * G;
    for (let i = 0; i < G; i++) sum += x[o + i];
    const count = G * (t + 1);
    const mean = sum / count;
    for (let i = 0; i < G; i++) { const d = x[o + i] - mean; sumSq += d * d; }
    const inv = 1 / Math.sqrt(sumSq / count + eps);
    for (let i = 0; i < G; i++) x[o + i] = (x[o + i] - mean) * inv * w[i % C];
  }
}

export class SubSampleConvProjection {
  private constructor(readonly conv0: SSCPConvBlock, readonly conv1: SSCPConvBlock, readonly inputProj: Linear, readonly inFeat: number) {}

  static async load(ckpt: TowerWeights, kernels: Kernels, prefix: string, cfg: AudioConfig): Promise<SubSampleConvProjection> {
    const conv0 = await SSCPConvBlock.load(ckpt, kernels, `${prefix}.conv_0`, cfg, 0, cfg.inputFeatSize);
    const conv1 = await SSCPConvBlock.load(ckpt, kernels, `${prefix}.conv_1`, cfg, 1, conv0.outFreq);
    const inputProj = await Linear.load(ckpt, kernels, `${prefix}.input_proj_linear.weight`, cfg.hiddenSize, conv1.outFreq * conv1.outChannels);
    return new SubSampleConvProjection(conv0, conv1, inputProj, cfg.inputFeatSize);
  }

  outSteps(T: number): number {
    return this.conv1.outSteps(this.conv0.outSteps(T));
  }

  /**
   * features [T, inFeat] → [T_sub, hidden]. `hook` sees each conv block output as channels-last
   * [T, F, C] (the golden files store NCHW; the encoder's trace converts).
   */
  forward(features: Float32Array, T: number, hook?: Tracer): Float32Array {
    const a = this.conv0.forward(features, T); // [T0, F0, C0]
    const T0 = this.conv0.outSteps(T);
    hook?.('conv_0_out', a, [T0, this.conv0.outFreq, this.conv0.outChannels]);
    const b = this.conv1.forward(a, T0); // [T1, F1, C1]
    const T1 = this.conv1.outSteps(T0);
    hook?.('conv_1_out', b, [T1, this.conv1.outFreq, this.conv1.outChannels]);
    // Flatten (F1, C1) with channels fastest — input index f·C + c — and project.
    return this.inputProj.forward(b, T1);
  }

  release(): void {
    this.conv0.conv.release();
    this.conv1.conv.release();
    this.inputProj.release();
  }
}
