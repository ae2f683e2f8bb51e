/**
 * GGUF `gemma4`: test/fixtures/gguf/gemma4-text-tiny-a.f16.gguf is the golden text-tiny-a written
 * the way llama.cpp's converter writes a Gemma 4 (scripts/gguf_gemma4_fixture.py, gguf-py 0.19.0's
 * own writer and tensor map, --outtype f16). Loaded through GgufFolder it gives the config the
 * golden folder has and exactly the logits of the safetensors path holding the same (f16-rounded)
 * weights; a Q4_0 copy's linears load as int4 without re-quantizing; bad files are refused naming
 * the architecture, tensor or metadata key.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { Checkpoint } from '../../src/checkpoint/checkpoint.js';
import { floatToHalf, halfToFloat } from '../../src/checkpoint/gguf/dequant.js';
import { parseGemma4Config } from '../../src/checkpoint/gemma4_config.js';
import { GgufFolder } from '../../src/checkpoint/gguf/folder.js';
import { ggmlTypeByName } from '../../src/checkpoint/gguf/ggml_types.js';
import { q4MatrixToQ4_0 } from '../../src/checkpoint/gguf/quantize.js';
import { GgufFile, GgufValueType, type GgufArray } from '../../src/checkpoint/gguf/reader.js';
import { MemorySink, writeGguf, type GgufKV, type GgufTensorToWrite } from '../../src/checkpoint/gguf/writer.js';
import { decodeQ4, encodeQ4 } from '../../src/checkpoint/packed_format.js';
import { CheckpointError, SafetensorsFile, writeSafetensors, type TensorToWrite } from '../../src/checkpoint/safetensors.js';
import { MemoryFolder, MemorySource } from '../../src/io/byte_source.js';
import { Q4Matrix } from '../../src/kernels/q4.js';
import { TsKernels } from '../../src/kernels/ts_kernels.js';
import { Gemma4TextModel } from '../../src/model/gemma4_text_model.js';
import { NodeFolder } from '../../src/node/fs_folder.js';
import { GOLDEN, goldenFolder, maxAbsDiff, openSafetensors } from '../helpers.js';

const FIXTURE = join(import.meta.dirname, '..', 'fixtures', 'gguf', 'gemma4-text-tiny-a.f16.gguf');
const P = 'model.language_model.';
const fixtureBytes = () => new Uint8Array(readFileSync(FIXTURE));

const FLOAT_KEYS = /(freq_base|freq_base_swa|layer_norm_rms_epsilon|final_logit_softcapping)$/;

/** The fixture re-written by our writer after `edit` (metadata as GgufKV, tensors with their bytes). */
async function rewritten(edit: (md: GgufKV[], tensors: GgufTensorToWrite[]) => void): Promise<Uint8Array> {
  const f = await GgufFile.open(new MemorySource(fixtureBytes(), 'fixture.gguf'));
  const md: GgufKV[] = [];
  for (const [key, v] of f.metadata) {
    if (typeof v === 'string') md.push({ key, type: 'string', value: v });
    else if (typeof v === 'number') md.push({ key, type: FLOAT_KEYS.test(key) ? 'f32' : 'u32', value: v });
    else if (typeof v === 'boolean') md.push({ key, type: 'bool', value: v });
    else if (typeof v === 'object') {
      const a = v as GgufArray;
      if (a.elementType === GgufValueType.BOOL) md.push({ key, type: 'bool[]', value: Array.from(a.values as Uint8Array, (x) => x !== 0) });
      else md.push({ key, type: a.elementType === GgufValueType.FLOAT32 ? 'f32[]' : 'i32[]', value: Array.from(a.values as ArrayLike<number>) });
    }
  }
  const tensors: GgufTensorToWrite[] = [];
  for (const t of f.tensors.values()) {
    const bytes = await f.readBytes(t.name);
    tensors.push({ name: t.name, dims: t.dims, type: t.type, data: () => bytes });
  }
  edit(md, tensors);
  const sink = new MemorySink();
  await writeGguf(sink, md, tensors);
  return sink.bytes();
}

