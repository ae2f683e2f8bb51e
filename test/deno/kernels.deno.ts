/**
 * The WASM kernels under Deno (run by test/deno/deno.test.ts through `deno test`): every variant
 * Deno can run (SIMD128, and Relaxed SIMD where relaxedSimdSupported(); 1 and 2 threads, workers
 * as Blob-URL module Web Workers) against its TS twin on ragged shapes, with the tolerances of
 * test/kernels/wasm_kernels.test.ts, plus a golden greedy continuation on WasmKernels f32.
 * Imports the compiled package (dist/) and build/*.wasm, like golden.deno.ts.
 */
import { createDenoWasmKernels } from '../../dist/src/deno/wasm_host.js';
import { DenoFolder } from '../../dist/src/deno/fs_folder.js';
import type { AttentionParams } from '../../dist/src/kernels/kernels.js';
import { Q4Matrix, q4Linear } from '../../dist/src/kernels/q4.js';
import { TsKernels } from '../../dist/src/kernels/ts_kernels.js';
import { tsRowOps } from '../../dist/src/kernels/row_ops.js';
import { relaxedSimdSupported, type WasmKernels } from '../../dist/src/kernels/wasm_kernels.js';
import { greedyGenerate } from '../../dist/src/engine/greedy.js';
import { Gemma3nTextModel } from '../../dist/src/model/text_model.js';
import { closeness, rand } from '../numeric.ts';

interface TestContext {
  step(name: string, fn: () => void | Promise<void>): Promise<boolean>;
}
declare const Deno: {
  test(name: string, fn: (t: TestContext) => Promise<void>): void;
  readTextFile(path: string): Promise<string>;
};

function assert(cond: unknown, msg: string): asserts cond {
  if (!cond) throw new Error(msg);
}

const haveRelaxed = relaxedSimdSupported();
const variants = [
  { relaxed: false, threads: 1 },
  { relaxed: false, threads: 2 },
  ...(haveRelaxed
    ? [
        { relaxed: true, threads: 1 },
        { relaxed: true, threads: 2 },
      ]
    : []),
];
const ts = new TsKernels();
const GOLDEN = new URL('../golden/text-tiny-a/', import.meta.url).pathname;

const shapes: [number, number, number][] = [
  [1, 1, 1],
  [1, 5, 3],
  [1, 64, 32],
  [1, 37, 75],
  [2, 8, 16],
  [3, 19, 33],
  [5, 130, 257],
  [1, 1001, 96],
  [4, 3, 2048],
  [12, 21, 417], // Relaxed SIMD: 2-8 tokens take the multi-token GEMV, more the batched GEMM
];
const attn: [string, Omit<AttentionParams, 'q' | 'k' | 'v' | 'out' | 'scale'> & { scale?: number }][] = [
  ['decode GQA 8/2 D=256 full', { T: 1, S: 40, numHeads: 8, numKvHeads: 2, headDim: 256, qPos0: 39, kPos0: 0, window: 0 }],
  [
    'decode GQA 8/2 D=256 over 3 blocks of keys, scale 2',
    { T: 1, S: 150, numHeads: 8, numKvHeads: 2, headDim: 256, qPos0: 149, kPos0: 0, window: 0, scale: 2 },
  ],
  ['prefill causal T=S=70 (block edge) D=16', { T: 70, S: 70, numHeads: 4, numKvHeads: 1, headDim: 16, qPos0: 0, kPos0: 0, window: 0 }],
  ['sliding window 5, ragged D=7', { T: 9, S: 20, numHeads: 3, numKvHeads: 3, headDim: 7, qPos0: 11, kPos0: 0, window: 5 }],
  ['window with kPos0 > 0 (ring cache) and rows that see nothing', { T: 6, S: 10, numHeads: 2, numKvHeads: 1, headDim: 12, qPos0: 13, kPos0: 16, window: 4 }],
  ['long context S=300 window 128 scale 0.3', { T: 3, S: 300, numHeads: 4, numKvHeads: 2, headDim: 32, qPos0: 297, kPos0: 0, window: 128, scale: 0.3 }],
];

Deno.test('Relaxed SIMD is available in Deno without flags', () => {
  assert(haveRelaxed, 'relaxedSimdSupported() is false');
  return Promise.resolve();
});

