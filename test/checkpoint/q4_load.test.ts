/**
 * src/checkpoint/q4_load.ts: a version 3 `.q4` blob read straight into WASM kernel memory and
 * widened in place gives exactly the weight that decoding it to a Q4Matrix and uploading gives
 * (from a file and from memory); older blobs still load; a bad scale base is refused naming the
 * tensor and the row, and the reserved memory is given back.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Checkpoint } from '../../src/checkpoint/checkpoint.js';
import { decodeQ4, encodeQ4, q4Header } from '../../src/checkpoint/packed_format.js';
import { expandQ4Blocks, LOG_SCALE, q4BlockBytes, quantizeQ4Blocks } from '../../src/checkpoint/q4_compact.js';
import { loadPackedQ4, ReadSlots, startPackedQ4 } from '../../src/checkpoint/q4_load.js';
import { writeSafetensors } from '../../src/checkpoint/safetensors.js';
import { MemoryFolder } from '../../src/io/byte_source.js';
import { Q4Matrix } from '../../src/kernels/q4.js';
import { NodeFolder } from '../../src/node/fs_folder.js';
import { createNodeWasmKernels } from '../../src/node/wasm_host.js';

const OUT = 37,
  IN = 100;

function values(n: number, seed: number): Float32Array {
  const w = new Float32Array(n);
  let s = seed;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    w[i] = s / 2 ** 32 - 0.5;
  }
  return w;
}

function v3Blob(w: Float32Array, out = OUT, inDim = IN): Uint8Array {
  const body = quantizeQ4Blocks(w, out, inDim, 'test');
  const blob = new Uint8Array(32 + body.length);
  blob.set(q4Header(out, inDim, 'u8log'));
  blob.set(body, 32);
  return blob;
}

const st = (blobs: Record<string, Uint8Array>) =>
  writeSafetensors(Object.entries(blobs).map(([name, data]) => ({ name, dtype: 'U8' as const, shape: [data.length], data })));

describe('packed .q4 loading', () => {
  it('version 3, in place (from a file and from memory) = decoded and uploaded; version 2 still loads', async () => {
    const k = await createNodeWasmKernels({ threads: 1 });
    const w = values(OUT * IN, 1),
      blob = v3Blob(w);
    const old = encodeQ4(Q4Matrix.quantize(w, OUT, IN));
    const bytes = st({ 'a.q4': blob, 'old.q4': old });
    const dir = mkdtempSync(join(tmpdir(), 'g3n-q4load-'));
    writeFileSync(join(dir, 'model.safetensors'), bytes);
    const ref = k.createLinear(decodeQ4(blob, 'a'), OUT, IN);
    const x = values(5 * IN, 2),
      want = new Float32Array(5 * OUT),
      got = new Float32Array(5 * OUT);
    k.linear(ref, x, 5, want);
    for (const folder of [new NodeFolder(dir), new MemoryFolder(new Map([['model.safetensors', bytes]]), 'mem')]) {
      const ckpt = await Checkpoint.open(folder);
      const a = await loadPackedQ4(ckpt, 'a.q4', k, OUT, IN, "F: tensor 'a.q4'");
      for (const T of [1, 5]) {
        k.linear(a, x, T, got);
        expect(Array.from(got.subarray(0, T * OUT))).toEqual(Array.from(want.subarray(0, T * OUT)));
      }
      const b = await loadPackedQ4(ckpt, 'old.q4', k, OUT, IN, "F: tensor 'old.q4'");
      k.linear(b, x, 5, got);
      const d = got.reduce((m, v, i) => Math.max(m, Math.abs(v - want[i])), 0);
      expect(d).toBeLessThan(0.05 * Math.max(...want.map(Math.abs))); // another rounding of the scales, same matrix
      await expect(loadPackedQ4(ckpt, 'a.q4', k, OUT, IN + 1, "F: tensor 'a.q4'")).rejects.toThrow(
        /F: tensor 'a\.q4' is \[37, 100\] but the config implies \[37, 101\]/,
      );
      await ckpt.close();
    }
  });

  it('with shared memory (threads) the reads run in the background: weights started together, awaited after, are the same', async () => {
    const k = await createNodeWasmKernels({ threads: 2 });
    const w1 = values(OUT * IN, 7),
      w2 = values(OUT * IN, 8);
    const ckpt = await Checkpoint.open(new MemoryFolder(new Map([['model.safetensors', st({ 'a.q4': v3Blob(w1), 'b.q4': v3Blob(w2) })]]), 'mem'));
    const a = await startPackedQ4(ckpt, 'a.q4', k, OUT, IN, 'a');
    const b = await startPackedQ4(ckpt, 'b.q4', k, OUT, IN, 'b');
    expect(k.reserveQ4!(1, 32).stable).toBe(true);
    await Promise.all([a.ready, b.ready]);
    const x = values(3 * IN, 9),
      y = new Float32Array(3 * OUT),
      want = new Float32Array(3 * OUT);
    for (const [got, w] of [
      [a.weight, w1],
      [b.weight, w2],
    ] as const) {
      k.linear(got, x, 3, y);
      k.linear(k.createLinear(decodeQ4(v3Blob(w), 'w'), OUT, IN), x, 3, want);
      expect(Array.from(y)).toEqual(Array.from(want));
    }
  });

  it('one group per row (inDim ≤ 32: the compact form is larger than the widened one) loads through the decoder', async () => {
    for (const threads of [1, 2]) {
      const k = await createNodeWasmKernels({ threads });
      for (const [out, inDim] of [
        [6, 32],
        [9, 20],
        [4, 33],
      ] as const) {
        const w = values(out * inDim, 4),
          blob = v3Blob(w, out, inDim);
        const ckpt = await Checkpoint.open(new MemoryFolder(new Map([['model.safetensors', st({ 't.q4': blob })]]), 'mem'));
        const a = await loadPackedQ4(ckpt, 't.q4', k, out, inDim, "F: tensor 't.q4'");
        const ref = k.createLinear(decodeQ4(blob, 't'), out, inDim);
        const x = values(3 * inDim, 5),
          want = new Float32Array(3 * out),
          got = new Float32Array(3 * out);
        k.linear(ref, x, 3, want);
        k.linear(a, x, 3, got);
        expect(Array.from(got)).toEqual(Array.from(want));
        expect(want.some((v) => v !== 0)).toBe(true);
        await ckpt.close();
      }
    }
  });

  it('a NaN scale base is refused naming the tensor and the row; the memory is given back', async () => {
    const k = await createNodeWasmKernels({ threads: 1 });
    const blob = v3Blob(values(OUT * IN, 3));
    new DataView(blob.buffer).setFloat32(32 + (16 + 68 * 4) * 2 + 4, NaN, true); // block 2, row 1 = row 9
    const ckpt = await Checkpoint.open(new MemoryFolder(new Map([['model.safetensors', st({ 'bad.q4': blob })]]), 'mem'));
    const r = k.reserveQ4!(OUT, IN);
    const at = r.view().byteOffset;
    r.cancel();
    await expect(loadPackedQ4(ckpt, 'bad.q4', k, OUT, IN, "F: tensor 'bad.q4'")).rejects.toThrow(/F: tensor 'bad\.q4': scale base of row 9 is NaN/);
    const again = k.reserveQ4!(OUT, IN); // the heap hands the same block out again: nothing leaked
    expect(again.view().byteOffset).toBe(at);
    again.cancel();
  });

  it('the kernels widen a v3 body exactly as expandQ4Blocks does (SIMD128 and Relaxed, zero groups too) and stop at a bad block', async () => {
    for (const relaxed of [false, true]) {
      const k = await createNodeWasmKernels({ threads: 1, relaxed });
      const [out, inDim] = [13, 200];
      const w = values(out * inDim, 11);
      for (let i = 0; i < 32; i++) w[5 * inDim + 64 + i] = 0; // an all-zero group: scale code 255
      const body = quantizeQ4Blocks(w, out, inDim, 'test');
      const B = Math.ceil(out / 4),
        G = Math.ceil(inDim / 32);
      for (const [bad, value] of [
        [-1, 0],
        [2, Infinity],
        [0, -1],
        [3, NaN],
      ] as const) {
        const src = body.slice();
        if (bad >= 0) new DataView(src.buffer).setFloat32(bad * q4BlockBytes(G) + 8, value, true); // row 4·bad + 2
        const r = k.reserveQ4!(out, inDim);
        const tail = r.view().length - src.length;
        r.view().set(src, tail);
        expect(r.expandCompact!(tail, B, G, LOG_SCALE)).toBe(bad);
        const got = r.view().slice(0, bad >= 0 ? bad * G * 80 : undefined);
        const ref = new Uint8Array(B * G * 80);
        ref.set(src, tail);
        if (bad >= 0) expect(() => expandQ4Blocks(ref, tail, B, G, 'W')).toThrow(new RegExp(`W: scale base of row ${4 * bad + 2} is ${value}`));
        else expandQ4Blocks(ref, tail, B, G, 'W');
        expect(Buffer.from(got).equals(Buffer.from(ref.subarray(0, got.length)))).toBe(true);
        if (bad >= 0) expect(() => expandQ4Blocks(r.view(), tail, B, G, 'W', bad)).toThrow(new RegExp(`row ${4 * bad + 2} is ${value}`)); // the resumed JS pass names it
        r.cancel();
      }
    }
  });

  it('ReadSlots: at most n reads at a time, started in the order asked; a failing read frees its slot', async () => {
    const slots = new ReadSlots(2);
    let running = 0,
      most = 0;
    const started: number[] = [];
    const job = (i: number) => async () => {
      started.push(i);
      running++;
      most = Math.max(most, running);
      await new Promise((r) => setTimeout(r, 5 + ((i * 7) % 4)));
      running--;
      if (i === 3) throw new Error('read 3 failed');
      return i;
    };
    const results = await Promise.allSettled(Array.from({ length: 8 }, (_, i) => slots.run(job(i))));
    expect(most).toBe(2);
    expect(started).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(results.map((r) => (r.status === 'fulfilled' ? r.value : String(r.reason)))).toEqual([0, 1, 2, 'Error: read 3 failed', 4, 5, 6, 7]);
    expect(await slots.run(async () => 'again')).toBe('again');
  });
});