const openGguf = async (bytes: Uint8Array, name = 'edited.gguf') => GgufFolder.open(new MemorySource(bytes, name));

/** text-tiny-a with every 2-D weight rounded to f16 (what --outtype f16 stores), as safetensors in memory; `packed` ones as packed int4. */
async function f16RoundedGolden(packed = new Map<string, Q4Matrix>()): Promise<MemoryFolder> {
  const src = await Checkpoint.open(goldenFolder('gemma4/text-tiny-a'));
  const tensors: TensorToWrite[] = [];
  for (const n of src.names()) {
    const info = await src.info(n);
    const q = packed.get(n);
    if (q) {
      const blob = encodeQ4(q); // packed v2: the int4 codes, scales as f16
      tensors.push({ name: n + '.q4', dtype: 'U8', shape: [blob.length], data: blob });
    } else if (info.shape.length >= 2) {
      const h = Uint16Array.from(await src.readF32(n), floatToHalf);
      tensors.push({ name: n, dtype: 'F16', shape: info.shape, data: new Uint8Array(h.buffer) });
    } else tensors.push({ name: n, dtype: info.dtype, shape: info.shape, data: await src.readBytes(n) });
  }
  await src.close();
  return new MemoryFolder(
    new Map([
      ['config.json', new Uint8Array(readFileSync(join(GOLDEN, 'gemma4', 'text-tiny-a', 'config.json')))],
      ['model.safetensors', writeSafetensors(tensors)],
    ]),
    'text-tiny-a (f16 weights)',
  );
}

