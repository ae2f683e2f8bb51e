import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AttentionParams } from '../../src/kernels/kernels.js';
import { Q4Matrix, q4Linear } from '../../src/kernels/q4.js';
import { TsKernels } from '../../src/kernels/ts_kernels.js';
import { relaxedSimdSupported, type WasmKernels } from '../../src/kernels/wasm_kernels.js';
import { createNodeWasmKernels, nodeWasmHost } from '../../src/node/wasm_host.js';
import { closeness, ensureWasmBuilt, rand } from '../helpers.js';

ensureWasmBuilt();
nodeWasmHost().enableRelaxedSimd!(); // Node 20: --experimental-wasm-relaxed-simd at run time
const haveRelaxed = relaxedSimdSupported();
const variants: { relaxed: boolean; threads: number }[] = [
  { relaxed: false, threads: 1 },
  { relaxed: false, threads: 2 },
  ...(haveRelaxed ? [{ relaxed: true, threads: 1 }, { relaxed: true, threads: 2 }] : []),
];

it('relaxed SIMD is available on this runtime (with the flag set at run time)', () => {
  expect(haveRelaxed).toBe(true);
});

const ts = new TsKernels();

describe.each(variants)('WasmKernels relaxed=$relaxed threads=$threads', ({ relaxed, threads }) => {
  let k: WasmKernels;
  beforeAll(async () => {
    k = await createNodeWasmKernels({ relaxed, threads, smallJobMacs: 0 }); // every call uses all threads
    expect(k.relaxed).toBe(relaxed);
    expect(k.threads).toBe(threads);
  });
  afterAll(() => k.dispose());

  const shapes: [number, number, number][] = [
    [1, 1, 1], [1, 5, 3], [1, 64, 32], [1, 37, 75], [2, 8, 16], [3, 19, 33], [5, 130, 257], [1, 1001, 96], [4, 3, 2048],
  ];

  it.each(shapes)('f32 linear T=%i out=%i in=%i matches TsKernels', (T, outDim, inDim) => {
    const w = rand(outDim * inDim, outDim + 7 * inDim), x = rand(T * inDim, T + 3 * inDim);
    const y = new Float32Array(T * outDim).fill(NaN), ref = new Float32Array(T * outDim);
    ts.linear(ts.createLinear(w, outDim, inDim), x, T, ref);
    const lw = k.createLinear(w, outDim, inDim);
    k.linear(lw, x, T, y);
    k.release(lw);
    expect(closeness(y, ref, 1e-5, 1e-5)).toBeLessThanOrEqual(1);
  });

  it.each(shapes)('q4 linear T=%i out=%i in=%i matches the TS q4 reference', (T, outDim, inDim) => {
    const q = Q4Matrix.quantize(rand(outDim * inDim, 3 * outDim + inDim), outDim, inDim);
    const x = rand(T * inDim, 5 * T + inDim, 2);
    const y = new Float32Array(T * outDim).fill(NaN), ref = new Float32Array(T * outDim);
    q4Linear(q, x, T, ref);
    const lw = k.createLinear(q, outDim, inDim);
    k.linear(lw, x, T, y);
    expect(closeness(y, ref, 1e-4, 1e-4)).toBeLessThanOrEqual(1);
    // exportQ4 gives back the same packed matrix (for saving)
    const back = k.exportQ4(lw);
    expect(back.nibbles).toEqual(q.nibbles);
    k.release(lw);
  });

  // Batched decode and prefill must give each token exactly what it gets alone (the GEMV):
  // the engine's batched logits are bit-identical to single-sequence ones (test/model/batch.test.ts).
  // (The batched path takes 8 row blocks at a time, a last 1-4 in a 4-block loop, a ragged set
  // repeating its last block; 67 groups leave 3 after the last full four; 40 tokens of 64
  // groups make two tiles, 9 tokens of 256 groups too.)
  it.each([[2, 9, 9 * 32 - 5], [3, 37, 75], [5, 13, 8 * 32], [8, 6, 32], [17, 21, 13 * 32 + 1], [4, 70, 66 * 32 + 7], [40, 45, 64 * 32], [9, 40, 8192]])('q4 T=%i out=%i in=%i: every token bit-identical to running it alone', (T, outDim, inDim) => {
    const q = Q4Matrix.quantize(rand(outDim * inDim, 7 * outDim + inDim), outDim, inDim);
    const x = rand(T * inDim, 3 * T + inDim, 2);
    x.fill(0, 0, Math.min(inDim, 40)); // an all-zero group (scale 0) in token 0
    const lw = k.createLinear(q, outDim, inDim);
    const y = new Float32Array(T * outDim).fill(NaN), one = new Float32Array(outDim);
    k.linear(lw, x, T, y);
    for (let t = 0; t < T; t++) {
      k.linear(lw, x.subarray(t * inDim, (t + 1) * inDim), 1, one);
      expect(y.subarray(t * outDim, (t + 1) * outDim), `token ${t}`).toEqual(one);
    }
    const ref = new Float32Array(T * outDim);
    q4Linear(q, x, T, ref);
    expect(closeness(y, ref, 1e-4, 1e-4)).toBeLessThanOrEqual(1);
    k.release(lw);
  });

  it.each([[37, 75], [130, 257], [8192 + 6, 64]])('linearRows out=%i in=%i: the listed row blocks equal linear bit for bit, other rows untouched', (outDim, inDim) => {
    const q = Q4Matrix.quantize(rand(outDim * inDim, outDim + inDim), outDim, inDim);
    const x = rand(inDim, 3 * inDim, 2);
    const lw = k.createLinear(q, outDim, inDim);
    const full = new Float32Array(outDim);
    k.linear(lw, x, 1, full);
    const B = Math.ceil(outDim / 4);
    const ranges = new Int32Array([0, 1, 3, 5, B - 2, B]); // first block, a run, the ragged last block
    const y = new Float32Array(outDim).fill(-7);
    k.linearRows!(lw, x, y, ranges, 3);
    for (let o = 0; o < outDim; o++) {
      const b = o >> 2, listed = b < 1 || (b >= 3 && b < 5) || b >= B - 2;
      expect(y[o], `row ${o}`).toBe(listed ? full[o] : -7);
    }
    k.linearRows!(lw, x, y, ranges, 0); // nothing listed: nothing written
    expect(() => k.linearRows!(lw, x, y, new Int32Array([0, B + 1]), 1)).toThrow(/outside/);
    k.release(lw);
  });

  it.each([1, 3, 6])('linearMany T=%i: three q4 weights (ragged rows) in one job equal three q4 references', (T) => {
    const inDim = 75, outs = [5, 37, 64];
    const qs = outs.map((o, i) => Q4Matrix.quantize(rand(o * inDim, 40 + i), o, inDim));
    const x = rand(T * inDim, 9 + T, 2);
    const ws = qs.map((q) => k.createLinear(q, q.outDim, inDim));
    const ys = outs.map((o) => new Float32Array(T * o).fill(NaN));
    k.linearMany(ws, x, T, ys);
    qs.forEach((q, i) => {
      const ref = new Float32Array(T * q.outDim);
      q4Linear(q, x, T, ref);
      expect(closeness(ys[i], ref, 1e-4, 1e-4)).toBeLessThanOrEqual(1);
    });
    // mixed formats fall back to one call per weight; a different inDim is refused
    const f = k.createLinear(rand(7 * inDim, 3), 7, inDim);
    const yf = new Float32Array(T * 7), yq = new Float32Array(T * 5), refF = new Float32Array(T * 7);
    k.linearMany([f, ws[0]], x, T, [yf, yq]);
    k.linear(f, x, T, refF);
    expect(yf).toEqual(refF);
    expect(yq).toEqual(ys[0]);
    const other = k.createLinear(rand(4 * 32, 5), 4, 32, 'q4');
    expect(() => k.linearMany([ws[0], other], x, T, [yq, new Float32Array(T * 4)])).toThrow(/inDim 32/);
    [...ws, f, other].forEach((w) => k.release(w));
  });

  // values across GELU's and tanh's regimes, incl. the ends, ±0, ±Infinity and NaN
  const special = [0, -0, 1e-30, -1e-30, 0.5, -0.5, 1, -1, 3, -3, 10, -10, 29.9, -30.1, 88, -88, 1e4, -1e4, Infinity, -Infinity, NaN];
  const mixed = (n: number, seed: number) => { const v = rand(n, seed, 12); special.forEach((x, i) => { if (i < n) v[(i * 7919) % n] = x; }); return v; };
  /**
   * |got − want| ≤ `ulps` float32 ulps of the value, or 2e-9 absolute for values near 0; NaN
   * and ±Infinity exactly where the reference has them. The WASM kernels compute in float32
   * (the reference in float64, rounded once): GELU's exponent argument −2u rounded to float32
   * costs up to ~10 ulps in the negative tail (measured worst 10.4 on a dense grid over
   * [−12, 12]); the soft-cap measured 2.0.
   */
  const ulpClose = (got: Float32Array, want: Float32Array, ulps: number) => {
    for (let i = 0; i < want.length; i++) {
      if (Number.isNaN(want[i])) { expect(got[i], `index ${i}`).toBeNaN(); continue; }
      if (!Number.isFinite(want[i])) { expect(got[i], `index ${i}`).toBe(want[i]); continue; }
      expect(Math.abs(got[i] - want[i]), `index ${i}: ${got[i]} vs ${want[i]}`).toBeLessThanOrEqual(Math.max(ulps * 1.2e-7 * Math.abs(want[i]), 2e-9));
    }
  };

  it.each([1, 3, 4, 37, 8192 + 5])('geluMul n=%i matches the TS reference to a few ulps', (n) => {
    const a = mixed(n, n), b = rand(n, n + 1, 2);
    const want = new Float32Array(a);
    ts.geluMul(want, b, n);
    const got = new Float32Array(a);
    k.geluMul(got, b, n);
    ulpClose(got, want, 16);
  });

  it.each([1, 5, 262400 + 3])('softcap n=%i (cap 30) matches the TS reference to a few ulps', (n) => {
    const x = mixed(n, 3 * n);
    const want = new Float32Array(x);
    ts.softcap(want, n, 30);
    const got = new Float32Array(x);
    k.softcap(got, n, 30);
    ulpClose(got, want, 4);
    expect(got[n - 1]).toBe(want[n - 1]); // n itself, not more or fewer, were written (tail lane)
  });

  it('q4 via createLinear(f32, format q4) equals quantize-then-upload', () => {
    const w = rand(24 * 96, 99);
    const x = rand(96, 98);
    const a = new Float32Array(24), b = new Float32Array(24);
    k.linear(k.createLinear(w, 24, 96, 'q4'), x, 1, a);
    q4Linear(Q4Matrix.quantize(w, 24, 96), x, 1, b);
    expect(closeness(a, b, 1e-5, 1e-5)).toBeLessThanOrEqual(1);
  });

  it('LM-head shape: 262144 rows, 3 tokens chunked through a bounded scratch', async () => {
    const outDim = 262144, inDim = 64, T = 3;
    const k = await createNodeWasmKernels({ relaxed, threads, maxScratchBytes: 2 << 20, smallJobMacs: 0 }); // 1 token per chunk
    const q = Q4Matrix.quantize(rand(outDim * inDim, 1), outDim, inDim);
    const x = rand(T * inDim, 2);
    const y = new Float32Array(T * outDim), ref = new Float32Array(T * outDim);
    const lw = k.createLinear(q, outDim, inDim);
    k.linear(lw, x, T, y);
    k.release(lw);
    k.dispose();
    q4Linear(q, x, T, ref);
    expect(closeness(y, ref, 1e-4, 1e-4)).toBeLessThanOrEqual(1);
  });

  it('prefill T=11 in chunks of 4, 4, 3 tokens (unpacked row blocks, then the pairwise loop), odd group count', async () => {
    const outDim = 37, inDim = 9 * 32 - 5, T = 11; // 9 groups, the last one ragged
    const G = 9, perT = (inDim + 64) * 4 + G * 40; // ~WasmKernels' per-token scratch: ≥ 4 tokens fit, not 8
    const k = await createNodeWasmKernels({ relaxed, threads, maxScratchBytes: perT * 4 + 100, smallJobMacs: 0 });
    const q = Q4Matrix.quantize(rand(outDim * inDim, 11), outDim, inDim);
    const x = rand(T * inDim, 12, 3);
    const y = new Float32Array(T * outDim).fill(NaN), ref = new Float32Array(T * outDim);
    const lw = k.createLinear(q, outDim, inDim);
    k.linear(lw, x, T, y);
    k.dispose();
    q4Linear(q, x, T, ref);
    expect(closeness(y, ref, 1e-4, 1e-4)).toBeLessThanOrEqual(1);
  });

  const attn: [string, Partial<AttentionParams>][] = [
    ['decode GQA 8/2 D=256 full', { T: 1, S: 40, numHeads: 8, numKvHeads: 2, headDim: 256, qPos0: 39, kPos0: 0, window: 0 }],
    ['decode GQA 8/2 D=256 over 3 blocks of keys, scale 2', { T: 1, S: 150, numHeads: 8, numKvHeads: 2, headDim: 256, qPos0: 149, kPos0: 0, window: 0, scale: 2 }],
    ['prefill causal T=S=70 (block edge) D=16', { T: 70, S: 70, numHeads: 4, numKvHeads: 1, headDim: 16, qPos0: 0, kPos0: 0, window: 0 }],
    ['sliding window 5, ragged D=7', { T: 9, S: 20, numHeads: 3, numKvHeads: 3, headDim: 7, qPos0: 11, kPos0: 0, window: 5 }],
    ['window with kPos0 > 0 (ring cache) and rows that see nothing', { T: 6, S: 10, numHeads: 2, numKvHeads: 1, headDim: 12, qPos0: 13, kPos0: 16, window: 4 }],
    ['long context S=300 window 128 scale 0.3', { T: 3, S: 300, numHeads: 4, numKvHeads: 2, headDim: 32, qPos0: 297, kPos0: 0, window: 128, scale: 0.3 }],
    ['GQA group 5 (four heads blocked, one alone), ragged D=20', { T: 4, S: 30, numHeads: 5, numKvHeads: 1, headDim: 20, qPos0: 26, kPos0: 0, window: 0 }],
    ['GQA group 3 (a pair of heads, one alone), D=36, 2 key blocks', { T: 5, S: 90, numHeads: 6, numKvHeads: 2, headDim: 36, qPos0: 85, kPos0: 0, window: 0 }],
  ];
  it.each(attn)('attention %s matches TsKernels', (_name, shape) => {
    const { T, S, numHeads, numKvHeads, headDim } = shape as AttentionParams;
    const p: AttentionParams = {
      ...({ scale: 1 } as Partial<AttentionParams>), ...shape as AttentionParams,
      q: rand(T * numHeads * headDim, T + S, 0.5), k: rand(S * numKvHeads * headDim, S, 0.5), v: rand(S * numKvHeads * headDim, S + 1),
      out: new Float32Array(T * numHeads * headDim).fill(NaN),
    };
    const ref = new Float32Array(T * numHeads * headDim);
    ts.attention({ ...p, out: ref });
    k.attention(p);
    expect(closeness(p.out, ref, 1e-5, 1e-4)).toBeLessThanOrEqual(1);
  });

  // A prefill's rows and decode steps must agree bit for bit (chunked prefill, batched decode:
  // test/model/batch.test.ts): each query row alone gives the same values as in a T-row call.
  it.each([[8, 2, 256], [5, 1, 20], [6, 2, 36]])('attention H=%i KVH=%i D=%i: every query row bit-identical to running it alone', (H, KVH, D) => {
    const T = 7, S = 75;
    const p: AttentionParams = {
      q: rand(T * H * D, 5, 0.5), k: rand(S * KVH * D, 6, 0.5), v: rand(S * KVH * D, 7), T, S, numHeads: H, numKvHeads: KVH, headDim: D,
      qPos0: S - T, kPos0: 0, window: 0, scale: 1, out: new Float32Array(T * H * D),
    };
    k.attention(p);
    const one = new Float32Array(H * D);
    for (let t = 0; t < T; t++) {
      k.attention({ ...p, q: p.q.subarray(t * H * D, (t + 1) * H * D), T: 1, qPos0: S - T + t, out: one });
      expect(one, `row ${t}`).toEqual(p.out.subarray(t * H * D, (t + 1) * H * D));
    }
  });

  it.each([[1, 37, 75], [5, 130, 257], [17, 21, 13 * 32 + 1]])('q4 linearMany T=%i out=%i in=%i with x and ys in WASM memory: in place, bit-identical, nothing past the rows written', (T, outDim, inDim) => {
    const q = Q4Matrix.quantize(rand(outDim * inDim, 3 * outDim + inDim), outDim, inDim), q2 = Q4Matrix.quantize(rand(outDim * inDim, 5), outDim, inDim);
    const x = rand(T * inDim, 5 * T + inDim, 2);
    const w1 = k.createLinear(q, outDim, inDim), w2 = k.createLinear(q2, outDim, inDim);
    const want = [new Float32Array(T * outDim), new Float32Array(T * outDim)];
    k.linearMany([w1, w2], x, T, want);
    const wx = k.allocF32(T * inDim), wy = k.allocF32(2 * T * outDim + 8).fill(-7);
    wx.set(x);
    const ys = [wy.subarray(0, T * outDim), wy.subarray(T * outDim + 4, 2 * T * outDim + 4)];
    k.linearMany([w1, w2], wx, T, ys);
    expect(ys[0]).toEqual(want[0]);
    expect(ys[1]).toEqual(want[1]);
    expect(Array.from(wy.subarray(T * outDim, T * outDim + 4))).toEqual([-7, -7, -7, -7]);
    expect(Array.from(wy.subarray(2 * T * outDim + 4))).toEqual([-7, -7, -7, -7]);
    expect(wx).toEqual(x);
    k.freeF32(wx); k.freeF32(wy); k.release(w1); k.release(w2);
  });

  it('memory: freed weights are reused and release is checked', () => {
    const before = k.heapBytes;
    const a = k.createLinear(rand(100 * 100, 1), 100, 100);
    k.release(a);
    const b = k.createLinear(rand(100 * 100, 1), 100, 100);
    k.release(b);
    expect(k.heapBytes).toBe(before);
    expect(() => k.linear(b, new Float32Array(100), 1, new Float32Array(100))).toThrow(/after release/);
  });
});

