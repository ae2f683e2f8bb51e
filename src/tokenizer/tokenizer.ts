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
 *
 * This file is the runtime (encode, decode, streaming). The seams: literal_matcher.ts (step 2
 * and 4), spec.ts (what a tokenizer is built from), spec_from_tokenizer_json.ts (tokenizer.json
 * reader), spec_from_sentencepiece.ts (tokenizer.model builder), bpe.ts (step 5).
 */
import { BpeModel } from './bpe.js';
import { LiteralMatcher } from './literal_matcher.js';
import type { NormalizeStep, SplitBehavior, TokenizerSpec } from './spec.js';
import { specFromSentencePiece } from './spec_from_sentencepiece.js';
import { specFromTokenizerJson } from './spec_from_tokenizer_json.js';
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
  ['pad', '<pad>'],
  ['eos', '<eos>'],
  ['bos', '<bos>'],
  ['unk', '<unk>'],
  ['mask', '<mask>'],
  ['startOfTurn', '<start_of_turn>'],
  ['endOfTurn', '<end_of_turn>'],
  ['startOfImage', '<start_of_image>'],
  ['endOfImage', '<end_of_image>'],
  ['imageSoftToken', '<image_soft_token>'],
  ['startOfAudio', '<start_of_audio>'],
  ['endOfAudio', '<end_of_audio>'],
  ['audioSoftToken', '<audio_soft_token>'],
];

const SPACE_MARK = '\u2581'; // '▁'
const SPACE_MARK_CODE = 0x2581;
const WORD_CACHE_MAX = 1 << 16;
const WORD_CACHE_MAX_LEN = 64;

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
    if (split === null || s.indexOf(split.pattern) < 0) {
      this.encodeNormalized(s, out);
      return;
    }
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
    if (end - start > WORD_CACHE_MAX_LEN) {
      this.bpe.encodeWord(s, start, end, out);
      return;
    }
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
    case 'replace':
      return s.replaceAll(step.from, step.to);
    case 'prepend':
      return s.length > 0 ? step.text + s : s;
    case 'unicode':
      return s.normalize(step.form);
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
      case 'MergedWithPrevious':
        if (after > pos) out.push(s.slice(pos, after));
        pos = after;
        break;
      case 'MergedWithNext':
        if (i > pos) out.push(s.slice(pos, i));
        pos = i;
        break;
      case 'Isolated':
        if (i > pos) out.push(s.slice(pos, i));
        out.push(pattern);
        pos = after;
        break;
      case 'Removed':
        if (i > pos) out.push(s.slice(pos, i));
        pos = after;
        break;
    }
  }
  if (pos < s.length) out.push(s.slice(pos));
  return out;
}
