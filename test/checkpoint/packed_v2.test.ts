/**
 * Packed format v2 (docs/packed-format.md): the blob layouts against independent references,
 * `quantize` on a golden model (what is stored, what is left out), loading it (tied embedding
 * stored once and used for both lookup and LM head, int4 PLE rows, streamed by default), the
 * accuracy bounds, and bad input: unknown version, truncated / mis-sized tensors, non-finite
 * scales — each a clear error naming file and tensor.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { Checkpoint } from '../../src/checkpoint/checkpoint.js';
import { f16ToF32 } from '../../src/checkpoint/dtype.js';
import {
  decodeQ4,
  encodeQ4,
  f32ToF16Bits,
  packedVersionOf,
  quantizeQ4Rows,
  parseQ4RHeader,
  dequantQ4Row,
  q4rHeader,
} from '../../src/checkpoint/packed_format.js';
import { writeSafetensors, type TensorToWrite } from '../../src/checkpoint/safetensors.js';
import { StreamedTable } from '../../src/checkpoint/streamed_table.js';
import { planPackedV2 } from '../../src/checkpoint/pack_v2.js';
import { MemoryFolder } from '../../src/io/byte_source.js';
import { Q4Matrix } from '../../src/kernels/q4.js';
import { TsKernels } from '../../src/kernels/ts_kernels.js';
import { Gemma3nTextModel } from '../../src/model/text_model.js';
import { NodeFolder } from '../../src/node/fs_folder.js';
import { GOLDEN, goldenFolder, maxAbsDiff, openSafetensors, rand } from '../helpers.js';

const P = 'model.language_model.';

const half = (bits: number) => {
  const o = new Float32Array(1);
  f16ToF32(Uint16Array.of(bits), o);
  return o[0];
};

describe('packed v2 blobs', () => {
  it('f32 → f16 rounds to nearest even, overflows to infinity, keeps subnormals', () => {
    expect(f32ToF16Bits(1)).toBe(0x3c00);
    expect(f32ToF16Bits(-2)).toBe(0xc000);
    expect(f32ToF16Bits(65504)).toBe(0x7bff);
    expect(f32ToF16Bits(65520)).toBe(0x7c00); // rounds up past the largest half
    expect(f32ToF16Bits(2 ** -24)).toBe(1);
    expect(f32ToF16Bits(2 ** -26)).toBe(0);
    expect(f32ToF16Bits(0.1)).toBe(0x2e66);
    expect(f32ToF16Bits(1 + 2 ** -11)).toBe(0x3c00); // tie → even
    expect(f32ToF16Bits(1 + 3 * 2 ** -11)).toBe(0x3c02);
    for (const x of [Math.PI, 1e-3, 7e-5, 1234.5])
      expect(Math.abs(half(f32ToF16Bits(x)) - x) / x).toBeLessThanOrEqual(2 ** -11 * 1.0001 + (x < 6.1e-5 ? 1e-3 : 0));
  });

  it('.q4 v2 keeps the codes of Q4Matrix and its scales rounded to f16; v1 blobs still decode', () => {
    const w = rand(12 * 70, 7, 0.2);
    const q = Q4Matrix.quantize(w, 12, 70);
    const back = decodeQ4(encodeQ4(q), 't');
    expect(back.outDim).toBe(12);
    expect(back.inDim).toBe(70);
    expect(Array.from(back.nibbles)).toEqual(Array.from(q.nibbles));
    for (let i = 0; i < q.scales.length; i++) expect(back.scales[i]).toBe(half(f32ToF16Bits(q.scales[i])));
    const v1 = decodeQ4(q.toBytes(), 't');
    expect(Array.from(v1.scales)).toEqual(Array.from(q.scales));
    expect(encodeQ4(q).length).toBeLessThan(q.toBytes().length); // 4.5 instead of 5 bits per weight
  });

  it('.q4r rows: scale f16(absmax/7), every value within half a scale, all-zero groups stay zero', () => {
    const rows = 5,
      cols = 100;
    const w = rand(rows * cols, 3, 0.5);
    w.fill(0, 2 * cols, 3 * cols); // an all-zero row
    const packed = quantizeQ4Rows(w, rows, cols, 'f16')!;
    const blob = new Uint8Array(32 + packed.length);
    blob.set(q4rHeader(rows, cols, 'f16'));
    blob.set(packed, 32);
    const info = parseQ4RHeader(blob, blob.length, 't');
    expect(info.rowBytes).toBe(4 * 2 + 4 * 16);
    const row = new Float32Array(cols);
    for (let r = 0; r < rows; r++) {
      dequantQ4Row(blob.subarray(32 + r * info.rowBytes, 32 + (r + 1) * info.rowBytes), info, row, 't', r);
      for (let g = 0; g < 4; g++) {
        const n = Math.min(32, cols - g * 32);
        let amax = 0;
        for (let j = 0; j < n; j++) amax = Math.max(amax, Math.abs(w[r * cols + g * 32 + j]));
        const s = half(f32ToF16Bits(Math.fround(amax / 7)));
        for (let j = 0; j < n; j++) {
          const i = g * 32 + j;
          expect(Math.abs(row[i] - w[r * cols + i])).toBeLessThanOrEqual(s / 2 + 1e-7);
          expect(row[i] / (s || 1)).toBeCloseTo(Math.round(row[i] / (s || 1)), 5); // a multiple of the scale
        }
      }
      if (r === 2) expect(Array.from(row).every((x) => x === 0)).toBe(true);
    }
  });

  it('packedVersionOf: v2, v1, not packed, and an unknown version refused naming the file', () => {
    expect(packedVersionOf({ quantization_config: { quant_method: 'gemma3n-ts-packed', format_version: 2 } }, 'x')).toBe(2);
    expect(packedVersionOf({ quantization_config: { quant_method: 'gemma3n-ts-q4' } }, 'x')).toBe(1);
    expect(packedVersionOf({}, 'x')).toBe(0);
    expect(() => packedVersionOf({ quantization_config: { quant_method: 'gemma3n-ts-packed', format_version: 3 } }, 'DIR/config.json')).toThrow(
      /DIR\/config\.json: packed format version 3 is not supported/,
    );
  });
});

describe('packed v2 accuracy per tensor family (bench/packed_accuracy.ts has the layer outputs)', () => {
  it('every text linear and both tables of text-tiny-a: weight relative RMS error in [0.04, 0.11]', async () => {
    // Measured 0.057-0.101 (docs/packed-format.md "Accuracy"): int4 with absmax/7 scales on
    // Gaussian-like weights gives ~0.097; the narrow LAuReL/PLE projections come out lower.
    const src = await Checkpoint.open(goldenFolder('text-tiny-a'));
    let checked = 0;
    for (const name of src.names()) {
      const info = await src.info(name);
      if (info.shape.length !== 2 || /altup\.|coefs|router/.test(name)) continue;
      const [rows, cols] = info.shape;
      const w = await src.readF32(name);
      let dq: Float32Array;
      if (name.endsWith('embed_tokens_per_layer.weight')) {
        const body = quantizeQ4Rows(w, rows, cols, 'f16')!,
          blob = new Uint8Array(32 + body.length);
        blob.set(q4rHeader(rows, cols, 'f16'));
        blob.set(body, 32);
        const hi = parseQ4RHeader(blob, blob.length, name);
        dq = new Float32Array(w.length);
        for (let r = 0; r < rows; r++) dequantQ4Row(blob.subarray(32 + r * hi.rowBytes), hi, dq.subarray(r * cols, (r + 1) * cols), name, r);
      } else dq = decodeQ4(encodeQ4(Q4Matrix.quantize(w, rows, cols)), name).dequantize();
      let num = 0,
        den = 0;
      for (let i = 0; i < w.length; i++) {
        num += (dq[i] - w[i]) ** 2;
        den += w[i] ** 2;
      }
      const rel = Math.sqrt(num / den);
      expect(rel, name).toBeGreaterThan(0.04);
      expect(rel, name).toBeLessThan(0.11);
      checked++;
    }
    expect(checked).toBeGreaterThan(50);
    await src.close();
  });
});

const exec = promisify(execFile);
const CLI = join(GOLDEN, '..', '..', 'bin', 'gemma3n.js');

describe('gemma3n quantize → packed v2 folder', () => {
  let out: string;
  beforeAll(async () => {
    out = join(mkdtempSync(join(tmpdir(), 'g3n-v2-')), 'packed');
    const r = await exec(process.execPath, [CLI, 'quantize', '--model', join(GOLDEN, 'text-tiny-a'), '--out', out]);
    expect(r.stderr).toMatch(/wrote the packed v2 model .* 6 unused tensor\(s\) left out/);
  }, 60_000);

  it('stores every large tensor int4, the tied embedding once, no KV-shared k/v, norms as they were', async () => {
    const cfg = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
    expect(cfg.quantization_config).toMatchObject({ quant_method: 'gemma3n-ts-packed', format_version: 2, format_minor: 1, scale_dtype: 'u8log' });
    const ckpt = await Checkpoint.open(new NodeFolder(out));
    const names = new Set(ckpt.names());
    expect(names.has(P + 'embed_tokens.weight.q4')).toBe(true);
    expect(names.has(P + 'embed_tokens.weight')).toBe(false);
    expect(names.has(P + 'lm_head.weight.q4')).toBe(false);
    expect(names.has(P + 'embed_tokens_per_layer.weight.q4r')).toBe(true);
    expect(names.has(P + 'layers.0.mlp.gate_proj.weight.q4')).toBe(true);
    const first = 4; // text-tiny-a: 6 layers, the last 2 KV-shared
    for (const l of [first, first + 1])
      for (const t of ['k_proj.weight.q4', 'v_proj.weight.q4', 'k_norm.weight']) expect(names.has(`${P}layers.${l}.self_attn.${t}`)).toBe(false);
    expect(names.has(P + 'layers.3.self_attn.k_proj.weight.q4')).toBe(true);
    expect((await ckpt.info(P + 'layers.0.input_layernorm.weight')).dtype).toBe('F32');
    await ckpt.close();
  });

  it('the embedding lookup and the LM head read the same int4 matrix; PLE rows are int4; the folder streams by default', async () => {
    const k = new TsKernels();
    const { model } = await Gemma3nTextModel.load(new NodeFolder(out), k);
    const src = await Checkpoint.open(goldenFolder('text-tiny-a'));
    const c = model.config;
    const embed = await src.readF32(P + 'embed_tokens.weight');
    const H = c.hiddenSize,
      ids = [0, 3, 1, 2, c.vocabSize - 1, 77];
    const rows = new Float32Array(ids.length * H);
    await model.weights.embed_tokens.lookup(ids, rows);
    // v2.1 (log-coded u8 scales): in every group the largest code is ±7 and its scale s lies in
    // [absmax/7, 2^(1/32)·absmax/7]; every value is s times an integer, within s/2 of the source.
    for (let n = 0; n < ids.length; n++) {
      for (let g = 0; g < H; g += 32) {
        let a = 0,
          m = 0;
        for (let i = g; i < Math.min(H, g + 32); i++) {
          a = Math.max(a, Math.abs(embed[ids[n] * H + i]));
          m = Math.max(m, Math.abs(rows[n * H + i]));
        }
        const s = m / 7;
        expect(s).toBeGreaterThanOrEqual(Math.fround(a / 7) * (1 - 1e-6));
        expect(s).toBeLessThanOrEqual((a / 7) * 2 ** (1 / 32) * (1 + 1e-6));
        for (let i = g; i < Math.min(H, g + 32); i++) {
          const got = rows[n * H + i];
          expect(Math.abs(got / s - Math.round(got / s))).toBeLessThan(1e-4);
          expect(Math.abs(got - embed[ids[n] * H + i])).toBeLessThanOrEqual(s * 0.5 * (1 + 1e-5));
        }
      }
    }
    // The LM head is the same matrix: one-hot inputs read its columns (int8 activations of a
    // one-hot vector are exact), which must equal the looked-up rows.
    const col = new Float32Array(c.vocabSize),
      x = new Float32Array(H);
    for (let i = 0; i < H; i += 7) {
      x.fill(0);
      x[i] = 1;
      k.linear(model.weights.lm_head, x, 1, col);
      for (let n = 0; n < ids.length; n++) expect(col[ids[n]]).toBeCloseTo(rows[n * H + i], 5);
    }
    expect(model.weights.embed_tokens).toBeInstanceOf(StreamedTable);
    expect(model.weights.embed_tokens_per_layer).toBeInstanceOf(StreamedTable);
    expect(model.weights.readsCheckpoint).toBe(true);
    const ple = await src.readF32(P + 'embed_tokens_per_layer.weight');
    const cols = c.numHiddenLayers * c.hiddenSizePerLayerInput;
    const got = new Float32Array(cols);
    await model.weights.embed_tokens_per_layer.lookup([9], got);
    let maxErr = 0,
      amax = 0;
    for (let i = 0; i < cols; i++) {
      maxErr = Math.max(maxErr, Math.abs(got[i] - ple[9 * cols + i]));
      amax = Math.max(amax, Math.abs(ple[9 * cols + i]));
    }
    expect(maxErr).toBeLessThanOrEqual((amax / 7) * 0.51);
    expect(maxErr).toBeGreaterThan(0);
    await src.close();
  });

  it('accuracy on the golden inputs stays within the documented v2 bounds', async () => {
    const k = new TsKernels();
    const { model } = await Gemma3nTextModel.load(new NodeFolder(out), k);
    const golden = await openSafetensors(join(GOLDEN, 'text-tiny-a', 'golden.safetensors'));
    const V = model.config.vocabSize;
    let maxErr = 0,
      num = 0,
      den = 0;
    for (const seq of [0, 1]) {
      const ids = Array.from(await golden.readF32(`input_ids.${seq}`));
      const { logits } = await model.forward(ids, model.newCache(), { logits: 'all' });
      const ref = await golden.readF32(`logits.${seq}`);
      maxErr = Math.max(maxErr, maxAbsDiff(logits, ref));
      for (let i = 0; i < logits.length; i++) {
        num += (logits[i] - ref[i]) ** 2;
        den += ref[i] ** 2;
      }
    }
    const rel = Math.sqrt(num / den);
    console.log(`text-tiny-a v2: max logit error ${maxErr.toFixed(2)}, relative RMS ${rel.toFixed(3)} (V=${V})`);
    expect(maxErr).toBeLessThan(V2_BOUNDS.maxLogitErr);
    expect(rel).toBeLessThan(V2_BOUNDS.relRms);
  });
});

// Measured on text-tiny-a: max 10.55, relative RMS 0.70 (v1 int4, linears only: 14.3 / see README
// "packed v2 accuracy"); these random-weight models amplify any noise. ~30% headroom.
const V2_BOUNDS = { maxLogitErr: 14, relRms: 0.9 };

/** A text-tiny-a folder in memory with some tensors replaced, and a config override. */
async function folderWith(replace: (name: string, t: TensorToWrite) => TensorToWrite | null, extraConfig: Record<string, unknown> = {}): Promise<MemoryFolder> {
  const src = await Checkpoint.open(goldenFolder('text-tiny-a'));
  const tensors: TensorToWrite[] = [];
  for (const n of src.names()) {
    const info = await src.info(n);
    const t = replace(n, { name: n, dtype: info.dtype, shape: info.shape, data: await src.readBytes(n) });
    if (t) tensors.push(t);
  }
  await src.close();
  const config = { ...JSON.parse(readFileSync(join(GOLDEN, 'text-tiny-a', 'config.json'), 'utf8')), ...extraConfig };
  return new MemoryFolder(
    new Map([
      ['config.json', new TextEncoder().encode(JSON.stringify(config))],
      ['model.safetensors', writeSafetensors(tensors)],
    ]),
    'bad-packed',
  );
}