describe('WasmKernels threading', () => {
  it('thousands of back-to-back calls on 2 threads stay exact (job hand-off, chunk claims)', async () => {
    const k = await createNodeWasmKernels({ threads: 2, smallJobMacs: 0 });
    try {
      const outDim = 1024, inDim = 1056;
      const q = Q4Matrix.quantize(rand(outDim * inDim, 77), outDim, inDim);
      const lw = k.createLinear(q, outDim, inDim);
      const f = k.createLinear(rand(outDim * inDim, 78), outDim, inDim);
      const ref = new Float32Array(outDim), refF = new Float32Array(outDim), y = new Float32Array(outDim);
      const x = rand(inDim, 79);
      k.activeThreads = 1;
      k.linear(lw, x, 1, ref);
      k.linear(f, x, 1, refF);
      k.activeThreads = 2;
      for (let i = 0; i < 1500; i++) {
        k.linear(i % 2 ? lw : f, x, 1, y);
        if (y.some((v, j) => v !== (i % 2 ? ref : refF)[j])) throw new Error(`call ${i}: result differs from the single-thread run`);
      }
    } finally {
      k.dispose();
    }
  });

  it('falls back to one thread when the host cannot start workers', async () => {
    const host = { ...nodeWasmHost(), startWorker: undefined };
    const { WasmKernels } = await import('../../src/kernels/wasm_kernels.js');
    const k = await WasmKernels.create({ host, threads: 4 });
    expect(k.threads).toBe(1);
    const y = new Float32Array(3);
    k.linear(k.createLinear(new Float32Array([1, 2, 3, 4, 5, 6]), 3, 2), new Float32Array([1, 1]), 1, y);
    expect(Array.from(y)).toEqual([3, 7, 11]);
  });
});

