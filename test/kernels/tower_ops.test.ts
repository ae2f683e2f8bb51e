/**
 * The towers' non-GEMM kernels (assembly/tower_ops.ts: depthwise conv, RMSNorm + GELU / layer
 * scale / residual, multi-query attention) held to their plain-TS twins (src/kernels/tower_ops.ts)
 * on ragged shapes — channel counts off the 16- and 4-wide vectors, SAME padding on every side,
 * strides 1 and 2, key counts off the 4-wide vectors, query rows off the 16-row blocks — for
 * SIMD128 and Relaxed SIMD, 1 and 2 threads. The twins themselves are checked against direct
 * formulas on small cases.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { geluTanh } from '../../src/kernels/elementwise.js';
import { depthwiseConv2d, multiQueryAttention, rmsNormAct, type DepthwiseConv2dParams } from '../../src/kernels/tower_ops.js';
import { relaxedSimdSupported, type WasmKernels } from '../../src/kernels/wasm_kernels.js';
import { createNodeWasmKernels, nodeWasmHost } from '../../src/node/wasm_host.js';
import { closeness, ensureWasmBuilt, rand } from '../helpers.js';

/** TF "SAME" padding before, and the output size (as src/encoders/vision/conv.ts samePadding). */
function same(n: number, k: number, s: number): { out: number; before: number } {
  const out = Math.ceil(n / s);
  return { out, before: Math.floor(Math.max((out - 1) * s + k - n, 0) / 2) };
}

function dwParams(h: number, w: number, c: number, k: number, s: number, seed: number): DepthwiseConv2dParams {
  const ph = same(h, k, s), pw = same(w, k, s);
  return {
    x: rand(h * w * c, seed, 2), h, w, c, taps: rand(k * k * c, seed + 1), kernel: k, stride: s,
    padTop: ph.before, padLeft: pw.before, outH: ph.out, outW: pw.out, out: new Float32Array(ph.out * pw.out * c).fill(NaN),
  };
}

describe('tower ops, plain TS', () => {
  it('depthwiseConv2d: one channel by hand (3×3 input, 3×3 kernel, SAME, stride 1 and 2)', () => {
    const x = Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9]), taps = Float32Array.from([0, 1, 0, 1, -4, 1, 0, 1, 0]); // Laplacian
    const p = { x, h: 3, w: 3, c: 1, taps, kernel: 3, stride: 1, padTop: 1, padLeft: 1, outH: 3, outW: 3, out: new Float32Array(9) };
    depthwiseConv2d(p);
    expect([...p.out]).toEqual([2 + 4 - 4, 1 + 3 + 5 - 8, 2 + 6 - 12, 1 + 5 + 7 - 16, 2 + 4 + 6 + 8 - 20, 3 + 5 + 9 - 24, 4 + 8 - 28, 5 + 7 + 9 - 32, 6 + 8 - 36]);
    const q = { ...p, stride: 2, padTop: 1, padLeft: 1, outH: 2, outW: 2, out: new Float32Array(4) }; // k3 s2 on 3: pad (1, 1)
    depthwiseConv2d(q);
    expect([...q.out]).toEqual([2, 2 + 6 - 12, 4 + 8 - 28, 6 + 8 - 36]);
  });

  it('rmsNormAct: norm, GELU, gamma and residual in that order', () => {
    const x = Float32Array.from([3, 4, 0, 0, -1, 1, 1, -1]), w = Float32Array.from([1, 2, 0.5, 1]);
    const gamma = Float32Array.from([2, 2, 2, 2]), res = Float32Array.from([1, 1, 1, 1, 0, 0, 0, 0]);
    rmsNormAct({ x, rows: 2, dim: 4, weight: w, eps: 0, gelu: true, gamma, residual: res });
    const inv0 = 1 / Math.sqrt(25 / 4), want = [3 * inv0 * 1, 4 * inv0 * 2, 0, 0, -1, 2, 0.5, -1].map((v, i) => Math.fround(geluTanh(Math.fround(v)) * 2) + res[i]);
    for (let i = 0; i < 8; i++) expect(x[i]).toBeCloseTo(want[i], 6);
  });

  it('multiQueryAttention: softmax over all keys, no mask', () => {
    const q = Float32Array.from([1, 0, 0, 1]), k = Float32Array.from([1, 0, 0, 1, 0, 0]), v = Float32Array.from([1, 10, 100]);
    const out = new Float32Array(2);
    multiQueryAttention({ q, k, v, rows: 2, M: 3, kd: 2, vd: 1, out });
    const e = Math.E, want = (1 * e + 10 + 100) / (e + 2), want2 = (1 + 10 * e + 100) / (e + 2);
    expect(out[0]).toBeCloseTo(want, 5);
    expect(out[1]).toBeCloseTo(want2, 5);
  });
});

ensureWasmBuilt();
nodeWasmHost().enableRelaxedSimd!();
const variants: { relaxed: boolean; threads: number }[] = [
  { relaxed: false, threads: 1 },
  { relaxed: false, threads: 2 },
  ...(relaxedSimdSupported() ? [{ relaxed: true, threads: 1 }, { relaxed: true, threads: 2 }] : []),
];

