/**
 * Bad input (issue 2, item 6): every broken checkpoint or config fails with a CheckpointError
 * whose message names the file and the tensor or field. The bad inputs are built in memory
 * from the valid tiny checkpoint test/golden/text-tiny-a, which is never modified.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { MemoryFolder } from '../../src/io/byte_source.js';
import { TsKernels } from '../../src/kernels/ts_kernels.js';
import { CheckpointError } from '../../src/checkpoint/safetensors.js';
import { Gemma3nTextModel } from '../../src/model/text_model.js';
import { GOLDEN } from '../helpers.js';

const LOC = 'bad-model';
const ST = 'model.safetensors';
const PREFIX = 'model.language_model.';

interface Entry {
  dtype: string;
  shape: number[];
  data_offsets: [number, number];
}
type Header = Record<string, Entry | Record<string, string>>;

const modelBytes = new Uint8Array(readFileSync(join(GOLDEN, 'text-tiny-a', ST)));
const configText = readFileSync(join(GOLDEN, 'text-tiny-a', 'config.json'), 'utf8');
const headerLen = Number(new DataView(modelBytes.buffer, modelBytes.byteOffset).getBigUint64(0, true));
const dataStart = 8 + headerLen;

/** The header JSON and the data section of the valid checkpoint (fresh copies). */
function parts(): { header: Header; data: Uint8Array } {
  return {
    header: JSON.parse(new TextDecoder().decode(modelBytes.subarray(8, dataStart))) as Header,
    data: modelBytes.slice(dataStart),
  };
}

/** A safetensors file from a header (object or raw JSON text) and data; the length may be forced. */
function build(header: Header | string, data: Uint8Array, forcedLength?: bigint): Uint8Array {
  let json = typeof header === 'string' ? header : JSON.stringify(header);
  json += ' '.repeat((8 - (new TextEncoder().encode(json).length % 8)) % 8);
  const hb = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + hb.length + data.length);
  new DataView(out.buffer).setBigUint64(0, forcedLength ?? BigInt(hb.length), true);
  out.set(hb, 8);
  out.set(data, 8 + hb.length);
  return out;
}

function entry(h: Header, name: string): Entry {
  return h[PREFIX + name] as Entry;
}

function folder(files: Record<string, Uint8Array | string>, withConfig = true): MemoryFolder {
  const map = new Map<string, Uint8Array>();
  if (withConfig) map.set('config.json', new TextEncoder().encode(configText));
  for (const [k, v] of Object.entries(files)) map.set(k, typeof v === 'string' ? new TextEncoder().encode(v) : v);
  return new MemoryFolder(map, LOC);
}

function load(files: Record<string, Uint8Array | string>) {
  return Gemma3nTextModel.load(folder(files), new TsKernels());
}

/** Expects a CheckpointError whose message contains every one of `parts`. */
async function expectError(p: Promise<unknown>, ...parts: string[]): Promise<string> {
  let err: unknown;
  try {
    await p;
  } catch (e) {
    err = e;
  }
  expect(err, 'expected the load to fail').toBeInstanceOf(CheckpointError);
  const msg = (err as Error).message;
  for (const s of parts) expect(msg).toContain(s);
  return msg;
}

const withConfig = (edit: (c: Record<string, unknown>) => void): string => {
  const c = JSON.parse(configText) as Record<string, unknown>;
  edit(c);
  return JSON.stringify(c);
};