for (const { relaxed, threads } of variants) {
  // One test per variant: the kernels (and their workers) are created and disposed inside it, so
  // Deno's op/resource sanitizers see no worker outliving its test.
  Deno.test(`WasmKernels relaxed=${relaxed} threads=${threads} vs TsKernels`, async (t) => {
    const k: WasmKernels = await createDenoWasmKernels({ relaxed, threads, smallJobMacs: 0 }); // every call uses all threads
    try {
      await t.step('instance: variant and thread count as asked', () => {
        assert(k.relaxed === relaxed, `relaxed ${k.relaxed}`);
        assert(k.threads === threads && k.name.includes(`${threads}t`), `threads ${k.threads}, name ${k.name}`);
        assert(k.name === `wasm-${relaxed ? 'relaxed' : 'simd128'}-${threads}t`, `name ${k.name}`);
      });

      for (const [T, outDim, inDim] of shapes) {
        await t.step(`f32 linear T=${T} out=${outDim} in=${inDim}`, () => {
          const w = rand(outDim * inDim, outDim + 7 * inDim),
            x = rand(T * inDim, T + 3 * inDim);
          const y = new Float32Array(T * outDim).fill(NaN),
            ref = new Float32Array(T * outDim);
          ts.linear(ts.createLinear(w, outDim, inDim), x, T, ref);
          const lw = k.createLinear(w, outDim, inDim);
          k.linear(lw, x, T, y);
          k.release(lw);
          const c = closeness(y, ref, 1e-5, 1e-5);
          assert(c <= 1, `closeness ${c}`);
        });
      }

      for (const [T, outDim, inDim] of shapes) {
        await t.step(`q4 linear T=${T} out=${outDim} in=${inDim}`, () => {
          const q = Q4Matrix.quantize(rand(outDim * inDim, 3 * outDim + inDim), outDim, inDim);
          const x = rand(T * inDim, 5 * T + inDim, 2);
          const y = new Float32Array(T * outDim).fill(NaN),
            ref = new Float32Array(T * outDim);
          q4Linear(q, x, T, ref);
          const lw = k.createLinear(q, outDim, inDim);
          k.linear(lw, x, T, y);
          const back = k.exportQ4(lw);
          k.release(lw);
          const c = closeness(y, ref, 1e-4, 1e-4);
          assert(c <= 1, `closeness ${c}`);
          assert(back.nibbles.length === q.nibbles.length && back.nibbles.every((b, i) => b === q.nibbles[i]), 'exportQ4 nibbles differ');
        });
      }

      for (const [name, shape] of attn) {
        await t.step(`attention ${name}`, () => {
          const { T, S, numHeads, numKvHeads, headDim } = shape;
          const p: AttentionParams = {
            scale: 1,
            ...shape,
            q: rand(T * numHeads * headDim, T + S, 0.5),
            k: rand(S * numKvHeads * headDim, S, 0.5),
            v: rand(S * numKvHeads * headDim, S + 1),
            out: new Float32Array(T * numHeads * headDim).fill(NaN),
          };
          const ref = new Float32Array(T * numHeads * headDim);
          ts.attention({ ...p, out: ref });
          k.attention(p);
          const c = closeness(p.out, ref, 1e-5, 1e-4);
          assert(c <= 1, `closeness ${c}`);
        });
      }

      await t.step('rowOps (RMSNorm, AltUp router/mix/correction, residual adds) equal tsRowOps bit for bit', () => {
        const same = (a: ArrayLike<number>, b: ArrayLike<number>, what: string) => {
          for (let i = 0; i < b.length; i++) assert(Object.is(a[i], b[i]), `${what}[${i}]: ${a[i]} vs ${b[i]}`);
        };
        for (const [T, H] of [
          [1, 2048],
          [3, 13],
        ]) {
          const A = 4,
            TH = T * H,
            x = rand(TH, H),
            w = rand(H, 2),
            rw = rand(A * H, 3),
            streams = rand(A * TH, 4),
            C = rand(T * 16, 5, 3),
            coef = rand(T * A, 6, 2);
          same(k.rowOps.rmsNorm(x, w, T, H, 1e-6, new Float32Array(TH)), tsRowOps.rmsNorm(x, w, T, H, 1e-6, new Float32Array(TH)), 'rmsNorm');
          const d = [new Float64Array(T * A), new Float64Array(T * A)],
            n = [new Float32Array(TH), new Float32Array(TH)];
          k.rowOps.altupRouterDots(x, w, rw, T, H, A, 1e-6, Math.fround(1 / H), n[0], d[0]);
          tsRowOps.altupRouterDots(x, w, rw, T, H, A, 1e-6, Math.fround(1 / H), n[1], d[1]);
          same(d[0], d[1], 'router dots');
          const m = [new Float32Array(A * TH), new Float32Array(A * TH)];
          k.rowOps.altupMix4(C, streams, m[0], T, H);
          tsRowOps.altupMix4(C, streams, m[1], T, H);
          same(m[0], m[1], 'mix');
          const o = [new Float32Array(A * TH), new Float32Array(A * TH)];
          k.rowOps.altupCorrectStreams(m[1], x, 0, coef, o[0], T, H, A);
          tsRowOps.altupCorrectStreams(m[1], x, 0, coef, o[1], T, H, A);
          same(o[0], o[1], 'correct');
          const r = [streams.slice(), streams.slice()];
          k.rowOps.addRepeated(r[0], x, TH, A);
          tsRowOps.addRepeated(r[1], x, TH, A);
          same(r[0], r[1], 'addRepeated');
          k.rowOps.sum3Scaled(x, streams, coef.length >= TH ? coef : streams.subarray(TH), Math.SQRT1_2, o[0], TH);
          tsRowOps.sum3Scaled(x, streams, coef.length >= TH ? coef : streams.subarray(TH), Math.SQRT1_2, o[1], TH);
          same(o[0], o[1], 'sum3Scaled');
          same(k.rowOps.scaleColumns(x, w, o[0], T, H), tsRowOps.scaleColumns(x, w, o[1], T, H), 'scaleColumns');
          const rr = [streams.slice(), streams.slice()],
            half = H % 2 ? 0 : H / 2;
          if (half) {
            k.rowOps.rope(rr[0], w, rw, T, 4, H);
            tsRowOps.rope(rr[1], w, rw, T, 4, H);
            same(rr[0], rr[1], 'rope');
          }
        }
      });

      await t.step('golden text-tiny-a prompt 0: greedy continuation on WasmKernels f32 equals the reference ids', async () => {
        const { model, checkpoint } = await Gemma3nTextModel.load(new DenoFolder(GOLDEN), k);
        await checkpoint.close();
        const gen = JSON.parse(await Deno.readTextFile(`${GOLDEN}generation.json`)) as { prompts: { prompt_ids: number[]; generated_ids: number[] }[] };
        const { prompt_ids, generated_ids } = gen.prompts[0];
        assert(generated_ids.length === 16, `reference has ${generated_ids.length} ids`);
        const out = await greedyGenerate(model, prompt_ids, generated_ids.length);
        assert(out.join() === generated_ids.join(), `got ${out} want ${generated_ids}`);
      });

      if (threads > 1) {
        await t.step('500 back-to-back calls on 2 threads equal the 1-thread results bit for bit', () => {
          const outDim = 1024,
            inDim = 1056,
            x = rand(inDim, 79);
          const q = k.createLinear(Q4Matrix.quantize(rand(outDim * inDim, 77), outDim, inDim), outDim, inDim);
          const f = k.createLinear(rand(outDim * inDim, 78), outDim, inDim);
          const refQ = new Float32Array(outDim),
            refF = new Float32Array(outDim),
            y = new Float32Array(outDim);
          try {
            k.activeThreads = 1;
            k.linear(q, x, 1, refQ);
            k.linear(f, x, 1, refF);
            k.activeThreads = threads;
            for (let i = 0; i < 500; i++) {
              const ref = i % 2 ? refQ : refF;
              k.linear(i % 2 ? q : f, x, 1, y);
              assert(
                y.every((v, j) => v === ref[j]),
                `call ${i}: result differs from the single-thread run`,
              );
            }
          } finally {
            k.activeThreads = threads;
            k.release(q);
            k.release(f);
          }
        });
      }
    } finally {
      k.dispose();
    }
  });
}
