/**
 * One Gemma 4 conformer layer [modeling_gemma4.py, Gemma4AudioLayer] (gc = gradient_clipping,
 * every norm an RMSNorm x·w, every projection a clipped linear):
 *
 *   x = ffw(x, feed_forward1)     ffw(x) = x + residual_weight · post_layer_norm(clamp(ffw_layer_2(silu(ffw_layer_1(pre_layer_norm(clamp(x)))))))
 *   x = x + norm_post_attn(clamp(self_attn(norm_pre_attn(clamp(x)))))
 *   x = lconv1d(x)                x + linear_end(silu(conv_norm(clamp(dwconv(glu(linear_start(pre_layer_norm(x))))))))
 *   x = ffw(x, feed_forward2)
 *   x = norm_out(clamp(x))
 *
 * glu(h) = h[:, :H] · sigmoid(h[:, H:]); dwconv is depthwise and causal (left pad K − 1).
 */
import type { TensorStore } from '../../checkpoint/checkpoint.js';
import type { Kernels } from '../../kernels/kernels.js';
import { rmsNorm } from '../../model/ops.js';
import type { Tracer } from '../../model/trace.js';
import { ClippedLinear } from '../clipped_linear.js';
import { Gemma4AudioAttention } from './attention.js';
import type { Gemma4AudioConfig } from './config.js';

interface FeedForward { pre_layer_norm: Float32Array; ffw_layer_1: ClippedLinear; ffw_layer_2: ClippedLinear; post_layer_norm: Float32Array }
interface LightConv { pre_layer_norm: Float32Array; linear_start: ClippedLinear; depthwise_conv1d: Float32Array; conv_norm: Float32Array; linear_end: ClippedLinear }

const silu = (x: number): number => x / (1 + Math.exp(-x));
const sigmoid = (x: number): number => 1 / (1 + Math.exp(-x));

function clamp(x: Float32Array, c: number): Float32Array {
  const out = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = Math.min(Math.max(x[i], -c), c);
  return out;
}

export class Gemma4ConformerLayer {
  private constructor(
    private readonly c: Gemma4AudioConfig,
    readonly feed_forward1: FeedForward,
    readonly self_attn: Gemma4AudioAttention,
    readonly norm_pre_attn: Float32Array,
    readonly norm_post_attn: Float32Array,
    readonly lconv1d: LightConv,
    readonly feed_forward2: FeedForward,
    readonly norm_out: Float32Array,
  ) {}

  static async load(store: TensorStore, kernels: Kernels, p: string, c: Gemma4AudioConfig): Promise<Gemma4ConformerLayer> {
    const H = c.hiddenSize, clip = c.useClippedLinears, K = c.convKernelSize;
    const vec = (n: string) => store.readF32(`${p}.${n}.weight`, [H]);
    const ffw = async (n: string): Promise<FeedForward> => ({
      pre_layer_norm: await vec(`${n}.pre_layer_norm`),
      ffw_layer_1: await ClippedLinear.load(store, kernels, `${p}.${n}.ffw_layer_1`, 4 * H, H, clip),
      ffw_layer_2: await ClippedLinear.load(store, kernels, `${p}.${n}.ffw_layer_2`, H, 4 * H, clip),
      post_layer_norm: await vec(`${n}.post_layer_norm`),
    });
    return new Gemma4ConformerLayer(
      c,
      await ffw('feed_forward1'),
      await Gemma4AudioAttention.load(store, kernels, `${p}.self_attn`, c),
      await vec('norm_pre_attn'),
      await vec('norm_post_attn'),
      {
        pre_layer_norm: await vec('lconv1d.pre_layer_norm'),
        linear_start: await ClippedLinear.load(store, kernels, `${p}.lconv1d.linear_start`, 2 * H, H, clip),
        depthwise_conv1d: await store.readF32(`${p}.lconv1d.depthwise_conv1d.weight`, [H, 1, K]),
        conv_norm: await vec('lconv1d.conv_norm'),
        linear_end: await ClippedLinear.load(store, kernels, `${p}.lconv1d.linear_end`, H, H, clip),
      },
      await ffw('feed_forward2'),
      await vec('norm_out'),
    );
  }

