/**
 * Fuzzing the loader (issue 2, item 6): thousands of seeded random mutations of the valid tiny
 * checkpoint test/golden/text-tiny-a (its safetensors bytes, its header JSON, its config.json).
 * Each case must either load — and then a 3-token forward pass runs and gives finite logits,
 * or fails with a clear Error — or fail to load with a CheckpointError (or RangeError) whose
 * message starts with the name of the offending file. No case may take long (a hang) or grow
 * the process's memory without bound (a mutated size must fail the shape check before anything
 * of that size is allocated).
 *
 * Finite logits are not required when the mutation touched tensor data: a flipped exponent bit
 * makes a weight 1e38 or NaN, and the model then faithfully computes with it.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { MemoryFolder } from '../../src/io/byte_source.js';
import { TsKernels } from '../../src/kernels/ts_kernels.js';
import { CheckpointError } from '../../src/checkpoint/safetensors.js';
import { Gemma3nTextModel } from '../../src/model/text_model.js';
import { GOLDEN, mulberry32 } from '../helpers.js';

const LOC = 'fuzz';
const ST = 'model.safetensors';
const CFG = 'config.json';
/** Per-case bound: a normal case takes a few milliseconds. */
const MAX_CASE_MS = 3000;
/** Bound on the growth of the resident set over the whole run. */
const MAX_RSS_GROWTH = 1024 * 2 ** 20;

const modelBytes = new Uint8Array(readFileSync(join(GOLDEN, 'text-tiny-a', ST)));
const configText = readFileSync(join(GOLDEN, 'text-tiny-a', CFG), 'utf8');
const headerLen = Number(new DataView(modelBytes.buffer, modelBytes.byteOffset).getBigUint64(0, true));
const dataStart = 8 + headerLen;
const headerText = new TextDecoder().decode(modelBytes.subarray(8, dataStart));
const data = modelBytes.subarray(dataStart);
const kernels = new TsKernels();

// ---- seeded randomness -------------------------------------------------------------------

/** mulberry32: small, fast, good enough for choosing mutations. */
function rng(seed: number) {
  const next = mulberry32(seed);
  const int = (n: number): number => Math.floor(next() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)];
  return { next, int, pick };
}
type Rng = ReturnType<typeof rng>;

const SPECIAL_NUMBERS = [0, 1, -1, -8, 1.5, 0.5, 2, 3, 7, 1e12, 1e15, 2 ** 31, 2 ** 32, 2 ** 53, 2 ** 64, 1e308, -1e12, 4e9, 1e-300];
const STRINGS = ['', 'relu', 'banana', '64', 'default', 'yarn', 'sliding_attention', 'full_attention', 'gemma3n', 'gemma3n_text', 'llama', 'F32', 'null'];

function randomJson(r: Rng, depth = 0): unknown {
  switch (r.int(depth < 2 ? 9 : 6)) {
    case 0:
      return null;
    case 1:
      return r.next() < 0.5;
    case 2:
      return r.int(100) - 3;
    case 3:
      return r.pick(SPECIAL_NUMBERS);
    case 4:
      return r.next() * 10;
    case 5:
      return r.pick(STRINGS);
    case 6:
      return Array.from({ length: r.int(7) }, () => randomJson(r, depth + 1));
    case 7:
      return { rope_type: randomJson(r, depth + 1), rope_theta: randomJson(r, depth + 1) };
    default:
      return {};
  }
}

// ---- building mutated inputs ---------------------------------------------------------------

function buildSafetensors(header: string, body: Uint8Array, lengthDelta = 0): Uint8Array {
  const padded = header + ' '.repeat((8 - (new TextEncoder().encode(header).length % 8)) % 8);
  const hb = new TextEncoder().encode(padded);
  const out = new Uint8Array(8 + hb.length + body.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(Math.max(0, hb.length + lengthDelta)), true);
  out.set(hb, 8);
  out.set(body, 8 + hb.length);
  return out;
}

interface Case {
  what: string;
  model: Uint8Array;
  config: string;
  /** Tensor data may be corrupted: the logits need not be finite. */
  dataTouched?: boolean;
}

