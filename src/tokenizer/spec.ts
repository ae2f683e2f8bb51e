/**
 * TokenizerSpec: everything needed to build a GemmaTokenizer, independent of the file format it
 * came from (tokenizer.json: spec_from_tokenizer_json.ts; tokenizer.model:
 * spec_from_sentencepiece.ts), plus addTokensToSpec for tokenizer_config.json's added tokens.
 */
import type { BpeModelInit } from './bpe.js';

/** An added token (HF `added_tokens` / tokenizer_config `added_tokens_decoder`). */
export interface AddedTokenSpec {
  id: number;
  content: string;
  /** true: control token (parsed only with parseSpecial, dropped by skipSpecial). */
  special: boolean;
}

export type SplitBehavior = 'MergedWithPrevious' | 'MergedWithNext' | 'Isolated' | 'Removed';

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

/** A byte-fallback piece: <0x00> ... <0xFF>. */
export const BYTE_PIECE = /^<0x([0-9A-Fa-f]{2})>$/;

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
    if (!known.has(t.id) && (t.special || !normIds.has(t.id))) {
      rawTokens.push(t);
      known.add(t.id);
    }
  }
  return { ...spec, pieces, special, rawTokens, bpe: { ...spec.bpe, vocabSize: pieces.length } };
}