  private ffw(w: FeedForward, x: Float32Array, T: number): Float32Array {
    const H = this.c.hiddenSize, eps = this.c.rmsNormEps, gc = this.c.gradientClipping;
    const h = rmsNorm(clamp(x, gc), w.pre_layer_norm, T, H, eps);
    const a = w.ffw_layer_1.forward(h, T);
    for (let i = 0; i < a.length; i++) a[i] = silu(a[i]);
    const b = rmsNorm(clamp(w.ffw_layer_2.forward(a, T), gc), w.post_layer_norm, T, H, eps);
    const rw = Math.fround(this.c.residualWeight);
    const out = new Float32Array(T * H);
    for (let i = 0; i < out.length; i++) out[i] = x[i] + Math.fround(b[i] * rw);
    return out;
  }

  private lconv(x: Float32Array, T: number): Float32Array {
    const H = this.c.hiddenSize, eps = this.c.rmsNormEps, gc = this.c.gradientClipping, K = this.c.convKernelSize;
    const w = this.lconv1d;
    const h = w.linear_start.forward(rmsNorm(x, w.pre_layer_norm, T, H, eps, new Float32Array(T * H)), T);
    const g = new Float32Array(T * H);
    for (let t = 0; t < T; t++) for (let i = 0; i < H; i++) g[t * H + i] = Math.fround(h[t * 2 * H + i] * Math.fround(sigmoid(h[t * 2 * H + H + i])));
    const conv = new Float32Array(T * H);
    for (let t = 0; t < T; t++) {
      for (let i = 0; i < H; i++) {
        let acc = 0;
        for (let j = 0; j < K; j++) {
          const s = t - (K - 1) + j;
          if (s >= 0) acc += w.depthwise_conv1d[i * K + j] * g[s * H + i];
        }
        conv[t * H + i] = acc;
      }
    }
    const n = rmsNorm(clamp(conv, gc), w.conv_norm, T, H, eps);
    for (let i = 0; i < n.length; i++) n[i] = silu(n[i]);
    const e = w.linear_end.forward(n, T);
    for (let i = 0; i < e.length; i++) e[i] += x[i];
    return e;
  }

  forward(x: Float32Array, mask: Uint8Array, T: number, trace?: Tracer, name = ''): Float32Array {
    const H = this.c.hiddenSize, eps = this.c.rmsNormEps, gc = this.c.gradientClipping;
    x = this.ffw(this.feed_forward1, x, T);
    trace?.(`${name}.feed_forward1`, x, [T, H]);
    const a = this.self_attn.forward(rmsNorm(clamp(x, gc), this.norm_pre_attn, T, H, eps), mask, T);
    trace?.(`${name}.self_attn`, a, [T, H]);
    const an = rmsNorm(clamp(a, gc), this.norm_post_attn, T, H, eps);
    for (let i = 0; i < an.length; i++) an[i] += x[i];
    x = an;
    trace?.(`${name}.attn_block`, x, [T, H]);
    x = this.lconv(x, T);
    trace?.(`${name}.lconv1d`, x, [T, H]);
    x = this.ffw(this.feed_forward2, x, T);
    trace?.(`${name}.feed_forward2`, x, [T, H]);
    return rmsNorm(clamp(x, gc), this.norm_out, T, H, eps);
  }

  release(): void {
    for (const l of [this.feed_forward1.ffw_layer_1, this.feed_forward1.ffw_layer_2, this.feed_forward2.ffw_layer_1, this.feed_forward2.ffw_layer_2, this.lconv1d.linear_start, this.lconv1d.linear_end]) l.release();
    this.self_attn.release();
  }
}
