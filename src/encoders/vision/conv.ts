/**
 * Convolutions of the MobileNet-V5 tower, on channels-last maps (see tensor.ts).
 *
 *   - PointwiseConv: a 1×1 conv is a linear over the H·W pixel rows → `kernels.linear`.
 *   - Conv2d: a full (groups = 1) k×k conv, lowered a few output rows at a time to a patch
 *     matrix (im2col) and one `kernels.linear` call, so fast backends accelerate it too.
 *   - DepthwiseConv2d: groups = channels, a direct loop with channels innermost (contiguous):
 *     `kernels.depthwiseConv2d` (WASM) or its plain-TS twin (src/kernels/tower_ops.ts).
 *
 * Padding follows timm's `pad_type='same'`: TensorFlow "SAME" (Conv2dSame / pad_same), output
 * ceil(in / stride), the extra row/column going to the bottom/right. For stride 1 and odd k
 * this is the ordinary symmetric (k−1)/2; for stride 2 it is asymmetric: k3 on even input →
 * (0, 1), k5 → (1, 2) [timm/layers/padding.py get_same_padding, pad_same].
 */
import type { Kernels, LinearWeight } from '../../kernels/kernels.js';
import { depthwiseConv2d } from '../../kernels/tower_ops.js';
import { convTapsLast, loadTowerLinear, type TowerWeights } from '../tower_weights.js';
import { copyFloats, outputMap, recycle, type FeatureMap } from './tensor.js';

export interface SamePadding {
  /** Output size ceil(in / stride). */
  readonly out: number;
  /** Zero rows/columns added before (top/left) and after (bottom/right). */
  readonly before: number;
  readonly after: number;
}

/** TF "SAME": total = max((ceil(in/s) − 1)·s + (k − 1)·d + 1 − in, 0), split floor/ceil. */
export function samePadding(inSize: number, kernel: number, stride: number, dilation = 1): SamePadding {
  const out = Math.ceil(inSize / stride);
  const total = Math.max((out - 1) * stride + (kernel - 1) * dilation + 1 - inSize, 0);
  const before = Math.floor(total / 2);
  return { out, before, after: total - before };
}

/** 1×1 convolution (no bias): y[p, o] = Σ_i W[o, i] · x[p, i]. Weight [O, I, 1, 1] = [O, I]. */
export class PointwiseConv {
  private constructor(private readonly kernels: Kernels, readonly weight: LinearWeight, readonly inChs: number, readonly outChs: number) {}

  static create(kernels: Kernels, w: Float32Array, outChs: number, inChs: number): PointwiseConv {
    return new PointwiseConv(kernels, kernels.createLinear(w, outChs, inChs), inChs, outChs);
  }

  /** From checkpoint tensor `name` [O, I, 1, 1] (packed int4 or quantized per tower_weights.ts when the reader asks). */
  static async load(r: TowerWeights, name: string, outChs: number, inChs: number, kernels: Kernels): Promise<PointwiseConv> {
    return new PointwiseConv(kernels, await loadTowerLinear(r, name, [outChs, inChs, 1, 1], kernels), inChs, outChs);
  }

  forward(x: FeatureMap): FeatureMap {
    if (x.c !== this.inChs) throw new Error(`PointwiseConv: input has ${x.c} channels, expected ${this.inChs}`);
    const y = outputMap(x.h, x.w, this.outChs, this.kernels);
    this.kernels.linear(this.weight, x.data, x.h * x.w, y.data);
    return y;
  }

  release(): void {
    this.kernels.release(this.weight);
  }
}

/** Largest patch matrix built at once by Conv2d (values): bounds memory, keeps T large. */
const IM2COL_BUDGET = 1 << 21;

/**
 * Full k×k convolution with stride and SAME padding, optional bias. The weight
 * [O, I, kh, kw] is reordered to [O, kh, kw, I] so a patch row (ky, kx, c) lines up with it.
 */
export class Conv2d {
  private constructor(
    private readonly kernels: Kernels,
    private readonly weight: LinearWeight,
    private readonly bias: Float32Array | null,
    readonly inChs: number,
    readonly outChs: number,
    readonly kernel: number,
    readonly stride: number,
  ) {}

  /** `w` is PyTorch's [O, I, k, k]. */
  static create(kernels: Kernels, w: Float32Array, bias: Float32Array | null, outChs: number, inChs: number, kernel: number, stride: number): Conv2d {
    const kk = kernel * kernel;
    if (w.length !== outChs * inChs * kk) throw new Error(`Conv2d: ${w.length} weights for [${outChs}, ${inChs}, ${kernel}, ${kernel}]`);
    return new Conv2d(kernels, kernels.createLinear(convTapsLast(w, outChs, inChs, kk), outChs, kk * inChs), bias, inChs, outChs, kernel, stride);
  }

