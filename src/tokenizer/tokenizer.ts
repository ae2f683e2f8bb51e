/**
 * Gemma 3 / 3n tokenizer: SentencePiece-style BPE with byte fallback.
 *
 * Pipeline for encode(text):
 *   1. lone UTF-16 surrogates -> U+FFFD (what the UTF-8 based reference implementations receive)
 *   2. split out added tokens matched literally in the raw text (leftmost-longest):
 *      user-defined ones (e.g. "\n\n", "<h1>") always, control ones ("<bos>",
 *      "<start_of_turn>", ...) only when `parseSpecial` is set
 *   3. normalize each remaining segment (Gemma: ' ' -> '▁', nothing else)
 *   4. split out user-defined pieces matched in the normalized text (tokenizer.model only)
 *   5. cut into words at '▁' positions no vocabulary piece can span, then BPE each word
 *      (cached), with unknown characters falling back to <0xXX> byte pieces.
 */
import { BpeModel, type BpeModelInit } from './bpe.js';
import { parseSentencePieceModel, PieceType } from './sentencepiece_model.js';
import { decodeUtf8Lenient, decodeUtf8Prefix, toWellFormed, utf8Encode } from './utf8.js';

export interface EncodeOptions {
  /** Prepend the <bos> id. Default false (chat prompts rendered by renderChat already start with "<bos>"). */
  addBos?: boolean;
  /**
   * Turn the text of control tokens ("<bos>", "<start_of_turn>", "<image_soft_token>", ...)
   * into their ids. Default false, so that text typed by a user can never inject
   * control tokens; set it for prompts produced by the chat template.
   * User-defined tokens ("\n\n", "<h1>", runs of spaces) are always matched, as in SentencePiece.
   */
  parseSpecial?: boolean;
}

export interface DecodeOptions {
  /** Drop control tokens (<bos>, <eos>, <pad>, <start_of_turn>, image/audio markers ...). Default false. */
  skipSpecial?: boolean;
}

export interface StreamDecoder {
  /** Feed one id; returns the text that became complete (never half a UTF-8 character). */
  push(id: number): string;
  /** End of stream: returns what is left (incomplete bytes become U+FFFD). */
  flush(): string;
}

/** Names of well-known Gemma special tokens, mapped to their ids when present in the vocabulary. */
export interface GemmaSpecialIds {
  pad?: number;
  eos?: number;
  bos?: number;
  unk?: number;
  mask?: number;
  startOfTurn?: number;
  endOfTurn?: number;
  startOfImage?: number;
  endOfImage?: number;
  imageSoftToken?: number;
  startOfAudio?: number;
  endOfAudio?: number;
  audioSoftToken?: number;
}

const SPECIAL_NAMES: ReadonlyArray<readonly [keyof GemmaSpecialIds, string]> = [
  ['pad', '<pad>'], ['eos', '<eos>'], ['bos', '<bos>'], ['unk', '<unk>'], ['mask', '<mask>'],
  ['startOfTurn', '<start_of_turn>'], ['endOfTurn', '<end_of_turn>'],
  ['startOfImage', '<start_of_image>'], ['endOfImage', '<end_of_image>'], ['imageSoftToken', '<image_soft_token>'],
  ['startOfAudio', '<start_of_audio>'], ['endOfAudio', '<end_of_audio>'], ['audioSoftToken', '<audio_soft_token>'],
];

/** An added token (HF `added_tokens` / tokenizer_config `added_tokens_decoder`). */
export interface AddedTokenSpec {
  id: number;
  content: string;
  /** true: control token (parsed only with parseSpecial, dropped by skipSpecial). */
  special: boolean;
}

type SplitBehavior = 'MergedWithPrevious' | 'MergedWithNext' | 'Isolated' | 'Removed';