describe('v2.0 → v2.1 conversion', () => {
  it('a v2.0 PLE table (.q4r version 1, f16 scales) is re-packed as version 2, every value within half its new scale of the v2.0 value', async () => {
    const src = await Checkpoint.open(goldenFolder('text-tiny-a'));
    const name = P + 'embed_tokens_per_layer.weight';
    const [rows, cols] = (await src.info(name)).shape;
    const body = quantizeQ4Rows(await src.readF32(name), rows, cols, 'f16')!;
    await src.close();
    const v20 = new Uint8Array(32 + body.length);
    v20.set(q4rHeader(rows, cols, 'f16'));
    v20.set(body, 32);
    const f = await folderWith((n, t) => (n === name ? { name: n + '.q4r', dtype: 'U8', shape: [v20.length], data: v20 } : t));
    const store = await Checkpoint.open(f);
    const plan = await planPackedV2(store, await f.readText('config.json'), { chunkValues: 3 * cols }); // several row chunks
    const t = plan.tensors.find((x) => x.name === name + '.q4r')!;
    const out = new Uint8Array(t.shape[0]);
    await t.write(async (o, b) => {
      out.set(b, o);
    });
    await store.close();
    const hOld = parseQ4RHeader(v20, v20.length, 'old'),
      hNew = parseQ4RHeader(out, out.length, 'new');
    expect(hNew.scales).toBe('u8log');
    const a = new Float32Array(cols),
      b = new Float32Array(cols);
    for (let r = 0; r < rows; r++) {
      dequantQ4Row(v20.subarray(32 + r * hOld.rowBytes, 32 + (r + 1) * hOld.rowBytes), hOld, a, 'old', r);
      dequantQ4Row(out.subarray(32 + r * hNew.rowBytes, 32 + (r + 1) * hNew.rowBytes), hNew, b, 'new', r);
      for (let g = 0; g < cols; g += 32) {
        let m = 0;
        for (let i = g; i < Math.min(cols, g + 32); i++) m = Math.max(m, Math.abs(a[i]));
        for (let i = g; i < Math.min(cols, g + 32); i++) expect(Math.abs(b[i] - a[i])).toBeLessThanOrEqual((m / 7) * 2 ** (1 / 32) * 0.5 * (1 + 1e-5));
      }
    }
  });
});

