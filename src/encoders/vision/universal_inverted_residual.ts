/**
 * UniversalInvertedResidual (UIB) [MobileNetV4, arXiv:2404.10518 §3.2;
 * timm/models/_efficientnet_blocks.py UniversalInvertedResidual]. One block type that covers
 * the inverted bottleneck (IB), ConvNeXt-like, "ExtraDW" and FFN variants by switching its two
 * optional depthwise convs on or off:
 *
 *   dw_start (a×a depthwise, RmsNorm2d, no act; stride 1 when dw_mid exists)   if a ≠ 0
 *   → pw_exp (1×1 in → in·e, RmsNorm2d + GELU)
 *   → dw_mid (k×k depthwise, carries the stride, RmsNorm2d + GELU)             if k ≠ 0
 *   → pw_proj (1×1 → out, RmsNorm2d, no act)
 *   → layer_scale (× gamma per channel)                                        if present
 *   → + x  iff in == out, stride 1 and not noskip
 *
 * mobilenetv5_300m_enc uses a3/a5 with k0 (ExtraDW-less "ConvNeXt-like"), a3/a5 with k5 s2
 * (stage-entry downsampling), a0 k0 (FFN after each attention block, and the MSFA FFN).
 */
import type { Kernels } from '../../kernels/kernels.js';
import { makeDivisible, type UirArgs } from './arch.js';
import { ConvNormAct } from './norm_act.js';
import { recycle, type FeatureMap, type TensorReader } from './tensor.js';

export class UniversalInvertedResidual {
  private constructor(
    readonly args: UirArgs,
    private readonly dwStart: ConvNormAct | null,
    private readonly pwExp: ConvNormAct,
    private readonly dwMid: ConvNormAct | null,
    private readonly pwProj: ConvNormAct,
    private readonly gamma: Float32Array | null,
    readonly hasSkip: boolean,
  ) {}

  /**
   * `layerScale`: whether the block has `layer_scale.gamma` (trunk blocks: yes; MSFA FFN: no).
   * `noskip`: never add the shortcut (MSFA FFN).
   */
  static async load(
    r: TensorReader, prefix: string, inChs: number, a: UirArgs, kernels: Kernels,
    opts: { layerScale: boolean; noskip?: boolean } = { layerScale: true },
  ): Promise<UniversalInvertedResidual> {
    const mid = makeDivisible(inChs * a.expRatio);
    const startStride = a.dwMid ? 1 : a.stride; // the stride sits on dw_mid when there is one
    if (!a.dwStart && !a.dwMid && a.stride !== 1) throw new Error(`${prefix}: a strided UIR needs a depthwise conv`);
    const dwStart = a.dwStart
      ? await ConvNormAct.load(r, `${prefix}dw_start.`, kernels, { kind: 'depthwise', inChs, outChs: inChs, kernel: a.dwStart, stride: startStride, act: false })
      : null;
    const pwExp = await ConvNormAct.load(r, `${prefix}pw_exp.`, kernels, { kind: 'pointwise', inChs, outChs: mid, kernel: 1, stride: 1, act: true });
    const dwMid = a.dwMid
      ? await ConvNormAct.load(r, `${prefix}dw_mid.`, kernels, { kind: 'depthwise', inChs: mid, outChs: mid, kernel: a.dwMid, stride: a.stride, act: true })
      : null;
    const pwProj = await ConvNormAct.load(r, `${prefix}pw_proj.`, kernels, { kind: 'pointwise', inChs: mid, outChs: a.outChs, kernel: 1, stride: 1, act: false });
    const gamma = opts.layerScale ? await r.readF32(`${prefix}layer_scale.gamma`, [a.outChs]) : null;
    const hasSkip = !opts.noskip && inChs === a.outChs && a.stride === 1;
    return new UniversalInvertedResidual(a, dwStart, pwExp, dwMid, pwProj, gamma, hasSkip);
  }

  forward(x: FeatureMap): FeatureMap {
    const a = this.dwStart ? this.dwStart.forward(x) : x;
    const b = this.pwExp.forward(a);
    if (a !== x) recycle(a);
    const c = this.dwMid ? this.dwMid.forward(b) : b;
    if (c !== b) recycle(b);
    const y = this.pwProj.forward(c, { gamma: this.gamma, residual: this.hasSkip ? x : null }); // norm, × gamma, + x in one pass
    recycle(c);
    return y;
  }

  release(): void {
    this.dwStart?.release();
    this.pwExp.release();
    this.dwMid?.release();
    this.pwProj.release();
  }
}
