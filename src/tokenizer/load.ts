/**
 * Build a tokenizer from the files a model folder ships. Reading the files is
 * the caller's job (this module stays runtime neutral): pass their contents.
 */
import { addTokensToSpec, type AddedTokenSpec } from './spec.js';
import { specFromSentencePiece } from './spec_from_sentencepiece.js';
import { GemmaTokenizer } from './tokenizer.js';

export interface TokenizerFiles {
  /** tokenizer.json text or parsed object (preferred when present). */
  tokenizerJson?: string | object;
  /** tokenizer.model bytes (SentencePiece), used when there is no tokenizer.json. */
  tokenizerModel?: Uint8Array;
  /** tokenizer_config.json text or object: its added_tokens_decoder extends a tokenizer.model vocabulary. */
  tokenizerConfig?: string | object;
}

function parseConfig(cfg: string | object): Record<string, unknown> {
  let v: unknown = cfg;
  if (typeof cfg === 'string') {
    try {
      v = JSON.parse(cfg);
    } catch (e) {
      throw new Error(`tokenizer_config.json: not valid JSON (${(e as Error).message})`);
    }
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('tokenizer_config.json: top level must be a JSON object');
  return v as Record<string, unknown>;
}

/** added_tokens_decoder: { "262145": { "content": "<image_soft_token>", "special": true }, ... } */
function configAddedTokens(cfg: Record<string, unknown>): AddedTokenSpec[] {
  const dec = cfg['added_tokens_decoder'];
  if (dec === undefined || dec === null) return [];
  if (typeof dec !== 'object' || Array.isArray(dec)) throw new Error('tokenizer_config.json: added_tokens_decoder must be an object');
  const out: AddedTokenSpec[] = [];
  for (const [key, value] of Object.entries(dec as Record<string, unknown>)) {
    const id = Number(key);
    if (!Number.isInteger(id) || id < 0) throw new Error(`tokenizer_config.json: added_tokens_decoder key ${JSON.stringify(key)} is not a token id`);
    const v = value as Record<string, unknown> | null;
    if (typeof v !== 'object' || v === null || typeof v['content'] !== 'string') {
      throw new Error(`tokenizer_config.json: added_tokens_decoder[${key}].content must be a string`);
    }
    out.push({ id, content: v['content'], special: v['special'] === true });
  }
  return out;
}

/** Pick tokenizer.json when given, else tokenizer.model (+ tokenizer_config added tokens). */
export function loadTokenizerFromFiles(files: TokenizerFiles): GemmaTokenizer {
  if (files.tokenizerJson !== undefined) return GemmaTokenizer.fromTokenizerJson(files.tokenizerJson);
  if (files.tokenizerModel !== undefined) {
    let spec = specFromSentencePiece(files.tokenizerModel);
    if (files.tokenizerConfig !== undefined) {
      const added = configAddedTokens(parseConfig(files.tokenizerConfig));
      if (added.length > 0) spec = addTokensToSpec(spec, added);
    }
    return new GemmaTokenizer(spec);
  }
  throw new Error('loadTokenizerFromFiles: need tokenizerJson or tokenizerModel');
}

/** The chat template text a tokenizer_config.json carries, if any (string form only). */
export function chatTemplateFromConfig(cfg: string | object): string | undefined {
  const t = parseConfig(cfg)['chat_template'];
  if (typeof t === 'string') return t;
  if (Array.isArray(t)) {
    const def = t.find((x: unknown) => typeof x === 'object' && x !== null && (x as Record<string, unknown>)['name'] === 'default');
    const tpl = (def as Record<string, unknown> | undefined)?.['template'];
    if (typeof tpl === 'string') return tpl;
  }
  return undefined;
}