/** Raw byte damage: bit flips and overwrites, mostly in the length and header. */
function byteMutation(r: Rng): Case {
  const bytes = modelBytes.slice();
  const n = 1 + r.int(4);
  const edits: string[] = [];
  let dataTouched = false;
  for (let i = 0; i < n; i++) {
    const inHeader = r.next() < 0.85;
    const pos = inHeader ? (r.next() < 0.1 ? r.int(8) : 8 + r.int(headerLen)) : dataStart + r.int(data.length);
    dataTouched ||= !inHeader;
    if (r.next() < 0.5) {
      const bit = r.int(8);
      bytes[pos] ^= 1 << bit;
      edits.push(`flip ${pos}:${bit}`);
    } else {
      const v = r.next() < 0.5 ? r.int(256) : '0123456789-.e,:"[]{} '.charCodeAt(r.int(21));
      bytes[pos] = v;
      edits.push(`set ${pos}=${v}`);
    }
  }
  return { what: `bytes ${edits.join(' ')}`, model: bytes, config: configText, dataTouched };
}

/** Truncation, biased towards the length and the header. */
function truncation(r: Rng): Case {
  const where = r.int(4);
  const cut = where === 0 ? r.int(9) : where === 1 ? 8 + r.int(headerLen) : dataStart + r.int(data.length);
  return { what: `truncate at ${cut}`, model: modelBytes.slice(0, cut), config: configText };
}

function isEntry(e: unknown): e is Record<string, unknown> & { shape: number[] } {
  return typeof e === 'object' && e !== null && Array.isArray((e as { shape?: unknown }).shape);
}

/** Structured edits of the header JSON: numbers, keys, dtypes, whole entries. */
function headerMutation(r: Rng): Case {
  const header = JSON.parse(headerText) as Record<string, Record<string, unknown>>;
  const names = Object.keys(header).filter((k) => k !== '__metadata__');
  const edits: string[] = [];
  const n = 1 + r.int(3);
  for (let i = 0; i < n; i++) {
    const name = r.pick(names);
    const e = header[name];
    const other = header[r.pick(names)];
    const op = r.int(10);
    // Earlier edits may have deleted or replaced these entries.
    if (!isEntry(e) || !isEntry(other)) continue;
    if (op <= 2) {
      const key = r.pick(['shape', 'data_offsets']);
      const arr = e[key];
      if (Array.isArray(arr) && arr.length) {
        const j = r.int(arr.length);
        const v = r.next() < 0.3 ? arr[j] + r.pick([-4, -2, -1, 1, 2, 4, 256]) : r.next() < 0.85 ? r.pick(SPECIAL_NUMBERS) : randomJson(r);
        arr[j] = v;
        edits.push(`${name}.${key}[${j}]=${JSON.stringify(v)}`);
      }
    } else if (op === 3) {
      const key = r.pick(['dtype', 'shape', 'data_offsets']);
      delete e[key];
      edits.push(`delete ${name}.${key}`);
    } else if (op === 4) {
      delete header[name];
      edits.push(`delete ${name}`);
    } else if (op === 5) {
      const v = r.pick(['F32', 'F16', 'BF16', 'F64', 'I64', 'I32', 'I16', 'I8', 'U8', 'BOOL', 'F8_E4M3', '', 'f32', null, 5, 'constructor', '__proto__']);
      e.dtype = v;
      edits.push(`${name}.dtype=${JSON.stringify(v)}`);
    } else if (op === 6) {
      const v = r.pick([() => other.shape, () => [...(e.shape as number[])].reverse(), () => [...(e.shape as number[]), 1], () => [], () => [0]])();
      e.shape = v;
      edits.push(`${name}.shape=${JSON.stringify(v)}`);
    } else if (op === 7) {
      e.data_offsets = other.data_offsets;
      edits.push(`${name}.data_offsets=${JSON.stringify(other.data_offsets)}`);
    } else if (op === 8) {
      const v = randomJson(r);
      header[name] = v as Record<string, unknown>;
      edits.push(`${name}=${JSON.stringify(v)}`);
    } else {
      const renamed = r.next() < 0.5 ? name.replace(/\d+/, String(r.int(8))) : name + '.x';
      header[renamed] = e;
      if (renamed !== name) delete header[name];
      edits.push(`rename ${name} -> ${renamed}`);
    }
  }
  if (r.next() < 0.1) {
    header.__metadata__ = randomJson(r) as Record<string, unknown>;
    edits.push(`__metadata__=${JSON.stringify(header.__metadata__)}`);
  }
  const delta = r.next() < 0.1 ? r.pick([-8, -1, 1, 8, 1 << 20]) : 0;
  if (delta) edits.push(`length ${delta > 0 ? '+' : ''}${delta}`);
  // Re-pointed offsets read other tensors' (valid) data; only a wrong length shifts the data.
  return { what: `header ${edits.join('; ')}`, model: buildSafetensors(JSON.stringify(header), data, delta), config: configText, dataTouched: delta !== 0 };
}