/** Everything needed to build a tokenizer, independent of the file format it came from. */
export interface TokenizerSpec {
  pieces: string[];
  /** 1 for control/special ids. */
  special: Uint8Array;
  /** Tokens matched in the raw text before normalization. */
  rawTokens: AddedTokenSpec[];
  /** Tokens matched in the normalized text (SentencePiece user-defined symbols). */
  normTokens: AddedTokenSpec[];
  /** Normalization steps applied in order. */
  normalize: NormalizeStep[];
  /** Optional pre-tokenizer split on a literal string (HF `Split`). */
  split: { pattern: string; behavior: SplitBehavior } | null;
  bpe: BpeModelInit;
  bosId: number;
  eosId: number;
  padId: number;
  unkId: number;
  /** Remove one leading space when decoding (SentencePiece add_dummy_prefix / HF Strip decoder). */
  decodeStripLeadingSpace: boolean;
}

export type NormalizeStep =
  | { kind: 'replace'; from: string; to: string }
  | { kind: 'prepend'; text: string }
  | { kind: 'unicode'; form: 'NFC' | 'NFD' | 'NFKC' | 'NFKD' }
  | { kind: 'spm-whitespace'; addDummyPrefix: boolean; removeExtra: boolean; escape: boolean };

const SPACE_MARK = '\u2581'; // '▁'
const SPACE_MARK_CODE = 0x2581;
const WORD_CACHE_MAX = 1 << 16;
const WORD_CACHE_MAX_LEN = 64;

interface TrieNode { children: Map<number, TrieNode>; id: number; len: number }

/** Leftmost-longest literal matcher over a set of strings (UTF-16 code units). */
class LiteralMatcher {
  private readonly root: TrieNode = { children: new Map(), id: -1, len: 0 };
  private readonly first = new Uint8Array(0x10000);
  readonly empty: boolean;
  matchLen = 0;
  matchId = -1;

  constructor(tokens: readonly AddedTokenSpec[]) {
    let count = 0;
    for (const t of tokens) {
      if (t.content.length === 0) continue;
      let node = this.root;
      for (let i = 0; i < t.content.length; i++) {
        const c = t.content.charCodeAt(i);
        let child = node.children.get(c);
        if (!child) { child = { children: new Map(), id: -1, len: i + 1 }; node.children.set(c, child); }
        node = child;
      }
      if (node.id === -1) { node.id = t.id; count++; }
      this.first[t.content.charCodeAt(0)] = 1;
    }
    this.empty = count === 0;
  }

  /** Start of the next match at or after `from`, or -1. Sets matchLen / matchId. */
  next(text: string, from: number): number {
    if (this.empty) return -1;
    const first = this.first;
    for (let i = from; i < text.length; i++) {
      if (first[text.charCodeAt(i)] === 0) continue;
      let node: TrieNode | undefined = this.root;
      let bestLen = 0, bestId = -1;
      for (let j = i; j < text.length; j++) {
        node = node.children.get(text.charCodeAt(j));
        if (node === undefined) break;
        if (node.id !== -1) { bestLen = node.len; bestId = node.id; }
      }
      if (bestId !== -1) { this.matchLen = bestLen; this.matchId = bestId; return i; }
    }
    return -1;
  }
}

export class GemmaTokenizer {
  readonly vocabSize: number;
  readonly bosId: number;
  readonly eosId: number;
  readonly padId: number;
  readonly unkId: number;
  readonly specialIds: Readonly<GemmaSpecialIds>;

  private readonly pieces: string[];
  private readonly special: Uint8Array;
  private readonly pieceIds: Map<string, number>;
  private readonly byteValue: Int16Array;
  private readonly pieceBytes: (Uint8Array | undefined)[];
  private readonly rawAll: LiteralMatcher;
  private readonly rawPlain: LiteralMatcher;
  private readonly normMatcher: LiteralMatcher;
  private readonly normalizeSteps: NormalizeStep[];
  private readonly splitSpec: TokenizerSpec['split'];
  private readonly bpe: BpeModel;
  private readonly crossesSpace: Uint8Array;
  private readonly stripLeadingSpace: boolean;
  private readonly cache = new Map<string, Int32Array>();
  private readonly scratch: number[] = [];