  /** From checkpoint tensor `name` [O, I, k, k] (packed int4 = already [O, k, k, I]; see tower_weights.ts). */
  static async load(r: TowerWeights, name: string, bias: Float32Array | null, outChs: number, inChs: number, kernel: number, stride: number, kernels: Kernels): Promise<Conv2d> {
    const w = await loadTowerLinear(r, name, [outChs, inChs, kernel, kernel], kernels, 'conv_taps_last');
    return new Conv2d(kernels, w, bias, inChs, outChs, kernel, stride);
  }

  forward(x: FeatureMap): FeatureMap {
    const { h, w, c } = x;
    if (c !== this.inChs) throw new Error(`Conv2d: input has ${c} channels, expected ${this.inChs}`);
    const k = this.kernel, s = this.stride;
    const ph = samePadding(h, k, s), pw = samePadding(w, k, s);
    const oh = ph.out, ow = pw.out, O = this.outChs;
    const y = outputMap(oh, ow, O, this.kernels);
    const patchLen = k * k * c;
    const rowsPerChunk = Math.max(1, Math.floor(IM2COL_BUDGET / (ow * patchLen)));
    const patchMap = outputMap(Math.min(rowsPerChunk, oh), ow, patchLen, this.kernels), patches = patchMap.data;
    const src = x.data;
    for (let oy0 = 0; oy0 < oh; oy0 += rowsPerChunk) {
      const oy1 = Math.min(oh, oy0 + rowsPerChunk);
      // im2col: one patch row per output pixel, (ky, kx, c) order, zeros outside the input.
      patches.fill(0);
      let p = 0;
      for (let oy = oy0; oy < oy1; oy++) {
        for (let ox = 0; ox < ow; ox++, p += patchLen) {
          for (let ky = 0; ky < k; ky++) {
            const iy = oy * s - ph.before + ky;
            if (iy < 0 || iy >= h) continue;
            for (let kx = 0; kx < k; kx++) {
              const ix = ox * s - pw.before + kx;
              if (ix < 0 || ix >= w) continue;
              const from = (iy * w + ix) * c;
              copyFloats(src.subarray(from, from + c), patches, p + (ky * k + kx) * c);
            }
          }
        }
      }
      const T = (oy1 - oy0) * ow;
      this.kernels.linear(this.weight, patches.subarray(0, T * patchLen), T, y.data.subarray(oy0 * ow * O, oy1 * ow * O));
    }
    recycle(patchMap);
    if (this.bias) {
      const b = this.bias, d = y.data;
      for (let q = 0; q < oh * ow; q++) for (let o = 0; o < O; o++) d[q * O + o] += b[o];
    }
    return y;
  }

  release(): void {
    this.kernels.release(this.weight);
  }
}

/** Depthwise k×k convolution (groups = channels, no bias), stride and SAME padding. */
export class DepthwiseConv2d {
  /** Taps-major weights [kh·kw, C]: the inner loop runs over contiguous channels. */
  private readonly taps: Float32Array;

  /** `kernels`: runs on its depthwiseConv2d when it has one (WasmKernels), else in plain TS. */
  constructor(w: Float32Array, readonly channels: number, readonly kernel: number, readonly stride: number, private readonly kernels?: Kernels) {
    const kk = kernel * kernel;
    if (w.length !== channels * kk) throw new Error(`DepthwiseConv2d: ${w.length} weights for [${channels}, 1, ${kernel}, ${kernel}]`);
    this.taps = new Float32Array(w.length);
    for (let ch = 0; ch < channels; ch++) for (let t = 0; t < kk; t++) this.taps[t * channels + ch] = w[ch * kk + t];
  }

  forward(x: FeatureMap): FeatureMap {
    const { h, w, c } = x;
    if (c !== this.channels) throw new Error(`DepthwiseConv2d: input has ${c} channels, expected ${this.channels}`);
    const k = this.kernel, s = this.stride;
    const ph = samePadding(h, k, s), pw = samePadding(w, k, s);
    const y = outputMap(ph.out, pw.out, c, this.kernels);
    const p = { x: x.data, h, w, c, taps: this.taps, kernel: k, stride: s, padTop: ph.before, padLeft: pw.before, outH: ph.out, outW: pw.out, out: y.data };
    if (this.kernels?.depthwiseConv2d) this.kernels.depthwiseConv2d(p);
    else depthwiseConv2d(p);
    return y;
  }
}