describe('GGUF gemma4 (llama.cpp converter layout, written by gguf-py)', () => {
  it("the config from gemma4.* metadata and rope_freqs equals the golden folder's", async () => {
    const folder = await openGguf(fixtureBytes(), FIXTURE);
    const got = parseGemma4Config(await folder.readText('config.json')).text;
    const want = parseGemma4Config(readFileSync(join(GOLDEN, 'gemma4', 'text-tiny-a', 'config.json'), 'utf8')).text;
    for (const k of [
      'hiddenSize',
      'numHiddenLayers',
      'numAttentionHeads',
      'numKeyValueHeads',
      'headDim',
      'globalHeadDim',
      'layerTypes',
      'slidingWindow',
      'numKvSharedLayers',
      'intermediateSize',
      'useDoubleWideMlp',
      'hiddenSizePerLayerInput',
      'vocabSize',
      'vocabSizePerLayerInput',
      'ropeParameters',
      'finalLogitSoftcapping',
      'rmsNormEps',
      'maxPositionEmbeddings',
      'layerHeadDims',
      'layerIntermediateSizes',
      'kvSources',
    ] as const) {
      expect(got[k], k).toEqual(want[k]);
    }
    expect(got.ropeParameters.full_attention).toEqual({ ropeType: 'proportional', ropeTheta: 1e6, partialRotaryFactor: 0.25 });
  });

  it('loads through GgufFolder and gives the logits of the safetensors path with the same f16 weights; within f16 rounding of the goldens', async () => {
    const k = new TsKernels();
    const { model, checkpoint } = await Gemma4TextModel.load(await openGguf(fixtureBytes(), FIXTURE), k);
    const { model: ref } = await Gemma4TextModel.load(await f16RoundedGolden(), k);
    const golden = await openSafetensors(join(GOLDEN, 'gemma4', 'text-tiny-a', 'golden.safetensors'));
    expect(checkpoint.has(P + 'layers.0.layer_scalar')).toBe(true);
    // the KV-shared layers' k/v are in the file (the converter keeps them) and never read
    expect(checkpoint.has(P + 'layers.9.self_attn.k_proj.weight')).toBe(true);
    expect(model.weights.layers[9].self_attn.k_proj).toBeNull();
    for (const seq of [0, 1, 2]) {
      const ids = Array.from(await golden.readF32(`input_ids.${seq}`));
      const a = (await model.forward(ids, model.newCache(), { logits: 'all' })).logits;
      const b = (await ref.forward(ids, ref.newCache(), { logits: 'all' })).logits;
      expect(maxAbsDiff(a, b), `seq ${seq} vs safetensors`).toBe(0);
      // f16 weights against the f32 golden: measured 0.021 / 0.083 / 0.099; f16 has 3 more mantissa
      // bits than bf16, whose rounding moves these logits by up to 1.0 (golden README)
      expect(maxAbsDiff(a, await golden.readF32(`logits.${seq}`)), `seq ${seq} vs golden`).toBeLessThan(0.2);
    }
    const gen = JSON.parse(readFileSync(join(GOLDEN, 'gemma4', 'text-tiny-a', 'generation.json'), 'utf8')) as { prompts: { prompt_ids: number[] }[] };
    const cache = model.newCache(),
      refCache = ref.newCache();
    let x = (await model.forward(gen.prompts[1].prompt_ids, cache)).logits,
      y = (await ref.forward(gen.prompts[1].prompt_ids, refCache)).logits;
    for (let s = 0; s < 6; s++) {
      expect(maxAbsDiff(x, y), `step ${s}`).toBe(0);
      const next = x.indexOf(Math.max(...x));
      x = (await model.forward([next], cache)).logits;
      y = (await ref.forward([next], refCache)).logits;
    }
    await checkpoint.close();
  });

  it('Q4_0 linears load as int4 without re-quantizing: the logits of the same int4 matrices stored packed', async () => {
    // The fixture with every 2-D linear and the token table as Q4_0 (what llama-quantize writes)
    const q4 = new Map<string, Q4Matrix>();
    const bytes = await rewritten((_, tensors) => {
      for (const t of tensors) {
        // Q4_0 blocks run along the input: only rows of whole 32-blocks (down_proj, o_proj here; hidden 48 is not one)
        if (t.dims.length !== 2 || t.name === 'per_layer_token_embd.weight' || t.dims[0] % 32 !== 0) continue;
        const [inp, out] = t.dims;
        const f16 = t.data() as Uint8Array;
        const w = new Float32Array(inp * out);
        const h = new Uint16Array(f16.buffer.slice(f16.byteOffset, f16.byteOffset + f16.byteLength));
        for (let i = 0; i < w.length; i++) w[i] = halfToFloat(h[i]);
        const q = Q4Matrix.quantize(w, out, inp);
        q4.set(t.name, q);
        const blocks = q4MatrixToQ4_0(q);
        Object.assign(t, { type: ggmlTypeByName('Q4_0'), data: () => blocks });
      }
    });
    const k = new TsKernels();
    const { model, checkpoint } = await Gemma4TextModel.load(await openGguf(bytes), k);
    expect(q4.size).toBe(20); // 10 layers × (ffn_down, attn_output)
    expect(checkpoint.has(P + 'layers.0.mlp.down_proj.weight.q4')).toBe(true);
    expect(checkpoint.has(P + 'layers.0.mlp.up_proj.weight')).toBe(true); // F16 as stored
    const down = Q4Matrix.fromBytes(await checkpoint.readBytes(P + 'layers.7.mlp.down_proj.weight.q4'));
    const want = q4.get('blk.7.ffn_down.weight')!;
    expect(Buffer.from(down.nibbles).equals(Buffer.from(want.nibbles))).toBe(true);
    const golden = await openSafetensors(join(GOLDEN, 'gemma4', 'text-tiny-a', 'golden.safetensors'));
    const ids = Array.from(await golden.readF32('input_ids.1'));
    const { logits } = await model.forward(ids, model.newCache(), { logits: 'all' });
    // The reference: the same f16 weights with those linears quantized by us and stored packed (codes, f16 scales)
    const hf = new Map<string, Q4Matrix>();
    for (const [g, q] of q4) {
      const m = /^blk\.(\d+)\.(ffn_down|attn_output)\.weight$/.exec(g)!;
      hf.set(`${P}layers.${m[1]}.${m[2] === 'ffn_down' ? 'mlp.down_proj' : 'self_attn.o_proj'}.weight`, q);
    }
    const { model: packed } = await Gemma4TextModel.load(await f16RoundedGolden(hf), k);
    const ref = (await packed.forward(ids, packed.newCache(), { logits: 'all' })).logits;
    // Q4_0 ⇄ our int4 is lossless (Q4_0 keeps the scale as f16, as packed v2 does): the same logits
    expect(maxAbsDiff(logits, ref)).toBe(0);
    await checkpoint.close();
  });
});