  /** Use fromTokenizerJson / fromSentencePieceModel / loadTokenizerFromFiles. */
  constructor(spec: TokenizerSpec) {
    this.pieces = spec.pieces;
    this.vocabSize = spec.pieces.length;
    this.special = spec.special;
    this.bosId = spec.bosId;
    this.eosId = spec.eosId;
    this.padId = spec.padId;
    this.unkId = spec.unkId;
    this.pieceIds = new Map();
    for (let id = 0; id < spec.pieces.length; id++) {
      const p = spec.pieces[id]!;
      if (p !== '' && !this.pieceIds.has(p)) this.pieceIds.set(p, id);
    }
    this.byteValue = new Int16Array(spec.pieces.length).fill(-1);
    if (spec.bpe.byteIds) for (let b = 0; b < 256; b++) this.byteValue[spec.bpe.byteIds[b]!] = b;
    this.pieceBytes = new Array<Uint8Array | undefined>(spec.pieces.length);
    this.rawAll = new LiteralMatcher(spec.rawTokens);
    this.rawPlain = new LiteralMatcher(spec.rawTokens.filter((t) => !t.special));
    this.normMatcher = new LiteralMatcher(spec.normTokens);
    this.normalizeSteps = spec.normalize;
    this.splitSpec = spec.split;
    this.bpe = new BpeModel(spec.bpe);
    this.stripLeadingSpace = spec.decodeStripLeadingSpace;

    // A '▁' can start a new word unless some piece contains it right after the previous unit.
    this.crossesSpace = new Uint8Array(0x10000);
    for (const p of spec.pieces) {
      for (let i = p.indexOf(SPACE_MARK, 1); i > 0; i = p.indexOf(SPACE_MARK, i + 1)) {
        this.crossesSpace[p.charCodeAt(i - 1)] = 1;
      }
    }

    const ids: GemmaSpecialIds = {};
    for (const [name, text] of SPECIAL_NAMES) {
      const id = this.pieceIds.get(text);
      if (id !== undefined) ids[name] = id;
    }
    this.specialIds = Object.freeze(ids);
  }

  /** Load from the text (or parsed object) of a Hugging Face tokenizer.json. */
  static fromTokenizerJson(json: string | object): GemmaTokenizer {
    return new GemmaTokenizer(specFromTokenizerJson(json));
  }

  /** Load from the bytes of a SentencePiece tokenizer.model (BPE models only). */
  static fromSentencePieceModel(bytes: Uint8Array): GemmaTokenizer {
    return new GemmaTokenizer(specFromSentencePiece(bytes));
  }

  /** Ids that end a model turn: <eos> and <end_of_turn> when present. */
  get stopIds(): number[] {
    const out: number[] = [];
    if (this.eosId >= 0) out.push(this.eosId);
    if (this.specialIds.endOfTurn !== undefined) out.push(this.specialIds.endOfTurn);
    return out;
  }

  idToPiece(id: number): string | undefined {
    return Number.isInteger(id) && id >= 0 && id < this.pieces.length ? this.pieces[id] : undefined;
  }

  pieceToId(piece: string): number | undefined {
    return this.pieceIds.get(piece);
  }

  /** True for control tokens (those removed by decode's skipSpecial). */
  isSpecial(id: number): boolean {
    return this.special[id] === 1;
  }

  encode(text: string, opts: EncodeOptions = {}): number[] {
    if (typeof text !== 'string') throw new TypeError('encode: text must be a string');
    const out: number[] = [];
    if (opts.addBos) {
      if (this.bosId < 0) throw new Error('encode: addBos requested but the vocabulary has no <bos>');
      out.push(this.bosId);
    }
    const s = toWellFormed(text);
    const matcher = opts.parseSpecial ? this.rawAll : this.rawPlain;
    let pos = 0;
    for (;;) {
      const m = matcher.next(s, pos);
      const segEnd = m === -1 ? s.length : m;
      if (segEnd > pos) this.encodeSegment(s.slice(pos, segEnd), pos === 0, out);
      if (m === -1) break;
      out.push(matcher.matchId);
      pos = m + matcher.matchLen;
    }
    return out;
  }

