/**
 * Reader for Hugging Face tokenizers' tokenizer.json (BPE model, merges by rank, added_tokens,
 * Replace/Prepend/NFx normalizers, a literal Split pre-tokenizer, byte fallback) into a
 * TokenizerSpec. Errors name the offending field.
 */
import { BYTE_PIECE, type AddedTokenSpec, type NormalizeStep, type TokenizerSpec } from './spec.js';

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

function isObject(v: unknown): v is Record<string, Json> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function fail(msg: string): never {
  throw new Error(`tokenizer.json: ${msg}`);
}

function literalPattern(p: Json | undefined, where: string): string {
  if (!isObject(p)) fail(`${where}.pattern must be an object like {"String": " "}`);
  if (typeof p['String'] === 'string') return p['String'];
  if ('Regex' in p) fail(`${where}.pattern: Regex patterns are not supported (only {"String": ...})`);
  fail(`${where}.pattern must have a "String" field`);
}

function parseNormalizer(n: Json | undefined, where: string, out: NormalizeStep[]): void {
  if (n === null || n === undefined) return;
  if (!isObject(n)) fail(`${where} must be an object or null`);
  switch (n['type']) {
    case 'Replace': {
      const content = n['content'];
      if (typeof content !== 'string') fail(`${where}.content must be a string`);
      out.push({ kind: 'replace', from: literalPattern(n['pattern'], where), to: content });
      return;
    }
    case 'Prepend': {
      const text = n['prepend'];
      if (typeof text !== 'string') fail(`${where}.prepend must be a string`);
      out.push({ kind: 'prepend', text });
      return;
    }
    case 'NFC':
    case 'NFD':
    case 'NFKC':
    case 'NFKD':
      out.push({ kind: 'unicode', form: n['type'] });
      return;
    case 'Sequence': {
      const list = n['normalizers'];
      if (!Array.isArray(list)) fail(`${where}.normalizers must be an array`);
      list.forEach((x, i) => parseNormalizer(x, `${where}.normalizers[${i}]`, out));
      return;
    }
    default:
      fail(`${where}.type ${JSON.stringify(n['type'])} is not supported (Replace, Prepend, NFC/NFD/NFKC/NFKD, Sequence)`);
  }
}

function parsePreTokenizer(p: Json | undefined): TokenizerSpec['split'] {
  if (p === null || p === undefined) return null;
  if (!isObject(p)) fail('pre_tokenizer must be an object or null');
  if (p['type'] !== 'Split') fail(`pre_tokenizer.type ${JSON.stringify(p['type'])} is not supported (only Split on a literal string)`);
  if (p['invert'] === true) fail('pre_tokenizer.invert = true is not supported');
  const behavior = p['behavior'];
  if (behavior !== 'MergedWithPrevious' && behavior !== 'MergedWithNext' && behavior !== 'Isolated' && behavior !== 'Removed') {
    fail(`pre_tokenizer.behavior ${JSON.stringify(behavior)} is not supported`);
  }
  return { pattern: literalPattern(p['pattern'], 'pre_tokenizer'), behavior };
}

function decoderStripsLeadingSpace(d: Json | undefined): boolean {
  if (!isObject(d)) return false;
  if (d['type'] === 'Strip') return d['content'] === ' ' && d['start'] === 1;
  if (d['type'] === 'Sequence' && Array.isArray(d['decoders'])) return d['decoders'].some(decoderStripsLeadingSpace);
  return false;
}

