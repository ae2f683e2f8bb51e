/**
 * Multi-scale fusion adapter (MSFA) [timm/models/mobilenetv5.py MobileNetV5MultiScaleFusionAdapter]:
 * merges the stride-16 and stride-32 feature maps into the 16×16 grid of soft tokens.
 *
 *   inputs (stage 2 [48², 640], stage 3 [24², 1280])
 *   → nearest-upsample every input to the first's size (legacy `nearest`: src = floor(dst·in/out))
 *   → concat channels in input order ([640 | 1280] = 1920)
 *   → ffn = UIR without depthwise convs: pw_exp 1920 → 3840 (+ norm, GELU), pw_proj → 2048 (+ norm);
 *     no shortcut, no layer scale
 *   → avg_pool2d(kernel = stride = 48/16 = 3) down to 16×16
 *   → norm (RmsNorm2d over 2048)
 */
import type { Kernels } from '../../kernels/kernels.js';
import type { UirArgs } from './arch.js';
import { rmsNorm2d } from './norm_act.js';
import { copyFloats, featureMap, outputMap, recycle, type FeatureMap, type TensorReader } from './tensor.js';
import { UniversalInvertedResidual } from './universal_inverted_residual.js';

export type MsfaTrace = (name: 'concat' | 'ffn' | 'pooled', x: FeatureMap) => void;

export class MultiScaleFusionAdapter {
  private constructor(
    readonly inChs: number,
    readonly outChs: number,
    readonly outputResolution: number,
    private readonly ffn: UniversalInvertedResidual,
    private readonly norm: Float32Array,
    private readonly kernels: Kernels,
  ) {}

  static async load(r: TensorReader, prefix: string, inChs: number, outChs: number, outputResolution: number, expansion: number, kernels: Kernels): Promise<MultiScaleFusionAdapter> {
    const args: UirArgs = { type: 'uir', dwStart: 0, dwMid: 0, stride: 1, expRatio: expansion, outChs };
    const ffn = await UniversalInvertedResidual.load(r, `${prefix}ffn.`, inChs, args, kernels, { layerScale: false, noskip: true });
    const norm = await r.readF32(`${prefix}norm.weight`, [outChs]);
    return new MultiScaleFusionAdapter(inChs, outChs, outputResolution, ffn, norm, kernels);
  }

  forward(inputs: readonly FeatureMap[], trace?: MsfaTrace): FeatureMap {
    const x = upsampleConcat(inputs);
    if (x.c !== this.inChs) throw new Error(`MSFA: inputs have ${x.c} channels in total, expected ${this.inChs}`);
    trace?.('concat', x);
    const y = this.ffn.forward(x);
    recycle(x);
    trace?.('ffn', y);
    const pooled = poolTo(y, this.outputResolution);
    if (pooled !== y) recycle(y);
    trace?.('pooled', pooled);
    return rmsNorm2d(pooled, this.norm, this.kernels);
  }

  release(): void {
    this.ffn.release();
  }
}

/** Nearest-upsamples every map to the first one's size and concatenates channels in order. */
export function upsampleConcat(inputs: readonly FeatureMap[]): FeatureMap {
  const { h, w } = inputs[0];
  const C = inputs.reduce((s, m) => s + m.c, 0);
  const out = outputMap(h, w, C); // every value written below
  let c0 = 0;
  for (const m of inputs) {
    if (m.h > h || m.w > w) throw new Error(`MSFA: input [${m.h}, ${m.w}] is larger than the first input [${h}, ${w}]`);
    for (let y = 0; y < h; y++) {
      const sy = Math.min(Math.floor((y * m.h) / h), m.h - 1); // PyTorch legacy nearest
      for (let x = 0; x < w; x++) {
        const sx = Math.min(Math.floor((x * m.w) / w), m.w - 1);
        const from = (sy * m.w + sx) * m.c;
        copyFloats(m.data.subarray(from, from + m.c), out.data, (y * w + x) * C + c0);
      }
    }
    c0 += m.c;
  }
  return out;
}

/**
 * Reduces a map to `res`×`res`: avg_pool2d with kernel = stride = H/res when H and W divide
 * evenly (the only case Gemma 3n hits: 48 → 16). timm falls back to bilinear interpolation
 * otherwise; that path is not implemented.
 */
export function poolTo(x: FeatureMap, res: number): FeatureMap {
  const { h, w, c, data } = x;
  if (h <= res && w <= res) return x;
  if (h % res !== 0 || w % res !== 0) throw new Error(`MSFA: ${h}×${w} does not divide into ${res}×${res} (bilinear fallback not implemented)`);
  const kh = h / res, kw = w / res;
  const out = featureMap(res, res, c);
  const acc = new Float64Array(c);
  const inv = 1 / (kh * kw);
  for (let oy = 0; oy < res; oy++) {
    for (let ox = 0; ox < res; ox++) {
      acc.fill(0);
      for (let dy = 0; dy < kh; dy++) {
        for (let dx = 0; dx < kw; dx++) {
          const from = ((oy * kh + dy) * w + ox * kw + dx) * c;
          for (let ch = 0; ch < c; ch++) acc[ch] += data[from + ch];
        }
      }
      const o = (oy * res + ox) * c;
      for (let ch = 0; ch < c; ch++) out.data[o + ch] = acc[ch] * inv;
    }
  }
  return out;
}