describe.each(variants)('WasmKernels tower ops relaxed=$relaxed threads=$threads', ({ relaxed, threads }) => {
  let k: WasmKernels;
  beforeAll(async () => { k = await createNodeWasmKernels({ relaxed, threads, smallJobMacs: 0 }); });
  afterAll(() => k.dispose());

  // [h, w, c, kernel, stride]: c = 1, 3, 4, 16, 20, 37, 48 cover the 16-, 4- and 1-wide loops
  const dwShapes: [number, number, number, number, number][] = [
    [1, 1, 1, 3, 1], [3, 3, 1, 3, 2], [5, 7, 3, 3, 1], [8, 6, 4, 5, 2], [7, 9, 16, 5, 1], [6, 6, 20, 3, 2], [4, 11, 37, 5, 2], [9, 5, 48, 3, 1], [2, 3, 17, 5, 1],
  ];
  it.each(dwShapes)('depthwiseConv2d %i×%i×%i k%i s%i matches the TS twin', (h, w, c, kk, s) => {
    const p = dwParams(h, w, c, kk, s, 13 * h + w + c), ref = new Float32Array(p.out.length);
    depthwiseConv2d({ ...p, out: ref });
    k.depthwiseConv2d(p);
    expect(closeness(p.out, ref, 1e-5, 1e-5)).toBeLessThanOrEqual(1);
  });

  const normShapes: [number, number][] = [[1, 1], [3, 5], [2, 16], [7, 37], [33, 64], [5, 130]];
  it.each(normShapes)('rmsNormAct rows=%i dim=%i (plain, GELU, gamma + residual) matches the TS twin', (rows, dim) => {
    const weight = rand(dim, dim + 1), gamma = rand(dim, dim + 2), residual = rand(rows * dim, dim + 3);
    for (const extra of [{}, { gelu: true }, { gelu: false, gamma, residual }, { gelu: true, gamma, residual }]) {
      const x = rand(rows * dim, rows * 31 + dim, 3), ref = x.slice();
      rmsNormAct({ x: ref, rows, dim, weight, eps: 1e-6, ...extra });
      k.rmsNormAct({ x, rows, dim, weight, eps: 1e-6, ...extra });
      expect(closeness(x, ref, 1e-5, 1e-5)).toBeLessThanOrEqual(1);
    }
  });

  // [rows, M, kd, vd]: rows off the 16-row blocks, M off the 4-wide vectors, kd ≠ vd
  const mqaShapes: [number, number, number, number][] = [[1, 1, 1, 1], [3, 5, 4, 4], [17, 9, 8, 12], [40, 37, 16, 16], [33, 64, 7, 5], [16, 100, 64, 64]];
  it.each(mqaShapes)('multiQueryAttention rows=%i M=%i kd=%i vd=%i matches the TS twin', (rows, M, kd, vd) => {
    const q = rand(rows * kd, rows + M, 2), kk = rand(M * kd, M + kd, 2), v = rand(M * vd, vd + 5);
    const out = new Float32Array(rows * vd).fill(NaN), ref = new Float32Array(rows * vd);
    multiQueryAttention({ q, k: kk, v, rows, M, kd, vd, out: ref });
    k.multiQueryAttention({ q, k: kk, v, rows, M, kd, vd, out });
    expect(closeness(out, ref, 1e-5, 1e-4)).toBeLessThanOrEqual(1);
  });

  it('arrays already in WASM memory (allocF32) are used in place, with the results of copies', () => {
    const res = (src: Float32Array) => { const a = k.allocF32(src.length); a.set(src); return a; };
    const p = dwParams(9, 7, 21, 5, 2, 3), ref = new Float32Array(p.out.length);
    k.depthwiseConv2d({ ...p, out: ref });
    const out = k.allocF32(p.out.length);
    k.depthwiseConv2d({ ...p, x: res(p.x), out });
    expect(out).toEqual(ref);
    const x = rand(6 * 40, 4), w = rand(40, 5), g = rand(40, 6), r = rand(6 * 40, 7), a = x.slice(), b = res(x);
    k.rmsNormAct({ x: a, rows: 6, dim: 40, weight: w, eps: 1e-6, gelu: true, gamma: g, residual: r });
    k.rmsNormAct({ x: b, rows: 6, dim: 40, weight: w, eps: 1e-6, gelu: true, gamma: g, residual: res(r) });
    expect(b).toEqual(a);
    const q = rand(20 * 8, 8), kk = rand(30 * 8, 9), v = rand(30 * 8, 10), o1 = new Float32Array(160), o2 = k.allocF32(160);
    k.multiQueryAttention({ q, k: kk, v, rows: 20, M: 30, kd: 8, vd: 8, out: o1 });
    k.multiQueryAttention({ q: res(q), k: res(kk), v: res(v), rows: 20, M: 30, kd: 8, vd: 8, out: o2 });
    expect(o2).toEqual(o1);
    for (const format of ['f32', 'q8'] as const) {
      const lw = k.createLinear(rand(13 * 40, 11), 13, 40, format), y1 = new Float32Array(6 * 13), y2 = k.allocF32(6 * 13);
      k.linear(lw, x, 6, y1);
      k.linear(lw, res(x), 6, y2);
      expect(y2, format).toEqual(y1);
      k.release(lw);
    }
  });

  it('refuses a short buffer with the operation and shapes named', () => {
    const p = dwParams(4, 4, 3, 3, 1, 1);
    expect(() => k.depthwiseConv2d({ ...p, out: new Float32Array(5) })).toThrow(/depthwiseConv2d: out has 5 values/);
    expect(() => k.rmsNormAct({ x: new Float32Array(7), rows: 2, dim: 4, weight: new Float32Array(4), eps: 1e-6 })).toThrow(/rmsNormAct: x has 7/);
  });
});