/** Textual edits of the header JSON: numbers swapped for huge, negative, float or malformed ones. */
function headerTextMutation(r: Rng): Case {
  let text = headerText;
  const edits: string[] = [];
  const n = 1 + r.int(3);
  for (let i = 0; i < n; i++) {
    const op = r.int(4);
    if (op <= 1) {
      const nums = [...text.matchAll(/-?\d+(\.\d+)?/g)];
      const m = r.pick(nums);
      const v = r.pick(['1e999', '-1', '1.5', '9007199254740993', '18446744073709551616', '0', '1e15', '-0', '00', '4294967296', '""', 'null', '[]']);
      text = text.slice(0, m.index) + v + text.slice(m.index! + m[0].length);
      edits.push(`num@${m.index}=${v}`);
    } else if (op === 2) {
      const strs = [...text.matchAll(/"(F32|BF16|F16|dtype|shape|data_offsets)"/g)];
      const m = r.pick(strs);
      const v = r.pick(['"F16"', '"I32"', '"U8"', '"F64"', '"shape"', '"dtype"', '"data_offsets"', '"x"']);
      text = text.slice(0, m.index) + v + text.slice(m.index! + m[0].length);
      edits.push(`str@${m.index}=${v}`);
    } else {
      const pos = r.int(text.length);
      text = text.slice(0, pos) + text.slice(pos + 1 + r.int(3));
      edits.push(`cut@${pos}`);
    }
  }
  return { what: `header text ${edits.join('; ')}`, model: buildSafetensors(text, data), config: configText };
}

const SIZE_FIELDS = [
  'num_hidden_layers',
  'hidden_size',
  'vocab_size',
  'vocab_size_per_layer_input',
  'hidden_size_per_layer_input',
  'intermediate_size',
  'num_attention_heads',
  'num_key_value_heads',
  'head_dim',
  'laurel_rank',
  'altup_num_inputs',
  'sliding_window',
  'max_position_embeddings',
  'num_kv_shared_layers',
];

/** config.json: values replaced by random JSON, fields deleted, sizes made huge. */
function configMutation(r: Rng): Case {
  const cfg = JSON.parse(configText) as Record<string, unknown>;
  const edits: string[] = [];
  const n = 1 + r.int(3);
  for (let i = 0; i < n; i++) {
    const op = r.int(6);
    const field = r.next() < 0.4 ? r.pick(SIZE_FIELDS) : r.pick([...Object.keys(cfg), 'rope_scaling', 'text_config', 'altup_coef_clip']);
    if (op === 0) {
      delete cfg[field];
      edits.push(`delete ${field}`);
    } else if (op === 1) {
      const v = r.pick([1e12, 2 ** 53, 1e308, 4e9, 2 ** 31, 1e6, 100000]);
      cfg[field] = v;
      edits.push(`${field}=${v}`);
    } else if (op === 2 && Array.isArray(cfg[field]) && (cfg[field] as unknown[]).length) {
      const arr = cfg[field] as unknown[];
      const j = r.int(arr.length);
      arr[j] = randomJson(r);
      edits.push(`${field}[${j}]=${JSON.stringify(arr[j])}`);
    } else if (op === 3) {
      const rp = cfg.rope_parameters as Record<string, unknown> | undefined;
      if (rp && typeof rp === 'object') {
        const key = r.pick(['full_attention', 'sliding_attention']);
        const v = r.next() < 0.5 ? randomJson(r) : { rope_type: r.pick(['default', 'yarn', 5, null]), rope_theta: r.pick([10000, -1, 0, 1e308, '1e4', null]) };
        rp[key] = v;
        edits.push(`rope_parameters.${key}=${JSON.stringify(v)}`);
      }
    } else {
      const v = randomJson(r);
      cfg[field] = v;
      edits.push(`${field}=${JSON.stringify(v)}`);
    }
  }
  let obj: unknown = cfg;
  if (r.next() < 0.15) {
    // The same text config inside a full Gemma3nForConditionalGeneration config.
    obj = { model_type: 'gemma3n', text_config: { ...cfg, model_type: 'gemma3n_text' }, image_token_id: r.pick([262145, 1.5, '7', undefined]) };
    edits.push('wrapped in a gemma3n config');
  }
  let text = JSON.stringify(obj);
  if (r.next() < 0.05) {
    text = text.slice(0, r.int(text.length));
    edits.push('config text truncated');
  }
  return { what: `config ${edits.join('; ')}`, model: modelBytes, config: text };
}

