/**
 * A compact binary form of a tokenizer (`tokenizer.gtok`, written by `gemma3n quantize` next to
 * tokenizer.json): the TokenizerSpec as typed arrays, so start-up skips parsing the 33 MB
 * tokenizer.json (262k-key vocab object, 500k+ merge strings) — the pieces are one UTF-8 blob
 * decoded and split in one call each, the merges are three Int32Arrays of ids.
 *
 * It is a cache, never the source of truth: it records the size and a sampled hash of the
 * tokenizer.json it was made from, and a loader uses it only when both still match.
 *
 * Layout (little-endian): 'GTOK' u32 version u32 metaBytes, meta JSON (padded to 8), then the
 * sections the meta lists, in order, each 8-byte aligned.
 */
import type { BpeModelInit } from './bpe.js';
import type { TokenizerSpec } from './spec.js';

const MAGIC = 0x4b4f5447; // 'GTOK'
const VERSION = 1;

/** What the compact file was made from. */
export interface SourceStamp {
  bytes: number;
  hash: number;
}

interface Meta {
  stamp: SourceStamp;
  /** The code unit between pieces. */
  sep: string;
  spec: Omit<TokenizerSpec, 'pieces' | 'special' | 'bpe'> & { bpe: Pick<BpeModelInit, 'vocabSize' | 'unkId' | 'fuseUnk'> };
  /** Section names and byte lengths, in file order. */
  sections: [string, number][];
}

/** FNV-1a over `windows` evenly spaced 4 KiB windows of a file (and its length): a cheap identity. */
export async function sampledHash(size: number, read: (offset: number, length: number) => Promise<Uint8Array>, windows = 32): Promise<SourceStamp> {
  let h = 0x811c9dc5 ^ (size >>> 0) ^ Math.floor(size / 2 ** 32);
  const w = 4096;
  const count = size <= w * windows ? 1 : windows;
  for (let k = 0; k < count; k++) {
    const off = count === 1 ? 0 : Math.floor(((size - w) * k) / (count - 1));
    const b = await read(off, Math.min(count === 1 ? size : w, size - off));
    for (let i = 0; i < b.length; i++) h = Math.imul(h ^ b[i], 0x01000193);
  }
  return { bytes: size, hash: h >>> 0 };
}

/** Serialises a spec (e.g. specFromTokenizerJson's) with the stamp of its source file. */
export function encodeCompactTokenizer(spec: TokenizerSpec, stamp: SourceStamp): Uint8Array {
  const enc = new TextEncoder();
  // Pieces: one string joined by a code unit no piece contains, so decoding is one TextDecoder
  // call and one split (262k slices or a JSON array were 5-10× slower).
  const sep = ['\u0000', '\uffff', '\u0001', '\u0002'].find((c) => !spec.pieces.some((p) => p.includes(c)));
  if (sep === undefined) throw new Error('encodeCompactTokenizer: no separator character is free');
  const charKeys = Int32Array.from(spec.bpe.charIds.keys()),
    charVals = Int32Array.from(spec.bpe.charIds.values());
  const sections: [string, Uint8Array][] = [
    ['pieces', enc.encode(spec.pieces.join(sep))],
    ['special', spec.special],
    ['charKeys', bytesOf(charKeys)],
    ['charVals', bytesOf(charVals)],
    ['mergeLeft', bytesOf(spec.bpe.mergeLeft)],
    ['mergeRight', bytesOf(spec.bpe.mergeRight)],
    ['mergeResult', bytesOf(spec.bpe.mergeResult)],
    ['mergePriority', bytesOf(spec.bpe.mergePriority)],
  ];
  if (spec.bpe.byteIds) sections.push(['byteIds', bytesOf(spec.bpe.byteIds)]);
  if (spec.bpe.unusedIds) sections.push(['unusedIds', spec.bpe.unusedIds]);
  const { pieces: _p, special: _s, bpe, ...rest } = spec;
  const meta: Meta = {
    stamp,
    sep,
    spec: { ...rest, bpe: { vocabSize: bpe.vocabSize, unkId: bpe.unkId, fuseUnk: bpe.fuseUnk } },
    sections: sections.map(([n, b]) => [n, b.length]),
  };
  const metaBytes = enc.encode(JSON.stringify(meta));
  const pad8 = (n: number) => (n + 7) & ~7;
  let total = 12 + pad8(metaBytes.length);
  for (const [, b] of sections) total += pad8(b.length);
  const out = new Uint8Array(total);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, MAGIC, true);
  dv.setUint32(4, VERSION, true);
  dv.setUint32(8, metaBytes.length, true);
  out.set(metaBytes, 12);
  let pos = 12 + pad8(metaBytes.length);
  for (const [, b] of sections) {
    out.set(b, pos);
    pos += pad8(b.length);
  }
  return out;
}

