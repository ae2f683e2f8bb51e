/**
 * Plain-TypeScript kernels: the readable reference every faster backend is tested against.
 */
import { geluMul, softcap } from './elementwise.js';
import type { AttentionParams, Kernels, LinearWeight, WeightFormat } from './kernels.js';
import { Q4Matrix, q4Linear } from './q4.js';
import { Q8Matrix, q8Linear } from './q8.js';
import { depthwiseConv2d, multiQueryAttention, rmsNormAct, type DepthwiseConv2dParams, type MultiQueryAttentionParams, type RmsNormActParams } from './tower_ops.js';

export class TsLinear implements LinearWeight {
  readonly format: WeightFormat = 'f32';
  constructor(readonly w: Float32Array, readonly outDim: number, readonly inDim: number) {}
}

/** A q4 weight: the packed matrix itself, multiplied by the reference `q4Linear`. */
export class TsQ4Linear implements LinearWeight {
  readonly format: WeightFormat = 'q4';
  readonly outDim: number;
  readonly inDim: number;
  constructor(readonly q: Q4Matrix) {
    this.outDim = q.outDim;
    this.inDim = q.inDim;
  }
}

/** A q8 weight: the per-channel int8 matrix itself, multiplied by the reference `q8Linear`. */
export class TsQ8Linear implements LinearWeight {
  readonly format: WeightFormat = 'q8';
  readonly outDim: number;
  readonly inDim: number;
  constructor(readonly q: Q8Matrix) {
    this.outDim = q.outDim;
    this.inDim = q.inDim;
  }
}

/** Dot product of a[ao..ao+n) and b[bo..bo+n), four accumulators for speed and stable rounding. */
export function dot(a: Float32Array, ao: number, b: Float32Array, bo: number, n: number): number {
  let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    s0 += a[ao + i] * b[bo + i];
    s1 += a[ao + i + 1] * b[bo + i + 1];
    s2 += a[ao + i + 2] * b[bo + i + 2];
    s3 += a[ao + i + 3] * b[bo + i + 3];
  }
  for (; i < n; i++) s0 += a[ao + i] * b[bo + i];
  return s0 + s1 + s2 + s3;
}

export class TsKernels implements Kernels {
  readonly name = 'ts';
  private scores = new Float32Array(0);

  createLinear(w: Float32Array | Q4Matrix | Q8Matrix, outDim: number, inDim: number, format: WeightFormat = 'f32'): LinearWeight {
    if (w instanceof Q8Matrix) {
      if (w.outDim !== outDim || w.inDim !== inDim) throw new Error(`createLinear: Q8Matrix is [${w.outDim}, ${w.inDim}], expected [${outDim}, ${inDim}]`);
      return new TsQ8Linear(w);
    }
    if (w instanceof Q4Matrix) {
      if (w.outDim !== outDim || w.inDim !== inDim) throw new Error(`createLinear: Q4Matrix is [${w.outDim}, ${w.inDim}], expected [${outDim}, ${inDim}]`);
      return new TsQ4Linear(w);
    }
    if (w.length !== outDim * inDim) throw new Error(`createLinear: ${w.length} values for [${outDim}, ${inDim}]`);
    if (format === 'q4') return new TsQ4Linear(Q4Matrix.quantize(w, outDim, inDim));
    if (format === 'q8') return new TsQ8Linear(Q8Matrix.quantize(w, outDim, inDim));
    if (format !== 'f32') throw new Error(`TsKernels: weight format '${format}' is not supported by this backend`);
    return new TsLinear(w, outDim, inDim);
  }

  geluMul(a: Float32Array, b: Float32Array, n: number): void {
    geluMul(a, b, n);
  }

  softcap(x: Float32Array, n: number, cap: number): void {
    softcap(x, n, cap);
  }

  linearMany(ws: readonly LinearWeight[], x: Float32Array, T: number, ys: readonly Float32Array[]): void {
    if (ws.length !== ys.length) throw new Error(`linearMany: ${ws.length} weights but ${ys.length} outputs`);
    ws.forEach((w, i) => this.linear(w, x, T, ys[i]));
  }

  linear(weight: LinearWeight, x: Float32Array, T: number, y: Float32Array): void {
    if (weight instanceof TsQ4Linear) return q4Linear(weight.q, x, T, y);
    if (weight instanceof TsQ8Linear) return q8Linear(weight.q, x, T, y);
    const { w, outDim, inDim } = weight as TsLinear;
    for (let t = 0; t < T; t++) {
      const xo = t * inDim, yo = t * outDim;
      for (let o = 0; o < outDim; o++) y[yo + o] = dot(x, xo, w, o * inDim, inDim);
    }
  }

  attention(p: AttentionParams): void {
    const { q, k, v, T, S, numHeads, numKvHeads, headDim: D, qPos0, kPos0, window, scale, out } = p;
    const group = numHeads / numKvHeads; // GQA: query head h reads kv head floor(h / group)
    const qStride = numHeads * D, kvStride = numKvHeads * D;
    if (this.scores.length < S) this.scores = new Float32Array(S);
    const scores = this.scores;
    for (let t = 0; t < T; t++) {
      const qPos = qPos0 + t;
      // Visible keys: kPos <= qPos, and kPos > qPos - window on sliding layers.
      const lo = Math.max(0, window > 0 ? qPos - window + 1 - kPos0 : 0);
      const hi = Math.min(S, qPos - kPos0 + 1);
      for (let h = 0; h < numHeads; h++) {
        const qo = t * qStride + h * D;
        const ko = Math.floor(h / group) * D;
        const oo = t * qStride + h * D;
        out.fill(0, oo, oo + D);
        if (hi <= lo) continue;
        let max = -Infinity;
        for (let s = lo; s < hi; s++) {
          const sc = dot(q, qo, k, s * kvStride + ko, D) * scale;
          scores[s] = sc;
          if (sc > max) max = sc;
        }
        let sum = 0;
        for (let s = lo; s < hi; s++) {
          const e = Math.exp(scores[s] - max);
          scores[s] = e;
          sum += e;
        }
        const inv = 1 / sum;
        for (let s = lo; s < hi; s++) {
          const wgt = scores[s] * inv;
          const vo = s * kvStride + ko;
          for (let d = 0; d < D; d++) out[oo + d] += wgt * v[vo + d];
        }
      }
    }
  }

  depthwiseConv2d(p: DepthwiseConv2dParams): void {
    depthwiseConv2d(p);
  }

  rmsNormAct(p: RmsNormActParams): void {
    rmsNormAct(p);
  }

  multiQueryAttention(p: MultiQueryAttentionParams): void {
    multiQueryAttention(p);
  }

  release(): void {}
}