// ---- running a case ------------------------------------------------------------------------

type Outcome = 'loaded' | 'rejected' | 'forward-error';

/** Runs one case; returns its outcome, or throws a description of what went wrong. */
async function runCase(c: Case): Promise<Outcome> {
  const folder = new MemoryFolder(
    new Map<string, Uint8Array>([
      [ST, c.model],
      [CFG, new TextEncoder().encode(c.config)],
    ]),
    LOC,
  );
  let model: Gemma3nTextModel;
  try {
    ({ model } = await Gemma3nTextModel.load(folder, kernels));
  } catch (e) {
    const err = e as Error;
    const clear =
      (err instanceof CheckpointError || err instanceof RangeError) &&
      /^fuzz\/(model\.safetensors|config\.json)\b/.test(err.message) &&
      !err.message.includes('[object');
    if (!clear) throw new Error(`load failed unclearly: ${err?.constructor?.name}: ${err?.message}`);
    return 'rejected';
  }
  try {
    const { logits } = await model.forward([2, 105, 9], model.newCache());
    if (logits.length !== model.config.vocabSize) throw new Error(`forward: ${logits.length} logits for vocab ${model.config.vocabSize}`);
    if (!c.dataTouched && !logits.every(Number.isFinite)) throw new Error('forward gave non-finite logits');
    return 'loaded';
  } catch (e) {
    const err = e as Error;
    // The only expected forward failure: a mutated max_position_embeddings below 3.
    if (err instanceof RangeError && /max_position_embeddings/.test(err.message)) return 'forward-error';
    throw new Error(`forward failed: ${err?.constructor?.name}: ${err?.message}`);
  }
}

async function fuzz(family: string, seed0: number, count: number, make: (r: Rng) => Case): Promise<Record<Outcome, number>> {
  const counts: Record<Outcome, number> = { loaded: 0, rejected: 0, 'forward-error': 0 };
  const failures: string[] = [];
  const rssStart = process.memoryUsage.rss();
  let rssMax = rssStart;
  for (let i = 0; i < count; i++) {
    const seed = seed0 + i;
    const c = make(rng(seed));
    const t0 = performance.now();
    try {
      counts[await runCase(c)]++;
    } catch (e) {
      failures.push(`${family} seed ${seed} [${c.what}]: ${(e as Error).message}`);
    }
    const ms = performance.now() - t0;
    if (ms > MAX_CASE_MS) failures.push(`${family} seed ${seed} [${c.what}]: took ${ms.toFixed(0)} ms`);
    rssMax = Math.max(rssMax, process.memoryUsage.rss());
  }
  expect(failures.slice(0, 20)).toEqual([]);
  expect(rssMax - rssStart, 'resident set growth').toBeLessThan(MAX_RSS_GROWTH);
  return counts;
}

describe('fuzzing the loader with mutations of text-tiny-a', () => {
  it('the unmutated checkpoint loads (sanity check of the harness)', async () => {
    expect(await runCase({ what: 'none', model: modelBytes, config: configText })).toBe('loaded');
  });

  it('bit flips and byte overwrites, mostly in the header', async () => {
    const counts = await fuzz('bytes', 1_000_000, 900, byteMutation);
    expect(counts.rejected).toBeGreaterThan(0);
    expect(counts.loaded).toBeGreaterThan(0);
  }, 120_000);

  it('truncations', async () => {
    const counts = await fuzz('truncate', 2_000_000, 200, truncation);
    expect(counts.loaded).toBe(0);
  }, 120_000);

  it('header JSON edits: numbers, keys, dtypes, entries', async () => {
    const counts = await fuzz('header', 3_000_000, 700, headerMutation);
    expect(counts.rejected).toBeGreaterThan(0);
  }, 120_000);

  it('header text edits: huge, negative, float and malformed numbers', async () => {
    const counts = await fuzz('header-text', 4_000_000, 400, headerTextMutation);
    expect(counts.rejected).toBeGreaterThan(0);
  }, 120_000);

  it('config.json edits: random values, deleted fields, huge sizes', async () => {
    const counts = await fuzz('config', 5_000_000, 900, configMutation);
    expect(counts.rejected).toBeGreaterThan(0);
    expect(counts.loaded).toBeGreaterThan(0);
  }, 120_000);
});