  /** Normalize, pre-split and BPE one stretch of text that contains no added token. */
  private encodeSegment(seg: string, atTextStart: boolean, out: number[]): void {
    let s = seg;
    for (const step of this.normalizeSteps) s = applyNormalize(step, s, atTextStart);
    const split = this.splitSpec;
    if (split === null || s.indexOf(split.pattern) < 0) { this.encodeNormalized(s, out); return; }
    for (const piece of splitLiteral(s, split.pattern, split.behavior)) this.encodeNormalized(piece, out);
  }

  private encodeNormalized(s: string, out: number[]): void {
    const matcher = this.normMatcher;
    let pos = 0;
    for (;;) {
      const m = matcher.next(s, pos);
      const end = m === -1 ? s.length : m;
      if (end > pos) this.encodeWords(s, pos, end, out);
      if (m === -1) return;
      out.push(matcher.matchId);
      pos = m + matcher.matchLen;
    }
  }

  /** Cut s[start, end) before each '▁' that no piece can span, and BPE each word. */
  private encodeWords(s: string, start: number, end: number, out: number[]): void {
    const cross = this.crossesSpace;
    let wordStart = start;
    for (let i = start + 1; i < end; i++) {
      if (s.charCodeAt(i) === SPACE_MARK_CODE && cross[s.charCodeAt(i - 1)] === 0) {
        this.encodeWord(s, wordStart, i, out);
        wordStart = i;
      }
    }
    this.encodeWord(s, wordStart, end, out);
  }

  private encodeWord(s: string, start: number, end: number, out: number[]): void {
    if (end - start > WORD_CACHE_MAX_LEN) { this.bpe.encodeWord(s, start, end, out); return; }
    const key = s.slice(start, end);
    let ids = this.cache.get(key);
    if (ids === undefined) {
      const tmp = this.scratch;
      tmp.length = 0;
      this.bpe.encodeWord(s, start, end, tmp);
      ids = Int32Array.from(tmp);
      if (this.cache.size >= WORD_CACHE_MAX) this.cache.clear();
      this.cache.set(key, ids);
    }
    for (let i = 0; i < ids.length; i++) out.push(ids[i]!);
  }

  /** UTF-8 bytes an id contributes to decoded text ('▁' -> ' ', <0xXX> -> byte). */
  private bytesOf(id: number): Uint8Array {
    let b = this.pieceBytes[id];
    if (b === undefined) {
      const v = this.byteValue[id]!;
      b = v >= 0 ? Uint8Array.of(v) : utf8Encode(this.pieces[id]!.replaceAll(SPACE_MARK, ' '));
      this.pieceBytes[id] = b;
    }
    return b;
  }

  private checkId(id: number): void {
    if (!Number.isInteger(id) || id < 0 || id >= this.pieces.length) {
      throw new RangeError(`decode: token id ${id} is outside the vocabulary (size ${this.pieces.length})`);
    }
  }

  decode(ids: ArrayLike<number>, opts: DecodeOptions = {}): string {
    const skip = opts.skipSpecial === true;
    let buf = new Uint8Array(Math.max(16, ids.length * 4));
    let n = 0;
    let first = true;
    for (let k = 0; k < ids.length; k++) {
      const id = ids[k]!;
      this.checkId(id);
      if (skip && this.special[id] === 1) continue;
      let b = this.bytesOf(id);
      if (first && this.stripLeadingSpace && b.length > 0 && b[0] === 0x20) b = b.subarray(1);
      first = false;
      if (n + b.length > buf.length) {
        const nb = new Uint8Array(Math.max(buf.length * 2, n + b.length));
        nb.set(buf.subarray(0, n));
        buf = nb;
      }
      buf.set(b, n);
      n += b.length;
    }
    return decodeUtf8Lenient(buf.subarray(0, n));
  }