describe('bad safetensors files', () => {
  it('truncated inside the 8-byte length, inside the header, inside the data', async () => {
    for (const cut of [0, 3, 7]) {
      await expectError(load({ [ST]: modelBytes.slice(0, cut) }), `${LOC}/${ST}`, 'truncated');
    }
    for (const cut of [8, 9, 100, dataStart - 1]) {
      await expectError(load({ [ST]: modelBytes.slice(0, cut) }), `${LOC}/${ST}`, 'truncated', `header claims ${headerLen} bytes`);
    }
    // Inside the data: the first tensor whose end lies past the cut is named.
    const { header } = parts();
    const tensors = Object.entries(header).filter(([k]) => k !== '__metadata__') as [string, Entry][];
    for (const cut of [dataStart, dataStart + 1000, Math.floor((dataStart + modelBytes.length) / 2), modelBytes.length - 1]) {
      const dataSize = cut - dataStart;
      const victim = tensors.find(([, e]) => e.data_offsets[1] > dataSize)!;
      await expectError(load({ [ST]: modelBytes.slice(0, cut) }), `${LOC}/${ST}`, `'${victim[0]}'`, 'past the end');
    }
  });

  it('a header length pointing past the end of the file', async () => {
    const bytes = modelBytes.slice();
    new DataView(bytes.buffer).setBigUint64(0, BigInt(modelBytes.length), true);
    await expectError(load({ [ST]: bytes }), `${LOC}/${ST}`, 'truncated');
    new DataView(bytes.buffer).setBigUint64(0, 0xffff_ffff_ffff_ffffn, true);
    await expectError(load({ [ST]: bytes }), `${LOC}/${ST}`, 'header length');
  });

  it('a header that is not JSON, or not an object', async () => {
    const { data } = parts();
    await expectError(load({ [ST]: build('{"a": [1, 2', data) }), `${LOC}/${ST}`, 'not valid UTF-8 JSON');
    await expectError(load({ [ST]: build('[1, 2, 3]', data) }), `${LOC}/${ST}`, 'not a JSON object');
    const bad = modelBytes.slice();
    bad[20] = 0xff; // invalid UTF-8 inside the header
    await expectError(load({ [ST]: bad }), `${LOC}/${ST}`, 'not valid UTF-8 JSON');
  });

  it('a tensor whose data_offsets point past the end', async () => {
    const { header, data } = parts();
    const e = entry(header, 'layers.2.mlp.up_proj.weight');
    e.data_offsets = [e.data_offsets[0], data.length + 4];
    await expectError(load({ [ST]: build(header, data) }), `${LOC}/${ST}`, `'${PREFIX}layers.2.mlp.up_proj.weight'`, 'past the end');
  });

  it('offsets that are not [begin, end] with begin <= end', async () => {
    const { header, data } = parts();
    const e = entry(header, 'norm.weight');
    e.data_offsets = [e.data_offsets[1], e.data_offsets[0]];
    await expectError(load({ [ST]: build(header, data) }), `'${PREFIX}norm.weight'`, 'end before they begin');
    (e as { data_offsets: unknown }).data_offsets = [-4, 252];
    await expectError(load({ [ST]: build(header, data) }), `${LOC}/${ST}`, `'${PREFIX}norm.weight'`, 'data_offsets');
  });

  it('overlapping offsets', async () => {
    const { header, data } = parts();
    const a = entry(header, 'layers.0.input_layernorm.weight');
    const b = entry(header, 'layers.0.post_attention_layernorm.weight');
    b.data_offsets = [...a.data_offsets];
    await expectError(
      load({ [ST]: build(header, data) }),
      `${LOC}/${ST}`,
      `${PREFIX}layers.0.input_layernorm.weight`,
      `${PREFIX}layers.0.post_attention_layernorm.weight`,
      'overlap',
    );
    // Partial overlap: shift a tensor half-way into its successor (still 4-aligned).
    const fresh = parts();
    const c = entry(fresh.header, 'layers.1.input_layernorm.weight');
    c.data_offsets = [c.data_offsets[0] + 128, c.data_offsets[1] + 128];
    await expectError(load({ [ST]: build(fresh.header, fresh.data) }), `${LOC}/${ST}`, `${PREFIX}layers.1.input_layernorm.weight`, 'overlap');
  });

  it('misaligned offsets: a tensor that does not start where the previous one ends', async () => {
    const { header, data } = parts();
    // Shift the last tensor in the data section by 2 bytes (and grow the data to match),
    // leaving a hole the reference library rejects.
    const last = Object.entries(header)
      .filter(([k]) => k !== '__metadata__')
      .sort((a, b) => (b[1] as Entry).data_offsets[0] - (a[1] as Entry).data_offsets[0])[0];
    const e = last[1] as Entry;
    e.data_offsets = [e.data_offsets[0] + 2, e.data_offsets[1] + 2];
    const grown = new Uint8Array(data.length + 2);
    grown.set(data);
    await expectError(load({ [ST]: build(header, grown) }), `${LOC}/${ST}`, `'${last[0]}'`, 'misaligned', 'F32');
  });

  it('an unknown dtype', async () => {
    const { header, data } = parts();
    entry(header, 'layers.4.laurel.linear_left.weight').dtype = 'FP32';
    await expectError(load({ [ST]: build(header, data) }), `${LOC}/${ST}`, `'${PREFIX}layers.4.laurel.linear_left.weight'`, 'unknown dtype "FP32"');
  });

  it('a weight stored as an integer dtype of the same size', async () => {
    const { header, data } = parts();
    entry(header, 'layers.4.laurel.linear_left.weight').dtype = 'I32';
    await expectError(load({ [ST]: build(header, data) }), `${LOC}/${ST}`, `'${PREFIX}layers.4.laurel.linear_left.weight'`, 'I32');
  });

  it('a shape that does not match the size of the offsets', async () => {
    const { header, data } = parts();
    entry(header, 'norm.weight').shape = [65];
    await expectError(load({ [ST]: build(header, data) }), `${LOC}/${ST}`, `'${PREFIX}norm.weight'`, 'needs 260 bytes but data_offsets span 256');
    entry(header, 'norm.weight').shape = [-64] as number[];
    await expectError(load({ [ST]: build(header, data) }), `${LOC}/${ST}`, `'${PREFIX}norm.weight'`, 'shape');
    entry(header, 'norm.weight').shape = [1e300, 1e300];
    await expectError(load({ [ST]: build(header, data) }), `${LOC}/${ST}`, `'${PREFIX}norm.weight'`, 'shape');
  });

  it('a tensor with the wrong shape for the config', async () => {
    const { header, data } = parts();
    entry(header, 'layers.0.self_attn.q_norm.weight').shape = [4, 4]; // same bytes, wrong shape
    await expectError(
      load({ [ST]: build(header, data) }),
      `${LOC}/${ST}`,
      `'${PREFIX}layers.0.self_attn.q_norm.weight'`,
      'shape [4, 4]',
      'config implies [16]',
    );
    const fresh = parts();
    entry(fresh.header, 'embed_tokens.weight').shape = [64, 512]; // transposed table
    await expectError(load({ [ST]: build(fresh.header, fresh.data) }), `${LOC}/${ST}`, `'${PREFIX}embed_tokens.weight'`, 'config implies [512, 64]');
  });

  it('a config whose sizes do not match the checkpoint', async () => {
    const cfg = withConfig((c) => {
      c.hidden_size = 1e12;
    });
    await expectError(load({ [ST]: modelBytes, 'config.json': cfg }), `${LOC}/${ST}`, `'${PREFIX}embed_tokens.weight'`, 'config implies [512, 1000000000000]');
  });

  it('a missing tensor', async () => {
    // Renaming keeps the file itself valid (its bytes stay packed); the name the config needs is gone.
    const rename = (h: Record<string, unknown>, from: string) => {
      h['unused.' + from] = h[PREFIX + from];
      delete h[PREFIX + from];
    };
    const { header, data } = parts();
    rename(header, 'layers.3.mlp.up_proj.weight');
    await expectError(load({ [ST]: build(header, data) }), `${LOC}/${ST}`, `missing tensor '${PREFIX}layers.3.mlp.up_proj.weight'`);
    const fresh = parts();
    rename(fresh.header, 'embed_tokens.weight');
    await expectError(load({ [ST]: build(fresh.header, fresh.data) }), `${LOC}/${ST}`, 'embed_tokens.weight');
  });

  it('no checkpoint file at all', async () => {
    await expectError(load({}), LOC, ST);
  });
});

