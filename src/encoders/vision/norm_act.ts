/**
 * The norm/activation pieces shared by every MobileNet-V5 block, and ConvNormAct.
 *
 * RmsNorm2d [timm/layers/norm.py]: per pixel, over channels, x · rsqrt(mean_c(x²) + eps) · w,
 * eps 1e-6, weight used as is, no bias, no mean subtraction. In channels-last layout that is
 * the row RMSNorm of src/model/ops.ts over H·W rows of C values.
 * Activation: GELU with the tanh approximation (timm `gelu_tanh`, PyTorch approximate='tanh').
 */
import type { Kernels } from '../../kernels/kernels.js';
import { rmsNormAct } from '../../kernels/tower_ops.js';
import { geluTanhInPlace } from '../../model/ops.js';
import { Conv2d, DepthwiseConv2d, PointwiseConv } from './conv.js';
import type { FeatureMap, TensorReader } from './tensor.js';

/** RmsNorm2d eps of mobilenetv5_300m_enc [timm mobilenetv5.py: RmsNorm2d default eps 1e-6]. */
export const RMS_NORM_EPS = 1e-6;

/** What follows an RmsNorm2d in a block, applied in this order. */
export interface AfterNorm {
  /** GELU (tanh). */
  gelu?: boolean;
  /** LayerScale2d: · gamma per channel. */
  gamma?: Float32Array | null;
  /** The residual shortcut: + residual. */
  residual?: FeatureMap | null;
}

/**
 * RmsNorm2d in place: normalises each pixel's channel vector; then `after` (GELU, layer scale,
 * residual) in the same pass. On `kernels` that have rmsNormAct (WasmKernels) it runs there,
 * otherwise in plain TS (src/kernels/tower_ops.ts).
 */
export function rmsNorm2d(x: FeatureMap, weight: Float32Array, kernels?: Kernels, after: AfterNorm = {}): FeatureMap {
  if (weight.length !== x.c) throw new Error(`rmsNorm2d: weight has ${weight.length} values for ${x.c} channels`);
  const r = after.residual;
  if (r && (r.h !== x.h || r.w !== x.w || r.c !== x.c)) throw new Error(`residual: [${x.h}, ${x.w}, ${x.c}] + [${r.h}, ${r.w}, ${r.c}]`);
  const p = { x: x.data, rows: x.h * x.w, dim: x.c, weight, eps: RMS_NORM_EPS, gelu: after.gelu, gamma: after.gamma, residual: r?.data };
  if (kernels?.rmsNormAct) kernels.rmsNormAct(p);
  else rmsNormAct(p);
  return x;
}

export function geluInPlace(x: FeatureMap): FeatureMap {
  geluTanhInPlace(x.data);
  return x;
}

/** LayerScale2d: x · gamma per channel, in place (applied to a branch before its residual add). */
export function layerScale(x: FeatureMap, gamma: Float32Array): FeatureMap {
  const { data, c } = x;
  if (gamma.length !== c) throw new Error(`layerScale: gamma has ${gamma.length} values for ${c} channels`);
  for (let p = 0; p < data.length; p += c) for (let ch = 0; ch < c; ch++) data[p + ch] *= gamma[ch];
  return x;
}

/** x += r, in place (the residual shortcut). */
export function addInPlace(x: FeatureMap, r: FeatureMap): FeatureMap {
  if (x.data.length !== r.data.length) throw new Error(`residual: [${x.h}, ${x.w}, ${x.c}] + [${r.h}, ${r.w}, ${r.c}]`);
  const a = x.data, b = r.data;
  for (let i = 0; i < a.length; i++) a[i] += b[i];
  return x;
}

export type ConvKind = 'full' | 'depthwise' | 'pointwise';

/**
 * timm ConvNormAct: `conv` then `bn` (an RmsNorm2d despite the name) then optional GELU.
 * Weights: `<prefix>conv.weight` [O, I/groups, k, k] (+ `.conv.bias` for the stem), `<prefix>bn.weight`.
 */
export class ConvNormAct {
  private constructor(
    private readonly kernels: Kernels,
    private readonly conv: { forward(x: FeatureMap): FeatureMap; release?(): void },
    private readonly norm: Float32Array,
    readonly act: boolean,
  ) {}

  static async load(
    r: TensorReader, prefix: string, kernels: Kernels,
    o: { kind: ConvKind; inChs: number; outChs: number; kernel: number; stride: number; act: boolean; bias?: boolean },
  ): Promise<ConvNormAct> {
    const { kind, inChs, outChs, kernel: k, stride } = o;
    let conv: { forward(x: FeatureMap): FeatureMap; release?(): void };
    if (kind === 'pointwise') {
      if (stride !== 1) throw new Error(`${prefix}: strided 1×1 conv is not used by MobileNet-V5`);
      conv = await PointwiseConv.load(r, `${prefix}conv.weight`, outChs, inChs, kernels);
    } else if (kind === 'depthwise') {
      if (inChs !== outChs) throw new Error(`${prefix}: depthwise conv needs in == out channels`);
      conv = new DepthwiseConv2d(await r.readF32(`${prefix}conv.weight`, [outChs, 1, k, k]), outChs, k, stride, kernels);
    } else {
      const bias = o.bias ? await r.readF32(`${prefix}conv.bias`, [outChs]) : null;
      conv = await Conv2d.load(r, `${prefix}conv.weight`, bias, outChs, inChs, k, stride, kernels);
    }
    return new ConvNormAct(kernels, conv, await r.readF32(`${prefix}bn.weight`, [outChs]), o.act);
  }

  /** conv → norm → GELU if `act`; `after` adds a layer scale and residual in the norm's pass. */
  forward(x: FeatureMap, after: Omit<AfterNorm, 'gelu'> = {}): FeatureMap {
    return rmsNorm2d(this.conv.forward(x), this.norm, this.kernels, { ...after, gelu: this.act });
  }

  /** Frees the conv's kernel weight (depthwise taps are plain arrays). */
  release(): void {
    this.conv.release?.();
  }
}