  /**
   * Incremental decoder for generated ids: push() returns only complete
   * characters, holding back a partial UTF-8 sequence (e.g. <0xE2><0x82> of "€")
   * until the rest arrives. The concatenated output equals decode(allIds, opts).
   */
  createStreamDecoder(opts: DecodeOptions = {}): StreamDecoder {
    const skip = opts.skipSpecial === true;
    let pending = new Uint8Array(16);
    let n = 0;
    let first = true;
    return {
      push: (id: number): string => {
        this.checkId(id);
        if (skip && this.special[id] === 1) return '';
        let b = this.bytesOf(id);
        if (first && this.stripLeadingSpace && b.length > 0 && b[0] === 0x20) b = b.subarray(1);
        first = false;
        if (n + b.length > pending.length) {
          const nb = new Uint8Array(Math.max(pending.length * 2, n + b.length));
          nb.set(pending.subarray(0, n));
          pending = nb;
        }
        pending.set(b, n);
        n += b.length;
        const { text, consumed } = decodeUtf8Prefix(pending, 0, n, false);
        pending.copyWithin(0, consumed, n);
        n -= consumed;
        return text;
      },
      flush: (): string => {
        const { text } = decodeUtf8Prefix(pending, 0, n, true);
        n = 0;
        return text;
      },
    };
  }
}

function applyNormalize(step: NormalizeStep, s: string, atTextStart: boolean): string {
  switch (step.kind) {
    case 'replace': return s.replaceAll(step.from, step.to);
    case 'prepend': return s.length > 0 ? step.text + s : s;
    case 'unicode': return s.normalize(step.form);
    case 'spm-whitespace': {
      let t = s;
      if (step.removeExtra) t = t.replace(/ {2,}/g, ' ').replace(/^ | $/g, '');
      if (step.addDummyPrefix && atTextStart && t.length > 0) t = ' ' + t;
      if (step.escape) t = t.replaceAll(' ', SPACE_MARK);
      return t;
    }
  }
}

function splitLiteral(s: string, pattern: string, behavior: SplitBehavior): string[] {
  const out: string[] = [];
  let pos = 0;
  for (let i = s.indexOf(pattern); i >= 0; i = s.indexOf(pattern, i + pattern.length)) {
    const after = i + pattern.length;
    switch (behavior) {
      case 'MergedWithPrevious': if (after > pos) out.push(s.slice(pos, after)); pos = after; break;
      case 'MergedWithNext': if (i > pos) out.push(s.slice(pos, i)); pos = i; break;
      case 'Isolated': if (i > pos) out.push(s.slice(pos, i)); out.push(pattern); pos = after; break;
      case 'Removed': if (i > pos) out.push(s.slice(pos, i)); pos = after; break;
    }
  }
  if (pos < s.length) out.push(s.slice(pos));
  return out;
}

// ---------------------------------------------------------------------------
// tokenizer.json (Hugging Face tokenizers)

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
    case 'NFC': case 'NFD': case 'NFKC': case 'NFKD':
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

const BYTE_PIECE = /^<0x([0-9A-Fa-f]{2})>$/;