function bytesOf(a: Int32Array | Float64Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

export class CompactTokenizerError extends Error {}

/**
 * Reads a compact tokenizer back into a spec. Returns null when it was made from a different
 * tokenizer.json than `expected` (stale cache); throws CompactTokenizerError when malformed.
 */
export function decodeCompactTokenizer(bytes: Uint8Array, expected: SourceStamp | null, where = 'tokenizer.gtok'): TokenizerSpec | null {
  const fail = (m: string): never => {
    throw new CompactTokenizerError(`${where}: ${m}`);
  };
  if (bytes.length < 12) fail('truncated');
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (dv.getUint32(0, true) !== MAGIC) fail('not a compact tokenizer (bad magic)');
  if (dv.getUint32(4, true) !== VERSION) return null; // another version: rebuild from tokenizer.json
  const metaLen = dv.getUint32(8, true);
  if (12 + metaLen > bytes.length) fail('truncated meta');
  let meta: Meta;
  try {
    meta = JSON.parse(new TextDecoder().decode(bytes.subarray(12, 12 + metaLen))) as Meta;
  } catch (e) {
    return fail(`meta is not JSON (${(e as Error).message})`);
  }
  if (expected && (meta.stamp?.bytes !== expected.bytes || meta.stamp?.hash !== expected.hash)) return null;
  const sec = new Map<string, Uint8Array>();
  let pos = 12 + ((metaLen + 7) & ~7);
  for (const [name, len] of meta.sections) {
    if (!Number.isSafeInteger(len) || len < 0 || pos + len > bytes.length) fail(`section '${name}' runs past the end`);
    const copy = new Uint8Array(len); // aligned copy for typed-array views
    copy.set(bytes.subarray(pos, pos + len));
    sec.set(name, copy);
    pos += (len + 7) & ~7;
  }
  const need = (n: string) => sec.get(n) ?? fail(`missing section '${n}'`);
  const i32 = (n: string) => {
    const b = need(n);
    if (b.length % 4) fail(`section '${n}' has ${b.length} bytes`);
    return new Int32Array(b.buffer, 0, b.length / 4);
  };
  if (typeof meta.sep !== 'string' || meta.sep.length !== 1) fail('bad piece separator');
  const pieces = new TextDecoder().decode(need('pieces')).split(meta.sep);
  const n = pieces.length;
  if (n !== meta.spec.bpe.vocabSize) fail(`${n} pieces for a vocabulary of ${meta.spec.bpe.vocabSize}`);
  const special = need('special');
  if (special.length !== n) fail('special flags and pieces disagree');
  const keys = i32('charKeys'),
    vals = i32('charVals');
  if (keys.length !== vals.length) fail('charIds keys and values disagree');
  const charIds = new Map<number, number>();
  for (let i = 0; i < keys.length; i++) charIds.set(keys[i], vals[i]);
  const mergeLeft = i32('mergeLeft'),
    mergeRight = i32('mergeRight'),
    mergeResult = i32('mergeResult');
  const pb = need('mergePriority');
  const mergePriority = new Float64Array(pb.buffer, 0, pb.length / 8);
  if (mergeRight.length !== mergeLeft.length || mergeResult.length !== mergeLeft.length || mergePriority.length !== mergeLeft.length)
    fail('merge sections disagree');
  for (const a of [mergeLeft, mergeRight, mergeResult])
    for (let i = 0; i < a.length; i++) if (a[i] < 0 || a[i] >= n) fail(`merge id ${a[i]} outside the vocabulary`);
  const byteIds = sec.has('byteIds') ? i32('byteIds') : null;
  const unusedIds = sec.get('unusedIds') ?? null;
  const { bpe, ...rest } = meta.spec;
  return { ...rest, pieces, special, bpe: { ...bpe, charIds, mergeLeft, mergeRight, mergeResult, mergePriority, byteIds, unusedIds } };
}