describe('bad config.json', () => {
  const cfgErr = (cfg: string, ...p: string[]) => expectError(load({ [ST]: modelBytes, 'config.json': cfg }), `${LOC}/config.json`, ...p);

  it('unknown field values', async () => {
    await cfgErr(
      withConfig((c) => {
        c.hidden_activation = 'relu';
      }),
      "'hidden_activation'",
      '"relu"',
    );
    await cfgErr(
      withConfig((c) => {
        (c.layer_types as string[])[3] = 'banana';
      }),
      "'layer_types'",
      'entry 3',
      '"banana"',
    );
    await cfgErr(
      withConfig((c) => {
        c.model_type = 'llama';
      }),
      "'model_type'",
      '"llama"',
    );
    await cfgErr(
      withConfig((c) => {
        (c.rope_parameters as Record<string, Record<string, unknown>>).full_attention.rope_type = 'yarn';
      }),
      'rope_parameters.full_attention',
      "'rope_type'",
      '"yarn"',
    );
    await cfgErr(
      withConfig((c) => {
        c.rope_scaling = { rope_type: 'yarn', factor: 8 };
      }),
      "'rope_scaling'",
      '"yarn"',
    );
    await cfgErr(
      withConfig((c) => {
        c.tie_word_embeddings = false;
      }),
      "'tie_word_embeddings'",
    );
    await cfgErr(
      withConfig((c) => {
        c.activation_sparsity_pattern = [0.95, 1, 0, 0, 0, 0];
      }),
      "'activation_sparsity_pattern'",
      'entry 1',
    );
    await cfgErr(
      withConfig((c) => {
        c.num_kv_shared_layers = 5;
      }),
      "'num_kv_shared_layers'",
    );
  });

  it('wrong types', async () => {
    await cfgErr(
      withConfig((c) => {
        c.hidden_size = '64';
      }),
      "'hidden_size'",
      '"64"',
    );
    await cfgErr(
      withConfig((c) => {
        c.num_hidden_layers = 6.5;
      }),
      "'num_hidden_layers'",
      '6.5',
    );
    await cfgErr(
      withConfig((c) => {
        c.rms_norm_eps = '1e-6';
      }),
      "'rms_norm_eps'",
    );
    await cfgErr(
      withConfig((c) => {
        c.altup_correct_scale = 'yes';
      }),
      "'altup_correct_scale'",
    );
    await cfgErr(
      withConfig((c) => {
        c.intermediate_size = [128, 128, '160', 160, 192, 192];
      }),
      "'intermediate_size'",
      'entry 2',
    );
    await cfgErr(
      withConfig((c) => {
        c.layer_types = 'sliding_attention';
      }),
      "'layer_types'",
    );
    await cfgErr(
      withConfig((c) => {
        (c.rope_parameters as Record<string, unknown>).full_attention = null;
      }),
      "'rope_parameters.full_attention'",
    );
  });

  it('huge sizes fail before anything big is allocated', async () => {
    const before = process.memoryUsage().rss;
    await cfgErr(
      withConfig((c) => {
        c.num_hidden_layers = 1e12;
        delete c.layer_types;
        delete c.intermediate_size;
        delete c.activation_sparsity_pattern;
      }),
      "'num_hidden_layers'",
    );
    await cfgErr(
      withConfig((c) => {
        c.num_hidden_layers = 4e9;
        delete c.layer_types;
      }),
      "'num_hidden_layers'",
    );
    const cfg = withConfig((c) => {
      c.vocab_size = 1e12;
      c.vocab_size_per_layer_input = 1e12;
    });
    await expectError(load({ [ST]: modelBytes, 'config.json': cfg }), `${LOC}/${ST}`, `'${PREFIX}embed_tokens.weight'`, 'config implies [1000000000000, 64]');
    expect(process.memoryUsage().rss - before).toBeLessThan(256 * 2 ** 20);
  });

  it('invalid JSON', async () => {
    await cfgErr('{"model_type": "gemma3n_text", ', 'not valid JSON');
    await cfgErr('[]', 'not a JSON object');
    await cfgErr(JSON.stringify({ model_type: 'gemma3n', text_config: 5 }), "'text_config'");
  });
});

