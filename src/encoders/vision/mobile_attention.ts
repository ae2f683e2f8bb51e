/**
 * MobileAttention with multi-query attention and down-sampled keys/values [MobileNetV4,
 * arXiv:2404.10518 §3.3 "Mobile MQA"; timm/layers/attention2d.py MultiQueryAttention2d,
 * timm/models/_efficientnet_blocks.py MobileAttention].
 *
 *   x → norm (RmsNorm2d, no act) → attn → layer_scale → + x   (always a residual, stride 1)
 *
 * attn: one query head per `numHeads`, ONE key head and ONE value head shared by all of them
 * (multi-query, arXiv:1911.02150). Keys and values may first be spatially down-sampled by a
 * depthwise k×k stride-`kvStride` SAME conv + RmsNorm2d (stage 2: 48×48 → 24×24, so 2304
 * queries attend to 576 keys), then projected 1×1 to key_dim / value_dim:
 *   q = query.proj(x)                          [N, heads·kd]  (channel = head·kd + j)
 *   k = key.proj(key.norm(key.down_conv(x)))   [M, kd]
 *   v = value.proj(value.norm(...))            [M, vd]
 *   o[n, head] = softmax((q[n, head] · kd^-½) kᵀ) v   over all M keys (no mask, no positions)
 *   out = output.proj(o)                        [N, heads·vd] → C
 *
 * Because K and V are shared, the queries of all heads form one [N·heads, kd] matrix (which is
 * exactly the channels-last layout of q), so attention is one unmasked softmax(Q·Kᵀ)·V over
 * N·heads query rows: `kernels.multiQueryAttention` (WASM: the two products as GEMMs, 16 rows
 * at a time) or its plain-TS twin (src/kernels/tower_ops.ts).
 */
import type { Kernels } from '../../kernels/kernels.js';
import { multiQueryAttention } from '../../kernels/tower_ops.js';
import type { MqaArgs } from './arch.js';
import { DepthwiseConv2d, PointwiseConv } from './conv.js';
import { addInPlace, layerScale, rmsNorm2d } from './norm_act.js';
import { copyFloats, outputMap, recycle, type FeatureMap, type TensorReader } from './tensor.js';

/** attn.key / attn.value: optional down_conv + norm, then proj. */
class KvProjection {
  constructor(
    private readonly downConv: DepthwiseConv2d | null,
    private readonly norm: Float32Array | null,
    private readonly proj: PointwiseConv,
    private readonly kernels: Kernels,
  ) {}

  static async load(r: TensorReader, prefix: string, inChs: number, dim: number, a: MqaArgs, kernels: Kernels): Promise<KvProjection> {
    let downConv: DepthwiseConv2d | null = null, norm: Float32Array | null = null;
    if (a.kvStride > 1) {
      downConv = new DepthwiseConv2d(await r.readF32(`${prefix}down_conv.weight`, [inChs, 1, a.dwKernel, a.dwKernel]), inChs, a.dwKernel, a.kvStride, kernels);
      norm = await r.readF32(`${prefix}norm.weight`, [inChs]);
    }
    const proj = await PointwiseConv.load(r, `${prefix}proj.weight`, dim, inChs, kernels);
    return new KvProjection(downConv, norm, proj, kernels);
  }

  forward(x: FeatureMap): FeatureMap {
    const y = this.downConv ? rmsNorm2d(this.downConv.forward(x), this.norm!, this.kernels) : x;
    const out = this.proj.forward(y);
    if (y !== x) recycle(y);
    return out;
  }

  release(): void {
    this.proj.release();
  }
}

export class MobileAttention {
  private constructor(
    readonly args: MqaArgs,
    private readonly kernels: Kernels,
    private readonly norm: Float32Array,
    private readonly query: PointwiseConv,
    private readonly key: KvProjection,
    private readonly value: KvProjection,
    private readonly output: PointwiseConv,
    private readonly gamma: Float32Array | null,
  ) {}

  static async load(r: TensorReader, prefix: string, inChs: number, a: MqaArgs, kernels: Kernels): Promise<MobileAttention> {
    if (inChs !== a.outChs || a.stride !== 1) throw new Error(`${prefix}: MobileAttention here needs in == out channels and stride 1`);
    const { numHeads: h, keyDim: kd, valueDim: vd } = a;
    const norm = await r.readF32(`${prefix}norm.weight`, [inChs]);
    const query = await PointwiseConv.load(r, `${prefix}attn.query.proj.weight`, h * kd, inChs, kernels);
    const key = await KvProjection.load(r, `${prefix}attn.key.`, inChs, kd, a, kernels);
    const value = await KvProjection.load(r, `${prefix}attn.value.`, inChs, vd, a, kernels);
    const output = await PointwiseConv.load(r, `${prefix}attn.output.proj.weight`, a.outChs, h * vd, kernels);
    const gamma = a.layerScale ? await r.readF32(`${prefix}layer_scale.gamma`, [a.outChs]) : null;
    return new MobileAttention(a, kernels, norm, query, key, value, output, gamma);
  }

  forward(x: FeatureMap): FeatureMap {
    const { numHeads: heads, keyDim: kd, valueDim: vd } = this.args;
    const xn = outputMap(x.h, x.w, x.c, this.kernels);
    copyFloats(x.data, xn.data);
    rmsNorm2d(xn, this.norm, this.kernels); // pre-norm
    const q = this.query.forward(xn); // [N, heads·kd] = [N·heads, kd]
    const k = this.key.forward(xn); // [M, kd]
    const v = this.value.forward(xn); // [M, vd]
    recycle(xn);
    const N = x.h * x.w, M = k.h * k.w;

    const scale = kd ** -0.5; // timm: self.scale = key_dim ** -0.5, applied to q before q·kᵀ
    const qs = q.data;
    for (let i = 0; i < qs.length; i++) qs[i] *= scale;

    // All heads' queries are rows of one [N·heads, kd] matrix against the one K/V head.
    const o = outputMap(x.h, x.w, heads * vd, this.kernels); // [N·heads, vd] = [N, heads·vd], channel = head·vd + j
    const p = { q: qs, k: k.data, v: v.data, rows: N * heads, M, kd, vd, out: o.data };
    if (this.kernels.multiQueryAttention) this.kernels.multiQueryAttention(p);
    else multiQueryAttention(p);
    recycle(q);
    recycle(k);
    recycle(v);

    const y = this.output.forward(o);
    recycle(o);
    if (this.gamma) layerScale(y, this.gamma);
    return addInPlace(y, x);
  }

  release(): void {
    this.query.release();
    this.key.release();
    this.value.release();
    this.output.release();
  }
}
