/**
 * EdgeResidual (FusedMBConv) [timm/models/_efficientnet_blocks.py EdgeResidual; EfficientNetV2,
 * arXiv:2104.00298]: a full k×k "expansion" conv replaces the depthwise + 1×1 pair of an
 * inverted residual. MobileNet-V5 uses it for stage 0 (high resolution, few channels).
 *
 *   conv_exp (k×k, groups 1, in → in·e, stride) → bn1 RmsNorm2d + GELU
 *   → conv_pwl (1×1, → out) → bn2 RmsNorm2d (no act) → + x  iff in == out and stride 1
 * No layer scale in ER blocks. Mid width is make_divisible(in_chs · e), not out_chs · e.
 */
import type { Kernels } from '../../kernels/kernels.js';
import { makeDivisible, type EdgeResidualArgs } from './arch.js';
import { Conv2d, PointwiseConv } from './conv.js';
import { rmsNorm2d } from './norm_act.js';
import { recycle, type FeatureMap, type TensorReader } from './tensor.js';

export class EdgeResidual {
  private constructor(
    readonly args: EdgeResidualArgs,
    private readonly convExp: Conv2d,
    private readonly bn1: Float32Array,
    private readonly convPwl: PointwiseConv,
    private readonly bn2: Float32Array,
    readonly hasSkip: boolean,
    private readonly kernels: Kernels,
  ) {}

  static async load(r: TensorReader, prefix: string, inChs: number, a: EdgeResidualArgs, kernels: Kernels): Promise<EdgeResidual> {
    const mid = makeDivisible(inChs * a.expRatio);
    const k = a.expKernel;
    const convExp = await Conv2d.load(r, `${prefix}conv_exp.weight`, null, mid, inChs, k, a.stride, kernels);
    const bn1 = await r.readF32(`${prefix}bn1.weight`, [mid]);
    const convPwl = await PointwiseConv.load(r, `${prefix}conv_pwl.weight`, a.outChs, mid, kernels);
    const bn2 = await r.readF32(`${prefix}bn2.weight`, [a.outChs]);
    return new EdgeResidual(a, convExp, bn1, convPwl, bn2, inChs === a.outChs && a.stride === 1, kernels);
  }

  forward(x: FeatureMap): FeatureMap {
    const mid = rmsNorm2d(this.convExp.forward(x), this.bn1, this.kernels, { gelu: true }); // expand
    const y = rmsNorm2d(this.convPwl.forward(mid), this.bn2, this.kernels, { residual: this.hasSkip ? x : null }); // project, no act
    recycle(mid);
    return y;
  }

  release(): void {
    this.convExp.release();
    this.convPwl.release();
  }
}