describe('WasmKernels KV cache in WASM memory', () => {
  it('attention reads an allocF32 KV cache (and q, out) in place, also after memory.grow', async () => {
    const k = await createNodeWasmKernels({ threads: 2 });
    try {
      const S = 50, KVH = 2, D = 32, H = 4, T = 2;
      const kc = k.allocF32(S * KVH * D), vc = k.allocF32(S * KVH * D);
      kc.set(rand(S * KVH * D, 1)); vc.set(rand(S * KVH * D, 2));
      const big = k.createLinear(new Float32Array(4096 * 1024), 4096, 1024); // grows memory
      const p: AttentionParams = { q: rand(T * H * D, 3), k: kc, v: vc, T, S, numHeads: H, numKvHeads: KVH, headDim: D, qPos0: 48, kPos0: 0, window: 0, scale: 1, out: new Float32Array(T * H * D) };
      const ref = new Float32Array(T * H * D);
      ts.attention({ ...p, k: kc.slice(), v: vc.slice(), out: ref });
      k.attention(p);
      expect(closeness(p.out, ref, 1e-5, 1e-4)).toBeLessThanOrEqual(1);
      // q and out in WASM memory too (the decoder's work buffers): used in place
      const qr = k.allocF32(T * H * D), outr = k.allocF32(T * H * D).fill(NaN);
      qr.set(p.q);
      k.attention({ ...p, q: qr, out: outr });
      expect(outr).toEqual(p.out);
      k.release(big);
      k.freeF32(kc); k.freeF32(vc); k.freeF32(qr); k.freeF32(outr);
    } finally {
      k.dispose();
    }
  });
});