export function specFromTokenizerJson(input: string | object): TokenizerSpec {
  let root: unknown;
  if (typeof input === 'string') {
    try {
      root = JSON.parse(input);
    } catch (e) {
      fail(`not valid JSON (${(e as Error).message})`);
    }
  } else root = input;
  if (!isObject(root)) fail('top level must be a JSON object');
  const model = root['model'];
  if (!isObject(model)) fail('missing "model" object');
  const type = model['type'];
  if (type !== undefined && type !== 'BPE') fail(`model.type is ${JSON.stringify(type)}; only "BPE" is supported`);
  const vocab = model['vocab'];
  if (!isObject(vocab)) fail('model.vocab must be an object mapping piece -> id');
  const merges = model['merges'];
  if (!Array.isArray(merges)) fail('model.merges must be an array');

  // id -> piece, from the vocab and the added tokens. One pass over the vocab
  // (a 262k-key object); `pieces` is preallocated so it stays a packed array.
  const addedRaw = root['added_tokens'] ?? [];
  if (!Array.isArray(addedRaw)) fail('added_tokens must be an array');
  const entries = Object.entries(vocab);
  let maxId = -1;
  for (const [piece, id] of entries) {
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0)
      fail(`model.vocab[${JSON.stringify(piece)}] must be a non-negative integer id, got ${JSON.stringify(id)}`);
    if (id > maxId) maxId = id;
  }
  for (const t of addedRaw) if (isObject(t) && typeof t['id'] === 'number' && t['id'] > maxId) maxId = t['id'];
  const pieces: string[] = new Array<string>(maxId + 1).fill('');
  const has = new Uint8Array(maxId + 1);
  const pieceIds = new Map<string, number>();
  const charIds = new Map<number, number>();
  const byteIds = model['byte_fallback'] === true ? new Int32Array(256).fill(-1) : null;
  for (const [piece, idv] of entries) {
    const id = idv as number;
    if (has[id] === 1) fail(`model.vocab: id ${id} is used by both ${JSON.stringify(pieces[id])} and ${JSON.stringify(piece)}`);
    has[id] = 1;
    pieces[id] = piece;
    pieceIds.set(piece, id);
    const cp = piece.codePointAt(0)!;
    if (piece.length === (cp > 0xffff ? 2 : 1)) charIds.set(cp, id);
    else if (byteIds !== null && piece.length === 6 && cp === 0x3c) {
      const m = BYTE_PIECE.exec(piece);
      if (m) byteIds[parseInt(m[1]!, 16)] = id;
    }
  }
  const added: AddedTokenSpec[] = addedRaw.map((t, i) => {
    if (!isObject(t)) fail(`added_tokens[${i}] must be an object`);
    const id = t['id'],
      content = t['content'];
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0) fail(`added_tokens[${i}].id must be a non-negative integer`);
    if (typeof content !== 'string' || content.length === 0) fail(`added_tokens[${i}].content must be a non-empty string`);
    if (t['normalized'] === true) fail(`added_tokens[${i}] (${JSON.stringify(content)}): normalized added tokens are not supported`);
    if (has[id] === 1 && pieces[id] !== content)
      fail(`added_tokens[${i}]: id ${id} is ${JSON.stringify(pieces[id])} in model.vocab but ${JSON.stringify(content)} here`);
    pieces[id] = content;
    has[id] = 1;
    if (!pieceIds.has(content)) pieceIds.set(content, id);
    return { id, content, special: t['special'] === true };
  });
  const special = new Uint8Array(pieces.length);
  for (const t of added) if (t.special) special[t.id] = 1;

  // Merge rules: rank = position in the list.
  const n = merges.length;
  const mergeLeft = new Int32Array(n),
    mergeRight = new Int32Array(n),
    mergeResult = new Int32Array(n);
  const mergePriority = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const m = merges[i];
    let a: string, b: string;
    if (Array.isArray(m) && m.length === 2 && typeof m[0] === 'string' && typeof m[1] === 'string') {
      a = m[0];
      b = m[1];
    } else if (typeof m === 'string') {
      const sp = m.indexOf(' ');
      if (sp < 0) fail(`model.merges[${i}] ${JSON.stringify(m)} must be "left right"`);
      a = m.slice(0, sp);
      b = m.slice(sp + 1);
    } else fail(`model.merges[${i}] must be a [left, right] pair or a "left right" string`);
    const l = pieceIds.get(a),
      r = pieceIds.get(b),
      res = pieceIds.get(a + b);
    if (l === undefined) fail(`model.merges[${i}]: ${JSON.stringify(a)} is not in model.vocab`);
    if (r === undefined) fail(`model.merges[${i}]: ${JSON.stringify(b)} is not in model.vocab`);
    if (res === undefined) fail(`model.merges[${i}]: merged piece ${JSON.stringify(a + b)} is not in model.vocab`);
    mergeLeft[i] = l;
    mergeRight[i] = r;
    mergeResult[i] = res;
    mergePriority[i] = i;
  }

  if (byteIds !== null) {
    const missing = byteIds.indexOf(-1);
    if (missing >= 0) fail(`model.byte_fallback is true but <0x${missing.toString(16).toUpperCase().padStart(2, '0')}> is not in model.vocab`);
  }
  const unkPiece = model['unk_token'];
  const unkId = typeof unkPiece === 'string' ? (pieceIds.get(unkPiece) ?? -1) : -1;

  const normalize: NormalizeStep[] = [];
  parseNormalizer(root['normalizer'], 'normalizer', normalize);
  const lookup = (p: string): number => pieceIds.get(p) ?? -1;
  return {
    pieces,
    special,
    rawTokens: added,
    normTokens: [],
    normalize,
    split: parsePreTokenizer(root['pre_tokenizer']),
    bpe: {
      vocabSize: pieces.length,
      charIds,
      mergeLeft,
      mergeRight,
      mergeResult,
      mergePriority,
      byteIds,
      unkId,
      fuseUnk: model['fuse_unk'] === true,
      unusedIds: null,
    },
    bosId: lookup('<bos>'),
    eosId: lookup('<eos>'),
    padId: lookup('<pad>'),
    unkId,
    decodeStripLeadingSpace: decoderStripsLeadingSpace(root['decoder']),
  };
}
