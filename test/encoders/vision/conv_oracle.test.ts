/**
 * Convolutions against an independent oracle: TensorFlow.js (CPU backend), whose 'same' padding
 * is TF "SAME", the rule timm's Conv2dSame implements.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { beforeAll, describe, expect, it } from 'vitest';
import { BlockedTsKernels } from '../../../src/encoders/vision/blocked_kernels.js';
import { Conv2d, DepthwiseConv2d, PointwiseConv, samePadding } from '../../../src/encoders/vision/conv.js';
import { featureMap } from '../../../src/encoders/vision/tensor.js';
import { TsKernels } from '../../../src/kernels/ts_kernels.js';
import { maxAbsDiff } from '../../helpers.js';

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32) * 2 - 1;
}

beforeAll(async () => {
  await tf.setBackend('cpu');
  await tf.ready();
});

describe('samePadding (TF SAME, timm pad_same)', () => {
  it('matches the README examples', () => {
    expect(samePadding(768, 3, 2)).toEqual({ out: 384, before: 0, after: 1 });
    expect(samePadding(96, 5, 2)).toEqual({ out: 48, before: 1, after: 2 });
    expect(samePadding(15, 5, 2)).toEqual({ out: 8, before: 2, after: 2 });
    expect(samePadding(13, 5, 2)).toEqual({ out: 7, before: 2, after: 2 });
    expect(samePadding(12, 3, 2)).toEqual({ out: 6, before: 0, after: 1 });
    expect(samePadding(24, 5, 1)).toEqual({ out: 24, before: 2, after: 2 });
  });
});

// [H, W, Cin, Cout, k, stride]
const FULL_CASES: [number, number, number, number, number, number][] = [
  [16, 16, 3, 8, 3, 2], [15, 13, 4, 6, 3, 2], [12, 9, 5, 7, 5, 2], [7, 11, 6, 5, 3, 1], [9, 9, 3, 4, 5, 1], [10, 6, 8, 12, 1, 1],
];
const DW_CASES: [number, number, number, number, number][] = [
  [16, 16, 8, 3, 2], [15, 13, 5, 5, 2], [13, 12, 7, 5, 2], [9, 7, 6, 3, 1], [8, 8, 16, 5, 1], [5, 4, 3, 3, 2],
];

describe('Conv2d vs tfjs conv2d', () => {
  for (const kernels of [new TsKernels(), new BlockedTsKernels()]) {
    for (const [H, W, ci, co, k, s] of FULL_CASES) {
      it(`${kernels.constructor.name} ${H}×${W}×${ci} → ${co}, k${k} s${s}, bias`, () => {
        const r = rng(H * 1000 + W * 10 + k);
        const x = Float32Array.from({ length: H * W * ci }, r);
        const wOIHW = Float32Array.from({ length: co * ci * k * k }, r);
        const bias = Float32Array.from({ length: co }, r);
        const got = Conv2d.create(kernels, wOIHW, bias, co, ci, k, s).forward(featureMap(H, W, ci, x));
        // tfjs filter layout [kh, kw, in, out]
        const wHWIO = new Float32Array(wOIHW.length);
        for (let o = 0; o < co; o++) for (let i = 0; i < ci; i++) for (let t = 0; t < k * k; t++) wHWIO[(t * ci + i) * co + o] = wOIHW[(o * ci + i) * k * k + t];
        const want = tf.tidy(() => tf.add(tf.conv2d(tf.tensor4d(x, [1, H, W, ci]), tf.tensor4d(wHWIO, [k, k, ci, co]), s, 'same'), tf.tensor1d(bias)));
        expect(want.shape).toEqual([1, got.h, got.w, got.c]);
        expect(maxAbsDiff(got.data, want.dataSync())).toBeLessThan(1e-5);
        want.dispose();
      });
    }
  }
});

describe('DepthwiseConv2d vs tfjs depthwiseConv2d', () => {
  for (const [H, W, c, k, s] of DW_CASES) {
    it(`${H}×${W}×${c}, k${k} s${s}`, () => {
      const r = rng(H * 7 + W * 3 + c);
      const x = Float32Array.from({ length: H * W * c }, r);
      const w = Float32Array.from({ length: c * k * k }, r); // [C, 1, k, k]
      const got = new DepthwiseConv2d(w, c, k, s).forward(featureMap(H, W, c, x));
      const wHWC1 = new Float32Array(w.length);
      for (let ch = 0; ch < c; ch++) for (let t = 0; t < k * k; t++) wHWC1[t * c + ch] = w[ch * k * k + t];
      const want = tf.tidy(() => tf.depthwiseConv2d(tf.tensor4d(x, [1, H, W, c]), tf.tensor4d(wHWC1, [k, k, c, 1]), s, 'same'));
      expect(want.shape).toEqual([1, got.h, got.w, got.c]);
      expect(maxAbsDiff(got.data, want.dataSync())).toBeLessThan(1e-5);
      want.dispose();
    });
  }
});

describe('PointwiseConv vs tfjs conv2d 1×1', () => {
  it('through the blocked kernel, odd row/column counts', () => {
    const [H, W, ci, co] = [5, 7, 37, 23];
    const r = rng(3);
    const x = Float32Array.from({ length: H * W * ci }, r);
    const w = Float32Array.from({ length: co * ci }, r);
    const got = PointwiseConv.create(new BlockedTsKernels(), w, co, ci).forward(featureMap(H, W, ci, x));
    const wIO = new Float32Array(w.length);
    for (let o = 0; o < co; o++) for (let i = 0; i < ci; i++) wIO[i * co + o] = w[o * ci + i];
    const want = tf.tidy(() => tf.conv2d(tf.tensor4d(x, [1, H, W, ci]), tf.tensor4d(wIO, [1, 1, ci, co]), 1, 'same'));
    expect(maxAbsDiff(got.data, want.dataSync())).toBeLessThan(1e-5);
    want.dispose();
  });
});
