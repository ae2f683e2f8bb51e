/**
 * Gemma 4's audio subsampler, `subsample_conv_projection` [modeling_gemma4.py,
 * Gemma4AudioSubSampleConvProjection]: two blocks of (mask → Conv2d 3×3 stride 2 pad 1 → LayerNorm
 * over channels → ReLU), ×4 in time and frequency, then `input_proj_linear` over (freq, channel)
 * with channels fastest. Gemma 3n normalised with a cumulative group norm; Gemma 4 uses LayerNorm.
 *
 * Activations are kept [time, freq, channel], so each conv is one GEMM over im2col rows and the
 * final flatten (index f·C + c) is the layout itself.
 */
import type { TensorStore } from '../../checkpoint/checkpoint.js';
import type { Kernels, LinearWeight } from '../../kernels/kernels.js';
import type { Gemma4AudioConfig } from './config.js';
import { loadTowerLinear } from '../tower_weights.js';

interface ConvBlock { conv: LinearWeight; norm: Float32Array; cin: number; cout: number }

export class Gemma4AudioSubsampler {
  private constructor(
    private readonly kernels: Kernels,
    private readonly blocks: ConvBlock[],
    private readonly inputProj: LinearWeight,
    private readonly eps: number,
  ) {}

  static async load(store: TensorStore, kernels: Kernels, c: Gemma4AudioConfig, prefix: string, melBins = 128): Promise<Gemma4AudioSubsampler> {
    const blocks: ConvBlock[] = [];
    let cin = 1;
    for (let l = 0; l < 2; l++) {
      const cout = c.subsamplingConvChannels[l];
      const w = await store.readF32(`${prefix}.layer${l}.conv.weight`, [cout, cin, 3, 3]);
      blocks.push({ conv: kernels.createLinear(w, cout, cin * 9), norm: await store.readF32(`${prefix}.layer${l}.norm.weight`, [cout]), cin, cout });
      cin = cout;
    }
    const inDim = Math.ceil(Math.ceil(melBins / 2) / 2) * cin;
    const proj = await loadTowerLinear(store, `${prefix}.input_proj_linear.weight`, [c.hiddenSize, inDim], kernels);
    return new Gemma4AudioSubsampler(kernels, blocks, proj, c.rmsNormEps);
  }

  /**
   * features [T, F] with a frame mask [T] (1 = valid) → [T4, hidden] and the subsampled mask.
   * `onBlock` sees each block's output [T', F', C].
   */
  forward(features: Float32Array, mask: Uint8Array, T: number, F: number, onBlock?: (l: number, x: Float32Array, T: number, F: number, C: number) => void): { x: Float32Array; mask: Uint8Array; T: number } {
    let x = features, curT = T, curF = F, m = mask;
    for (let l = 0; l < this.blocks.length; l++) {
      const b = this.blocks[l];
      const masked = new Float32Array(curT * curF * b.cin);
      for (let t = 0; t < curT; t++) if (m[t]) masked.set(x.subarray(t * curF * b.cin, (t + 1) * curF * b.cin), t * curF * b.cin);
      const oT = Math.floor((curT - 1) / 2) + 1, oF = Math.floor((curF - 1) / 2) + 1;
      const cols = im2col3x3s2(masked, curT, curF, b.cin, oT, oF);
      const y = new Float32Array(oT * oF * b.cout);
      this.kernels.linear(b.conv, cols, oT * oF, y);
      layerNormReluChannels(y, oT * oF, b.cout, b.norm, this.eps);
      const nm = new Uint8Array(oT);
      for (let t = 0; t < oT; t++) nm[t] = m[2 * t];
      onBlock?.(l, y, oT, oF, b.cout);
      x = y; curT = oT; curF = oF; m = nm;
    }
    const out = new Float32Array(curT * this.inputProj.outDim);
    this.kernels.linear(this.inputProj, x, curT, out);
    return { x: out, mask: m, T: curT };
  }

  release(): void {
    for (const b of this.blocks) this.kernels.release(b.conv);
    this.kernels.release(this.inputProj);
  }
}

/** Rows of 3×3 stride-2 patches (zero padding 1), column order (c_in, kh, kw) as the weight's. */
function im2col3x3s2(x: Float32Array, T: number, F: number, C: number, oT: number, oF: number): Float32Array {
  const K = C * 9;
  const cols = new Float32Array(oT * oF * K);
  for (let t = 0; t < oT; t++) {
    for (let f = 0; f < oF; f++) {
      const row = (t * oF + f) * K;
      for (let kh = 0; kh < 3; kh++) {
        const ti = 2 * t - 1 + kh;
        if (ti < 0 || ti >= T) continue;
        for (let kw = 0; kw < 3; kw++) {
          const fi = 2 * f - 1 + kw;
          if (fi < 0 || fi >= F) continue;
          const src = (ti * F + fi) * C, k = kh * 3 + kw;
          for (let c = 0; c < C; c++) cols[row + c * 9 + k] = x[src + c];
        }
      }
    }
  }
  return cols;
}

/** LayerNorm over the channels of each (t, f) (weight, no bias), then ReLU. */
function layerNormReluChannels(y: Float32Array, rows: number, C: number, w: Float32Array, eps: number): void {
  for (let r = 0; r < rows; r++) {
    const o = r * C;
    let mean = 0;
    for (let c = 0; c < C; c++) mean += y[o + c];
    mean = Math.fround(mean / C);
    let v = 0;
    for (let c = 0; c < C; c++) { const d = Math.fround(y[o + c] - mean); v += d * d; }
    const inv = Math.fround(1 / Math.sqrt(Math.fround(Math.fround(v / C) + eps)));
    for (let c = 0; c < C; c++) {
      const z = Math.fround(Math.fround(Math.fround(y[o + c] - mean) * inv) * w[c]);
      y[o + c] = z > 0 ? z : 0;
    }
  }
}
