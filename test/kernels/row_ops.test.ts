// WasmKernels.rowOps (assembly/norm.ts, assembly/altup.ts) against tsRowOps: EQUAL bit for bit,
// on ragged shapes, for arrays in ordinary memory and in WASM memory (allocF32), in place and not.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { altupMix4 } from '../../src/kernels/altup.js';
import { tsRowOps } from '../../src/kernels/row_ops.js';
import { relaxedSimdSupported, type WasmKernels } from '../../src/kernels/wasm_kernels.js';
import { createNodeWasmKernels, nodeWasmHost } from '../../src/node/wasm_host.js';
import { ensureWasmBuilt, rand } from '../helpers.js';

ensureWasmBuilt();
nodeWasmHost().enableRelaxedSimd!();
const variants = [{ relaxed: false, threads: 1 }, { relaxed: false, threads: 2 }, ...(relaxedSimdSupported() ? [{ relaxed: true, threads: 1 }, { relaxed: true, threads: 2 }] : [])];

/** Values spread over many binades (and a few exact zeros), so rounding differences would show. */
function spread(n: number, seed: number): Float32Array {
  const v = rand(n, seed);
  for (let i = 0; i < n; i++) v[i] = i % 17 === 5 ? 0 : v[i] * 2 ** ((i * 7) % 23 - 11);
  return v;
}

