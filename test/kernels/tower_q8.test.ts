/**
 * The towers' per-channel int8 weights (src/kernels/q8.ts) and their WASM GEMM
 * (assembly/tower_q8.ts), held to the TS reference q8Linear on ragged shapes (panel edges of 16
 * rows, token blocks of 16, inputs not a multiple of 4 or 16), SIMD128 and Relaxed, 1 and 2 threads.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { f16ToF32, f32ToF16, Q8Matrix, q8Linear, Q8_SCALE_F16, scalesFitF16 } from '../../src/kernels/q8.js';
import { TsKernels } from '../../src/kernels/ts_kernels.js';
import { relaxedSimdSupported, type WasmKernels } from '../../src/kernels/wasm_kernels.js';
import { createNodeWasmKernels, nodeWasmHost } from '../../src/node/wasm_host.js';
import { closeness, ensureWasmBuilt, rand } from '../helpers.js';

describe('Q8Matrix', () => {
  it('every dequantized value is within half a step of the original, codes within ±127', () => {
    const O = 7, I = 45, w = rand(O * I, 11, 3);
    w[5] = 0; w.fill(0, I, 2 * I); // an all-zero row gets scale 0
    const q = Q8Matrix.quantize(w, O, I), d = q.dequantize();
    expect(q.scales[1]).toBe(0);
    for (let o = 0; o < O; o++) {
      let amax = 0;
      for (let i = 0; i < I; i++) amax = Math.max(amax, Math.abs(w[o * I + i]));
      expect(q.scales[o]).toBeCloseTo(amax / 127, 6);
      for (let i = 0; i < I; i++) {
        expect(Math.abs(q.codes[o * I + i])).toBeLessThanOrEqual(127);
        expect(Math.abs(d[o * I + i] - w[o * I + i])).toBeLessThanOrEqual(q.scales[o] / 2 + 1e-7);
      }
    }
  });

  it('toBytes / fromBytes round-trip with f32 and f16 scales', () => {
    const q = Q8Matrix.quantize(rand(5 * 33, 3), 5, 33);
    const back = Q8Matrix.fromBytes(q.toBytes());
    expect(back.codes).toEqual(q.codes);
    expect(back.scales).toEqual(q.scales);
    expect(scalesFitF16(q.scales)).toBe(true);
    const half = Q8Matrix.fromBytes(q.toBytes(Q8_SCALE_F16));
    expect(half.codes).toEqual(q.codes);
    for (let o = 0; o < 5; o++) expect(Math.abs(half.scales[o] - q.scales[o]) / q.scales[o]).toBeLessThan(2 ** -11);
  });

  it('refuses truncated, mis-sized and foreign blobs with a reason', () => {
    const bytes = Q8Matrix.quantize(rand(4 * 8, 1), 4, 8).toBytes();
    expect(() => Q8Matrix.fromBytes(bytes.subarray(0, 20))).toThrow(/truncated header/);
    expect(() => Q8Matrix.fromBytes(bytes.subarray(0, bytes.length - 1))).toThrow(/bytes, expected/);
    const other = bytes.slice();
    other[0] ^= 1;
    expect(() => Q8Matrix.fromBytes(other)).toThrow(/not a Q8C1/);
  });

  it('f16 conversion: round to nearest even, subnormals, overflow', () => {
    expect(f16ToF32(f32ToF16(1))).toBe(1);
    expect(f16ToF32(f32ToF16(65504))).toBe(65504);
    expect(f16ToF32(f32ToF16(1e6))).toBe(Infinity);
    expect(f16ToF32(f32ToF16(2 ** -24))).toBe(2 ** -24);
    expect(f16ToF32(f32ToF16(2 ** -26))).toBe(0);
    expect(f16ToF32(f32ToF16(1 + 2 ** -11))).toBe(1); // halfway: to even
    expect(f16ToF32(f32ToF16(1 + 3 * 2 ** -11))).toBe(1 + 2 ** -9);
    expect(scalesFitF16(new Float32Array([1e-9]))).toBe(false);
  });

  it('TsKernels runs q8 weights (given or quantized on createLinear) as q8Linear', () => {
    const ts = new TsKernels(), w = rand(9 * 20, 4), x = rand(3 * 20, 5);
    const q = Q8Matrix.quantize(w, 9, 20), ref = new Float32Array(27), a = new Float32Array(27), b = new Float32Array(27);
    q8Linear(q, x, 3, ref);
    ts.linear(ts.createLinear(q, 9, 20), x, 3, a);
    ts.linear(ts.createLinear(w, 9, 20, 'q8'), x, 3, b);
    expect(a).toEqual(ref);
    expect(b).toEqual(ref);
  });
});

ensureWasmBuilt();
nodeWasmHost().enableRelaxedSimd!();
const variants: { relaxed: boolean; threads: number }[] = [
  { relaxed: false, threads: 1 },
  { relaxed: false, threads: 2 },
  ...(relaxedSimdSupported() ? [{ relaxed: true, threads: 1 }, { relaxed: true, threads: 2 }] : []),
];

describe.each(variants)('WasmKernels q8 relaxed=$relaxed threads=$threads', ({ relaxed, threads }) => {
  let k: WasmKernels;
  beforeAll(async () => { k = await createNodeWasmKernels({ relaxed, threads, smallJobMacs: 0 }); });
  afterAll(() => k.dispose());

  const shapes: [number, number, number][] = [
    [1, 1, 1], [1, 5, 3], [2, 4, 16], [3, 19, 33], [17, 16, 64], [33, 37, 75], [16, 50, 257], [40, 21, 7], [5, 130, 1001],
  ];
  it.each(shapes)('q8 linear T=%i out=%i in=%i matches the TS reference', (T, outDim, inDim) => {
    const q = Q8Matrix.quantize(rand(outDim * inDim, 7 * outDim + inDim), outDim, inDim);
    const x = rand(T * inDim, 3 * T + inDim, 2);
    const y = new Float32Array(T * outDim).fill(NaN), ref = new Float32Array(T * outDim);
    q8Linear(q, x, T, ref);
    const lw = k.createLinear(q, outDim, inDim);
    expect(lw.format).toBe('q8');
    k.linear(lw, x, T, y);
    k.release(lw);
    expect(closeness(y, ref, 1e-5, 1e-5)).toBeLessThanOrEqual(1);
  });

  it('createLinear(f32, format q8) equals quantize-then-upload, also chunked through a small scratch', async () => {
    const w = rand(24 * 40, 9), x = rand(300 * 40, 10);
    const a = new Float32Array(300 * 24), b = new Float32Array(300 * 24);
    k.linear(k.createLinear(w, 24, 40, 'q8'), x, 300, a);
    const small = await createNodeWasmKernels({ relaxed, threads, smallJobMacs: 0, maxScratchBytes: 16 << 10 });
    small.linear(small.createLinear(Q8Matrix.quantize(w, 24, 40), 24, 40), x, 300, b);
    small.dispose();
    expect(b).toEqual(a);
  });
});
