import { describe, expect, it } from 'vitest';
import { Q4Matrix, q4Linear, quantizeActivations, roundHalfEven } from '../../src/kernels/q4.js';
import { TsKernels } from '../../src/kernels/ts_kernels.js';
import { rand } from '../helpers.js';

describe('q4 format', () => {
  it.each([[4, 32], [7, 45], [13, 100], [1, 1], [9, 64]])('quantize→dequantize within scale/2 for [%i, %i]', (outDim, inDim) => {
    const w = rand(outDim * inDim, outDim * 1000 + inDim, 3);
    w[0] = 0; // exact zeros stay zero
    const q = Q4Matrix.quantize(w, outDim, inDim);
    const d = q.dequantize();
    for (let o = 0; o < outDim; o++) {
      for (let i = 0; i < inDim; i++) {
        const s = q.scale(o, i);
        expect(Math.abs(d[o * inDim + i] - w[o * inDim + i])).toBeLessThanOrEqual(s / 2 + 1e-7);
        expect(Math.abs(q.code(o, i))).toBeLessThanOrEqual(7);
      }
    }
    expect(d[0]).toBe(0);
  });

  it('an all-zero group has scale 0 and decodes to zeros', () => {
    const q = Q4Matrix.quantize(new Float32Array(2 * 40), 2, 40);
    expect(Array.from(q.dequantize()).every((v) => v === 0)).toBe(true);
  });

  it('toBytes/fromBytes round-trips without re-quantizing', () => {
    const q = Q4Matrix.quantize(rand(9 * 70, 5), 9, 70);
    const r = Q4Matrix.fromBytes(q.toBytes());
    expect(r.outDim).toBe(9);
    expect(r.inDim).toBe(70);
    expect(r.nibbles).toEqual(q.nibbles);
    expect(r.scales).toEqual(q.scales);
    expect(() => Q4Matrix.fromBytes(q.toBytes().subarray(0, 40))).toThrow(/bytes/);
  });

  it('activation quantization rounds half to even like f32.nearest', () => {
    expect([0.5, 1.5, 2.5, -0.5, -1.5, 2.4, -2.6].map(roundHalfEven)).toEqual([0, 2, 2, -0, -2, 2, -3]);
    const x = rand(70, 3, 5), xq = new Int8Array(96), xs = new Float32Array(3);
    quantizeActivations(x, 0, 70, xq, xs);
    for (let i = 0; i < 70; i++) expect(Math.abs(xq[i] * xs[i >> 5] - x[i])).toBeLessThanOrEqual(xs[i >> 5] / 2 + 1e-6);
    expect(Array.from(xq.subarray(70))).toEqual(new Array(26).fill(0)); // padding
  });

  it('reference q4 linear ≈ float linear on the dequantized weights (int8 activation error only)', () => {
    const outDim = 37, inDim = 75, T = 3;
    const q = Q4Matrix.quantize(rand(outDim * inDim, 11), outDim, inDim);
    const x = rand(T * inDim, 12);
    const y = new Float32Array(T * outDim), ref = new Float32Array(T * outDim);
    q4Linear(q, x, T, y);
    const ts = new TsKernels();
    ts.linear(ts.createLinear(q.dequantize(), outDim, inDim), x, T, ref);
    // int8 activations: each term off by ≤ sx/2·|w|, so |err| ≤ Σ_g sx_g/2 · Σ|w| in group
    for (let i = 0; i < y.length; i++) expect(Math.abs(y[i] - ref[i])).toBeLessThan(0.02 * Math.sqrt(inDim));
    // the TS backend's q4 path is this reference
    const tq = ts.createLinear(q, outDim, inDim);
    const y2 = new Float32Array(T * outDim);
    ts.linear(tq, x, T, y2);
    expect(y2).toEqual(y);
  });
});