describe.each(variants)('rowOps relaxed=$relaxed threads=$threads equal tsRowOps exactly', ({ relaxed, threads }) => {
  let k: WasmKernels;
  beforeAll(async () => { k = await createNodeWasmKernels({ relaxed, threads, smallJobMacs: 0 }); }); // 2 threads: every call a row job cut between them
  afterAll(() => k.dispose());
  const wasmArray = (a: Float32Array) => { const b = k.allocF32(a.length); b.set(a); return b; };

  it.each([[1, 1], [1, 7], [3, 2048], [8, 256], [5, 99], [2, 4], [77, 40]])('rmsNorm rows=%i dim=%i (weight, no weight, in place, WASM memory)', (rows, dim) => {
    const x = spread(rows * dim, rows + dim), w = spread(dim, dim);
    for (const weight of [w, null]) {
      const want = tsRowOps.rmsNorm(x, weight, rows, dim, 1e-6, new Float32Array(rows * dim));
      expect(k.rowOps.rmsNorm(x, weight, rows, dim, 1e-6, new Float32Array(rows * dim))).toEqual(want);
      const inPlace = x.slice();
      k.rowOps.rmsNorm(inPlace, weight, rows, dim, 1e-6);
      expect(inPlace).toEqual(want);
      const wx = wasmArray(x), wo = k.allocF32(rows * dim);
      k.rowOps.rmsNorm(wx, weight, rows, dim, 1e-6, wo);
      expect(wo).toEqual(want);
      k.freeF32(wx); k.freeF32(wo);
    }
  });

  it.each([[1, 2048], [3, 13], [2, 64], [37, 130]])('AltUp router dots, mix and correction T=%i H=%i', (T, H) => {
    const A = 4, TH = T * H;
    const x = spread(TH, 3 * H), normW = spread(H, 4), routerW = spread(A * H, 5);
    const dots = [new Float64Array(T * A), new Float64Array(T * A)], normed = [new Float32Array(TH), new Float32Array(TH)];
    tsRowOps.altupRouterDots(x, normW, routerW, T, H, A, 1e-6, Math.fround(1 / H), normed[0], dots[0]);
    k.rowOps.altupRouterDots(x, normW, routerW, T, H, A, 1e-6, Math.fround(1 / H), normed[1], dots[1]);
    expect(normed[1]).toEqual(normed[0]);
    expect(dots[1]).toEqual(dots[0]);

    const streams = spread(A * TH, 6), C = rand(T * 16, 7, 3);
    const mix = [new Float32Array(A * TH), new Float32Array(A * TH)];
    altupMix4(C, streams, mix[0], T, H);
    k.rowOps.altupMix4(C, streams, mix[1], T, H);
    expect(mix[1]).toEqual(mix[0]);
    const wmix = k.allocF32(A * TH), ws = wasmArray(streams);
    k.rowOps.altupMix4(C, ws, wmix, T, H);
    expect(wmix).toEqual(mix[0]);

    const activated = spread(TH, 8), coef = rand(T * A, 9, 2);
    const out = [new Float32Array(A * TH), new Float32Array(A * TH)];
    tsRowOps.altupCorrectStreams(mix[0], activated, 0, coef, out[0], T, H, A);
    k.rowOps.altupCorrectStreams(mix[0], activated, 0, coef, out[1], T, H, A);
    expect(out[1]).toEqual(out[0]);
    k.rowOps.altupCorrectStreams(wmix, activated, 0, coef, ws, T, H, A); // WASM memory, out = the old streams
    expect(ws).toEqual(out[0]);
    k.freeF32(wmix); k.freeF32(ws);
  });

  it.each([[1, 2048], [3, 13], [2, 7], [1, 1], [37, 300]])('residual adds and column scale T=%i H=%i (ordinary and WASM memory, in place)', (T, H) => {
    const A = 4, TH = T * H;
    const a = spread(TH, 11), b = spread(TH, 12), c = spread(TH, 13), w = spread(H, 14), streams = spread(A * TH, 15);
    b[0] = 2e38; c[0] = 2e38; // the float64 sum does not overflow where a float32 one would
    const want = new Float32Array(TH), got = new Float32Array(TH);
    tsRowOps.sum3Scaled(a, b, c, Math.SQRT1_2, want, TH);
    k.rowOps.sum3Scaled(a, b, c, Math.SQRT1_2, got, TH);
    expect(got).toEqual(want);
    expect(Number.isFinite(want[0])).toBe(true);
    const wa = wasmArray(a), wb = wasmArray(b), wc = wasmArray(c), wo = k.allocF32(TH);
    k.rowOps.sum3Scaled(wa, wb, wc, Math.SQRT1_2, wo, TH);
    expect(wo).toEqual(want);

    const r0 = streams.slice(), r1 = streams.slice(), r2 = wasmArray(streams);
    tsRowOps.addRepeated(r0.subarray(TH), a, TH, A - 1);
    k.rowOps.addRepeated(r1.subarray(TH), a, TH, A - 1);
    k.rowOps.addRepeated(r2.subarray(TH), wa, TH, A - 1);
    expect(r1).toEqual(r0);
    expect(r2).toEqual(r0);
    expect(r0.subarray(0, TH)).toEqual(streams.subarray(0, TH)); // the first block is left alone

    const s0 = tsRowOps.scaleColumns(a, w, new Float32Array(TH), T, H);
    expect(k.rowOps.scaleColumns(a, w, new Float32Array(TH), T, H)).toEqual(s0);
    const inPlace = a.slice();
    k.rowOps.scaleColumns(inPlace, w, inPlace, T, H);
    expect(inPlace).toEqual(s0);
    k.rowOps.scaleColumns(wa, w, wo, T, H);
    expect(wo).toEqual(s0);
    for (const f of [wa, wb, wc, wo, r2]) k.freeF32(f);
  });

  it.each([[1, 8, 256], [37, 2, 256], [3, 3, 10], [5, 1, 6]])('RoPE T=%i heads=%i d=%i (ordinary and WASM memory)', (T, H, d) => {
    const half = d / 2;
    const x = spread(T * H * d, T + d), cos = rand(T * half, 21), sin = rand(T * half, 22);
    cos[0] = 1; sin[0] = 0; // a pass-through pair (Gemma 4's p-RoPE)
    const want = x.slice(), got = x.slice(), wx = wasmArray(x);
    tsRowOps.rope(want, cos, sin, T, H, d);
    k.rowOps.rope(got, cos, sin, T, H, d);
    k.rowOps.rope(wx, cos, sin, T, H, d);
    expect(got).toEqual(want);
    expect(wx).toEqual(want);
    k.freeF32(wx);
  });

  it.each([[1, 8192], [3, 13], [37, 130], [2, 7], [4, 2048]])('gaussian top-k GELU rows=%i dim=%i (kept count, NaN row, WASM memory)', (rows, dim) => {
    const n = rows * dim, kStd = Math.fround(1.6448536);
    const gate = rand(n, rows + 5 * dim, 3), up = rand(n, dim + 1, 2);
    for (let i = 0; i < n; i += 97) gate[i] = 4 + i / n; // a few well above the cutoff in every row
    if (rows > 2) gate[2 * dim + 1] = NaN; // row 2: mean and cutoff NaN, the row all NaN
    const want = gate.slice(), got = gate.slice();
    const keptTs = tsRowOps.gaussianGeluMul(want, up, rows, dim, kStd);
    const keptWasm = k.rowOps.gaussianGeluMul(got, up, rows, dim, kStd);
    if (dim >= 100) expect(keptTs).toBeGreaterThan(0);
    expect(keptWasm).toBe(keptTs);
    expect(got).toEqual(want);
    const wg = wasmArray(gate), wu = wasmArray(up);
    expect(k.rowOps.gaussianGeluMul(wg, wu, rows, dim, kStd)).toBe(keptTs);
    expect(wg).toEqual(want);
    k.freeF32(wg); k.freeF32(wu);
  });
});