describe('gemma3n quantize on a gemma4 GGUF', () => {
  it("writes packed v2 whose linears are the int4 of the GGUF's f16 weights (within half a scale), within the v2 bounds of the goldens", async () => {
    const out = join(mkdtempSync(join(tmpdir(), 'g4-gguf-v2-')), 'packed');
    const r = await promisify(execFile)(process.execPath, [join(GOLDEN, '..', '..', 'bin', 'gemma3n.js'), 'quantize', '--model', FIXTURE, '--out', out]);
    expect(r.stderr).toMatch(/wrote the packed v2 model .* 12 unused tensor\(s\) left out/); // the KV-shared layers' k/v/k_norm
    const k = new TsKernels();
    const { model, checkpoint } = await Gemma4TextModel.load(new NodeFolder(out), k);
    const src = await (await f16RoundedGolden()).open('model.safetensors');
    const f16 = await SafetensorsFile.open(src);
    const name = `${P}layers.6.mlp.down_proj.weight`;
    // every value within half its (v2.1 log-coded) group scale of the GGUF's f16 weight
    const w = await f16.readF32(name),
      got = decodeQ4(await checkpoint.readBytes(name + '.q4'), name).dequantize(),
      q = decodeQ4(await checkpoint.readBytes(name + '.q4'), name);
    for (let o = 0; o < 48; o++)
      for (let i = 0; i < 384; i++) expect(Math.abs(got[o * 384 + i] - w[o * 384 + i])).toBeLessThanOrEqual(q.scale(o, i) * 0.5 * (1 + 1e-5));
    expect(maxAbsDiff(got, w)).toBeGreaterThan(0);
    const golden = await openSafetensors(join(GOLDEN, 'gemma4', 'text-tiny-a', 'golden.safetensors'));
    const ids = Array.from(await golden.readF32('input_ids.1'));
    const { logits } = await model.forward(ids, model.newCache(), { logits: 'all' });
    expect(maxAbsDiff(logits, await golden.readF32('logits.1'))).toBeLessThan(14); // packed_gemma4.test.ts: the v2 bound
    await checkpoint.close();
  }, 60_000);
});

describe('gemma3n generate --model X.gguf on a gemma4 GGUF', () => {
  it('the engine takes the GGUF as a Gemma 4 model: 16 greedy tokens equal the golden continuation', async () => {
    const gen = JSON.parse(readFileSync(join(GOLDEN, 'gemma4', 'text-tiny-a', 'generation.json'), 'utf8')) as {
      prompts: { prompt_ids: number[]; generated_ids: number[] }[];
    };
    const p = gen.prompts[0];
    const r = await promisify(execFile)(process.execPath, [
      join(GOLDEN, '..', '..', 'bin', 'gemma3n.js'),
      'generate',
      '--model',
      FIXTURE,
      '--ids',
      p.prompt_ids.join(','),
      '--max-tokens',
      '16',
      '--greedy',
      '--json',
    ]);
    const out = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { generated_ids: number[] };
    expect(out.generated_ids).toEqual(p.generated_ids); // f16 weights; the smallest golden margin is 0.057
  }, 60_000);
});