describe('sharded checkpoints', () => {
  const INDEX = 'model.safetensors.index.json';
  let shards: Record<string, Uint8Array>;
  let weightMap: Record<string, string>;

  beforeAll(() => {
    // Split the tensors of text-tiny-a round-robin over three shards, each a valid file.
    const { header, data } = parts();
    const names = Object.keys(header).filter((k) => k !== '__metadata__');
    shards = {};
    weightMap = {};
    for (let s = 0; s < 3; s++) {
      const file = `model-0000${s + 1}-of-00003.safetensors`;
      const mine = names.filter((_, i) => i % 3 === s);
      const h: Header = { __metadata__: { format: 'pt' } };
      const chunks: Uint8Array[] = [];
      let off = 0;
      for (const n of mine) {
        const e = header[n] as Entry;
        const bytes = data.subarray(e.data_offsets[0], e.data_offsets[1]);
        h[n] = { dtype: e.dtype, shape: e.shape, data_offsets: [off, off + bytes.length] };
        chunks.push(bytes);
        off += bytes.length;
        weightMap[n] = file;
      }
      const d = new Uint8Array(off);
      let p = 0;
      for (const c of chunks) {
        d.set(c, p);
        p += c.length;
      }
      shards[file] = build(h, d);
    }
  });

  const index = (wm: Record<string, string>) => JSON.stringify({ metadata: { total_size: modelBytes.length }, weight_map: wm });

  it('a valid 3-shard copy loads and gives bit-identical logits to the single file', async () => {
    const kernels = new TsKernels();
    const single = (await Gemma3nTextModel.load(folder({ [ST]: modelBytes }), kernels)).model;
    const sharded = (await Gemma3nTextModel.load(folder({ ...shards, [INDEX]: index(weightMap) }), kernels)).model;
    const ids = [2, 105, 9, 300, 17, 511, 0, 42];
    const a = await single.forward(ids, single.newCache(), { logits: 'all' });
    const b = await sharded.forward(ids, sharded.newCache(), { logits: 'all' });
    expect(b.logits.length).toBe(ids.length * 512);
    expect(Buffer.from(b.logits.buffer).equals(Buffer.from(a.logits.buffer))).toBe(true);
  });

  it('an index pointing at a missing shard', async () => {
    const files = { ...shards, [INDEX]: index(weightMap) };
    delete (files as Record<string, Uint8Array | string>)['model-00002-of-00003.safetensors'];
    await expectError(load(files), `${LOC}/${INDEX}`, "'model-00002-of-00003.safetensors'", 'missing');
  });

  it('an index claiming a tensor the shard lacks', async () => {
    const name = PREFIX + 'norm.weight';
    const wrong = Object.keys(shards).find((f) => f !== weightMap[name])!;
    await expectError(load({ ...shards, [INDEX]: index({ ...weightMap, [name]: wrong }) }), `${LOC}/${wrong}`, `'${name}'`, 'does not');
  });

  it('an index that lacks a tensor the model needs', async () => {
    const wm = { ...weightMap };
    delete wm[PREFIX + 'layers.5.mlp.down_proj.weight'];
    await expectError(load({ ...shards, [INDEX]: index(wm) }), `${LOC}/${INDEX}`, `missing tensor '${PREFIX}layers.5.mlp.down_proj.weight'`);
  });

  it('an index that is not valid JSON or has a bad weight_map', async () => {
    await expectError(load({ ...shards, [INDEX]: '{"weight_map": ' }), `${LOC}/${INDEX}`, 'not valid JSON');
    await expectError(load({ ...shards, [INDEX]: '{"metadata": {}}' }), `${LOC}/${INDEX}`, 'weight_map');
    await expectError(
      load({ ...shards, [INDEX]: index({ ...weightMap, [PREFIX + 'norm.weight']: '../model.safetensors' }) }),
      `${LOC}/${INDEX}`,
      `'${PREFIX}norm.weight'`,
    );
    await expectError(
      load({ ...shards, [INDEX]: index({ ...weightMap, [PREFIX + 'norm.weight']: 7 as unknown as string }) }),
      `${LOC}/${INDEX}`,
      `'${PREFIX}norm.weight'`,
    );
  });
});