export function specFromTokenizerJson(input: string | object): TokenizerSpec {
  let root: unknown;
  if (typeof input === 'string') {
    try { root = JSON.parse(input); } catch (e) { fail(`not valid JSON (${(e as Error).message})`); }
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
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0) fail(`model.vocab[${JSON.stringify(piece)}] must be a non-negative integer id, got ${JSON.stringify(id)}`);
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
    const id = t['id'], content = t['content'];
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0) fail(`added_tokens[${i}].id must be a non-negative integer`);
    if (typeof content !== 'string' || content.length === 0) fail(`added_tokens[${i}].content must be a non-empty string`);
    if (t['normalized'] === true) fail(`added_tokens[${i}] (${JSON.stringify(content)}): normalized added tokens are not supported`);
    if (has[id] === 1 && pieces[id] !== content) fail(`added_tokens[${i}]: id ${id} is ${JSON.stringify(pieces[id])} in model.vocab but ${JSON.stringify(content)} here`);
    pieces[id] = content;
    has[id] = 1;
    if (!pieceIds.has(content)) pieceIds.set(content, id);
    return { id, content, special: t['special'] === true };
  });
  const special = new Uint8Array(pieces.length);
  for (const t of added) if (t.special) special[t.id] = 1;

  // Merge rules: rank = position in the list.
  const n = merges.length;
  const mergeLeft = new Int32Array(n), mergeRight = new Int32Array(n), mergeResult = new Int32Array(n);
  const mergePriority = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const m = merges[i];
    let a: string, b: string;
    if (Array.isArray(m) && m.length === 2 && typeof m[0] === 'string' && typeof m[1] === 'string') { a = m[0]; b = m[1]; }
    else if (typeof m === 'string') {
      const sp = m.indexOf(' ');
      if (sp < 0) fail(`model.merges[${i}] ${JSON.stringify(m)} must be "left right"`);
      a = m.slice(0, sp); b = m.slice(sp + 1);
    } else fail(`model.merges[${i}] must be a [left, right] pair or a "left right" string`);
    const l = pieceIds.get(a), r = pieceIds.get(b), res = pieceIds.get(a + b);
    if (l === undefined) fail(`model.merges[${i}]: ${JSON.stringify(a)} is not in model.vocab`);
    if (r === undefined) fail(`model.merges[${i}]: ${JSON.stringify(b)} is not in model.vocab`);
    if (res === undefined) fail(`model.merges[${i}]: merged piece ${JSON.stringify(a + b)} is not in model.vocab`);
    mergeLeft[i] = l; mergeRight[i] = r; mergeResult[i] = res; mergePriority[i] = i;
  }

  if (byteIds !== null) {
    const missing = byteIds.indexOf(-1);
    if (missing >= 0) fail(`model.byte_fallback is true but <0x${missing.toString(16).toUpperCase().padStart(2, '0')}> is not in model.vocab`);
  }
  const unkPiece = model['unk_token'];
  const unkId = typeof unkPiece === 'string' ? pieceIds.get(unkPiece) ?? -1 : -1;

  const normalize: NormalizeStep[] = [];
  parseNormalizer(root['normalizer'], 'normalizer', normalize);
  const lookup = (p: string): number => pieceIds.get(p) ?? -1;
  return {
    pieces, special,
    rawTokens: added, normTokens: [],
    normalize, split: parsePreTokenizer(root['pre_tokenizer']),
    bpe: {
      vocabSize: pieces.length, charIds, mergeLeft, mergeRight, mergeResult, mergePriority,
      byteIds, unkId, fuseUnk: model['fuse_unk'] === true, unusedIds: null,
    },
    bosId: lookup('<bos>'), eosId: lookup('<eos>'), padId: lookup('<pad>'), unkId,
    decodeStripLeadingSpace: decoderStripsLeadingSpace(root['decoder']),
  };
}

// ---------------------------------------------------------------------------
// tokenizer.model (SentencePiece)