describe('GGUF gemma4: bad files are refused naming what is wrong', () => {
  const load = async (bytes: Uint8Array) => Gemma4TextModel.load(await openGguf(bytes), new TsKernels());

  it('another architecture', async () => {
    const bytes = await rewritten((md) => {
      for (const kv of md) if (kv.key === 'general.architecture') (kv as { value: string }).value = 'llama';
    });
    await expect(openGguf(bytes)).rejects.toThrow(/architecture 'llama' is not supported \(gemma3n, gemma4\)/);
  });

  it('a missing layer tensor, naming both the Hugging Face and the GGUF name', async () => {
    const bytes = await rewritten((_, t) => {
      t.splice(
        t.findIndex((x) => x.name === 'blk.3.ffn_up.weight'),
        1,
      );
    });
    await expect(load(bytes)).rejects.toThrow(/missing tensor 'model\.language_model\.layers\.3\.mlp\.up_proj\.weight' \(GGUF 'blk\.3\.ffn_up\.weight'\)/);
  });

  it('a missing or wrong rope_freqs tensor, a missing metadata key, an inconsistent MLP width', async () => {
    await expect(
      openGguf(
        await rewritten((_, t) => {
          t.splice(
            t.findIndex((x) => x.name === 'rope_freqs.weight'),
            1,
          );
        }),
      ),
    ).rejects.toThrow(/missing tensor 'rope_freqs\.weight'/);
    await expect(
      openGguf(
        await rewritten((_, t) => {
          const r = t.find((x) => x.name === 'rope_freqs.weight')!;
          const v = new Float32Array(16).fill(1e30);
          v[0] = 1;
          v[5] = 0.5;
          r.data = () => new Uint8Array(v.buffer);
        }),
      ),
    ).rejects.toThrow(/tensor 'rope_freqs\.weight' value 5 is 0\.5/);
    await expect(
      openGguf(
        await rewritten((md) => {
          md.splice(
            md.findIndex((x) => x.key === 'gemma4.attention.key_length_swa'),
            1,
          );
        }),
      ),
    ).rejects.toThrow(/metadata 'gemma4\.attention\.key_length_swa' is missing/);
    await expect(
      openGguf(
        await rewritten((md) => {
          (md.find((x) => x.key === 'gemma4.feed_forward_length') as unknown as { value: number[] }).value = [192, 192, 192, 192, 192, 200, 384, 384, 384, 384];
        }),
      ),
    ).rejects.toThrow(/feed_forward_length' is 200 at layer 5/);
    await expect(
      openGguf(
        await rewritten((md) => {
          (md.find((x) => x.key === 'gemma4.attention.head_count_kv') as unknown as { type: string; value: number[] }).type = 'i32[]';
          (md.find((x) => x.key === 'gemma4.attention.head_count_kv') as unknown as { value: number[] }).value = [1, 1, 1, 1, 2, 1, 1, 1, 1, 2];
        }),
      ),
    ).rejects.toThrow(/head_count_kv' varies by layer/);
  });

  it('fuzz: every truncation of the header and seeded byte flips fail with a CheckpointError or load a model, never anything else', async () => {
    const good = fixtureBytes();
    const f = await GgufFile.open(new MemorySource(good, 'x'));
    const headerEnd = Math.min(...[...f.tensors.values()].map((t) => t.offset));
    for (let cut = 0; cut < headerEnd; cut += 53) {
      const err = await openGguf(good.slice(0, cut)).then(
        () => null,
        (e: unknown) => e,
      );
      expect(err, `cut at ${cut}`).toBeInstanceOf(CheckpointError);
    }
    let seed = 7;
    for (let n = 0; n < 30; n++) {
      const bad = good.slice();
      seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
      const at = 24 + (seed % (headerEnd - 24));
      bad[at] ^= 1 << (seed >>> 29);
      const err = await load(bad).then(
        () => null,
        (e: unknown) => e,
      );
      if (err !== null && !(err instanceof CheckpointError) && !(err instanceof RangeError)) throw new Error(`flip at ${at}: ${String(err)}`);
    }
  }, 60_000);
});