describe('packed v2: bad input is refused naming file and tensor', () => {
  const UP = P + 'layers.1.mlp.up_proj.weight';
  const packedUp = async () => {
    const src = await Checkpoint.open(goldenFolder('text-tiny-a'));
    const info = await src.info(UP);
    const blob = encodeQ4(Q4Matrix.quantize(await src.readF32(UP), info.shape[0], info.shape[1]));
    await src.close();
    return blob;
  };

  it('an unknown format version', async () => {
    const f = await folderWith((_n, t) => t, { quantization_config: { quant_method: 'gemma3n-ts-packed', format_version: 9 } });
    await expect(Gemma3nTextModel.load(f, new TsKernels())).rejects.toThrow(/bad-packed\/config\.json: packed format version 9 is not supported/);
  });

  it('a truncated packed tensor, a mis-sized one, a wrong magic (fuzz: every cut of the header)', async () => {
    const blob = await packedUp();
    const cases: [Uint8Array, RegExp][] = [
      [blob.subarray(0, blob.length - 3), /must be \d+ bytes, it has \d+ \(truncated or mis-sized\)/],
      [Uint8Array.from([...blob, 0, 0, 0, 0]), /truncated or mis-sized/],
      [
        (() => {
          const b = blob.slice();
          b[0] ^= 0xff;
          return b;
        })(),
        /not a packed int4 tensor \(magic/,
      ],
      [
        (() => {
          const b = blob.slice();
          b[8] += 4;
          return b;
        })(),
        /truncated or mis-sized/,
      ], // outDim changed
    ];
    for (let cut = 0; cut < 32; cut += 5) cases.push([blob.subarray(0, cut), /truncated packed int4 tensor/]);
    for (const [bytes, re] of cases) {
      const f = await folderWith((n, t) => (n === UP ? { name: UP + '.q4', dtype: 'U8', shape: [bytes.length], data: bytes } : t));
      await expect(Gemma3nTextModel.load(f, new TsKernels())).rejects.toThrow(
        new RegExp(`model\\.safetensors: tensor '${UP.replace(/\./g, '\\.')}\\.q4': .*${re.source}`),
      );
    }
  });

  it('non-finite scales: NaN / Infinity in a .q4 matrix, in an embedding row, in a PLE row', async () => {
    const blob = await packedUp();
    for (const bits of [0x7e00, 0x7c00, 0xfc00]) {
      const b = blob.slice();
      const scalesAt = b.length - 2 * 10; // the 10th-from-last scale
      b[scalesAt] = bits & 0xff;
      b[scalesAt + 1] = bits >> 8;
      const f = await folderWith((n, t) => (n === UP ? { name: UP + '.q4', dtype: 'U8', shape: [b.length], data: b } : t));
      await expect(Gemma3nTextModel.load(f, new TsKernels())).rejects.toThrow(
        /up_proj\.weight\.q4': scale of row \d+, group \d+ is (NaN|Infinity|-Infinity) \(scales must be finite\)/,
      );
    }
    // A PLE table whose row 4 has a NaN scale: the model loads (rows are read lazily) and the
    // lookup that needs row 4 fails naming the tensor and the row.
    const src = await Checkpoint.open(goldenFolder('text-tiny-a'));
    const pleInfo = await src.info(P + 'embed_tokens_per_layer.weight');
    const [rows, cols] = pleInfo.shape;
    const packed = quantizeQ4Rows(await src.readF32(P + 'embed_tokens_per_layer.weight'), rows, cols, 'f16')!;
    await src.close();
    const rb = packed.length / rows;
    packed[4 * rb] = 0x00;
    packed[4 * rb + 1] = 0x7e;
    const q4r = new Uint8Array(32 + packed.length);
    q4r.set(q4rHeader(rows, cols, 'f16'));
    q4r.set(packed, 32);
    const f = await folderWith((n, t) => (n === P + 'embed_tokens_per_layer.weight' ? { name: n + '.q4r', dtype: 'U8', shape: [q4r.length], data: q4r } : t));
    const { model } = await Gemma3nTextModel.load(f, new TsKernels());
    await expect(model.forward([3, 4], model.newCache())).rejects.toThrow(/embed_tokens_per_layer\.weight\.q4r': scale of row 4, group 0 is NaN/);
    const ok = await model.forward([3, 5], model.newCache());
    expect(ok.logits.every(Number.isFinite)).toBe(true);
  });
});