export function specFromSentencePiece(bytes: Uint8Array): TokenizerSpec {
  const model = parseSentencePieceModel(bytes);
  const { trainerSpec: ts, normalizerSpec: ns } = model;
  if (ts.modelType !== 2) {
    const names: Record<number, string> = { 1: 'UNIGRAM', 2: 'BPE', 3: 'WORD', 4: 'CHAR' };
    throw new Error(`tokenizer.model: model_type ${names[ts.modelType] ?? ts.modelType} is not supported (only BPE)`);
  }
  const n = model.pieces.length;
  const pieces = model.pieces.map((p) => p.piece);
  const special = new Uint8Array(n);
  const unused = new Uint8Array(n);
  // pieces_ in sentencepiece/src/model_interface.cc: NORMAL, USER_DEFINED and UNUSED take part in BPE.
  const mergeable = new Map<string, number>();
  const rawTokens: AddedTokenSpec[] = [];
  const normTokens: AddedTokenSpec[] = [];
  let byteIds: Int32Array | null = ts.byteFallback ? new Int32Array(256).fill(-1) : null;
  model.pieces.forEach((p, id) => {
    switch (p.type) {
      case PieceType.Normal: case PieceType.UserDefined: case PieceType.Unused:
        if (mergeable.has(p.piece)) throw new Error(`tokenizer.model: duplicate piece ${JSON.stringify(p.piece)} (ids ${mergeable.get(p.piece)} and ${id})`);
        mergeable.set(p.piece, id);
        if (p.type === PieceType.UserDefined) normTokens.push({ id, content: p.piece, special: false });
        if (p.type === PieceType.Unused) unused[id] = 1;
        break;
      case PieceType.Control: case PieceType.Unknown:
        special[id] = 1;
        rawTokens.push({ id, content: p.piece, special: true });
        break;
      case PieceType.Byte: {
        const m = BYTE_PIECE.exec(p.piece);
        if (byteIds && m) byteIds[parseInt(m[1]!, 16)] = id;
        break;
      }
    }
  });
  if (byteIds && byteIds.indexOf(-1) >= 0) byteIds = null;

  // SentencePiece BPE merges any adjacent pair whose concatenation is a piece,
  // best score first; precompute those pairs from the vocabulary.
  const ml: number[] = [], mr: number[] = [], mres: number[] = [], mpri: number[] = [];
  const charIds = new Map<number, number>();
  for (const [piece, id] of mergeable) {
    const cps = Array.from(piece);
    if (cps.length === 1) { charIds.set(piece.codePointAt(0)!, id); continue; }
    let off = 0;
    for (let k = 0; k < cps.length - 1; k++) {
      off += cps[k]!.length;
      const l = mergeable.get(piece.slice(0, off));
      const r = mergeable.get(piece.slice(off));
      if (l !== undefined && r !== undefined) {
        ml.push(l); mr.push(r); mres.push(id); mpri.push(-model.pieces[id]!.score);
      }
    }
  }

  const normalize: NormalizeStep[] = [];
  if (ns.name !== '' && ns.name !== 'identity' && ns.hasPrecompiledCharsmap) {
    // Approximation: SentencePiece's nmt_nfkc charsmap is NFKC plus a few control-character rules.
    normalize.push({ kind: 'unicode', form: 'NFKC' });
  }
  normalize.push({ kind: 'spm-whitespace', addDummyPrefix: ns.addDummyPrefix, removeExtra: ns.removeExtraWhitespaces, escape: ns.escapeWhitespaces });

  const idOr = (id: number): number => (id >= 0 && id < n ? id : -1);
  return {
    pieces, special, rawTokens, normTokens, normalize, split: null,
    bpe: {
      vocabSize: n, charIds,
      mergeLeft: Int32Array.from(ml), mergeRight: Int32Array.from(mr), mergeResult: Int32Array.from(mres),
      mergePriority: Float64Array.from(mpri),
      byteIds, unkId: idOr(ts.unkId), fuseUnk: true, unusedIds: unused,
    },
    bosId: idOr(ts.bosId), eosId: idOr(ts.eosId), padId: idOr(ts.padId), unkId: idOr(ts.unkId),
    decodeStripLeadingSpace: ns.addDummyPrefix,
  };
}

/**
 * Add tokens beyond (or re-flag tokens inside) the vocabulary, e.g. from
 * tokenizer_config.json's added_tokens_decoder. Gemma 3n's tokenizer.model has
 * 262144 pieces; the multimodal ids (<image_soft_token> 262145, <audio_soft_token> 262273, ...)
 * only exist as added tokens.
 */
export function addTokensToSpec(spec: TokenizerSpec, tokens: readonly AddedTokenSpec[]): TokenizerSpec {
  const pieces = spec.pieces.slice();
  const rawTokens = spec.rawTokens.slice();
  const known = new Set(rawTokens.map((t) => t.id));
  const normIds = new Set(spec.normTokens.map((t) => t.id));
  let maxId = pieces.length - 1;
  for (const t of tokens) maxId = Math.max(maxId, t.id);
  while (pieces.length <= maxId) pieces.push('');
  const special = new Uint8Array(pieces.length);
  special.set(spec.special);
  for (const t of tokens) {
    if (pieces[t.id] !== '' && pieces[t.id] !== t.content) {
      throw new Error(`added token ${JSON.stringify(t.content)}: id ${t.id} is already ${JSON.stringify(pieces[t.id])}`);
    }
    pieces[t.id] = t.content;
    if (t.special) special[t.id] = 1;
    if (!known.has(t.id) && (t.special || !normIds.has(t.id))) { rawTokens.push(t); known.add(t.id); }
  }
  return { ...spec, pieces, special, rawTokens, bpe: { ...spec.bpe, vocabSize: pieces.length } };
}
