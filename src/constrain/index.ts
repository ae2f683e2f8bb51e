/**
 * Constrained decoding: JSON Schema (or "any JSON object") → byte automaton → per-state token
 * masks over the vocabulary. `constraintFor` gives the generation loop a LogitsConstraint.
 */
import { JsonAutomaton, type AutomatonOptions } from './json_automaton.js';
import { compileJsonSchema, type CompileOptions } from './json_schema.js';
import { JsonConstraint, MaskCache } from './token_mask.js';
import type { TokenTrie } from './token_trie.js';

export { SchemaError, compileJsonSchema, MAX_DEPTH, type CompiledSchema, type GNode } from './json_schema.js';
export { JsonAutomaton, WS_INDENT, MAX_FREE_KEY, type AutomatonOptions } from './json_automaton.js';
export { JsonConstraint, MaskCache, type LogitsConstraint } from './token_mask.js';
export { TokenTrie, tokenTrieFor, tokenizerBytes } from './token_trie.js';
export { compileRegex, FORMAT_PATTERNS, RegexError } from './regex.js';

/** The `responseFormat` of a generation (OpenAI's response_format, camel-cased). */
export type ResponseFormat = { type: 'text' } | { type: 'json_object' } | { type: 'json_schema'; schema: unknown; name?: string; strict?: boolean };

/** A schema compiled once, with its masks per vocabulary. */
export class Grammar {
  private readonly caches = new WeakMap<TokenTrie, MaskCache>();

  constructor(readonly automaton: JsonAutomaton) {}

  masks(trie: TokenTrie): MaskCache {
    let c = this.caches.get(trie);
    if (!c) {
      c = new MaskCache(this.automaton, trie);
      this.caches.set(trie, c);
    }
    return c;
  }

  /** A fresh constraint for one generation (end tokens: EOS / <end_of_turn>). */
  constraint(trie: TokenTrie, endTokens: readonly number[]): JsonConstraint {
    return new JsonConstraint(this.masks(trie), endTokens);
  }
}

const ANY_OBJECT = { type: 'object' };
const GRAMMARS = new Map<string, Grammar>();
const MAX_GRAMMARS = 16;

/**
 * Compiles (or fetches from a small LRU cache) the grammar of a schema. Throws SchemaError for a
 * schema it cannot enforce.
 */
export function grammarFor(schema: unknown, opts: CompileOptions & AutomatonOptions = {}): Grammar {
  const key = JSON.stringify([schema, [...(opts.orderedPaths ?? [])], opts.allowText ?? false]);
  let g = GRAMMARS.get(key);
  if (g) {
    GRAMMARS.delete(key);
    GRAMMARS.set(key, g);
    return g;
  }
  g = new Grammar(new JsonAutomaton(compileJsonSchema(schema, opts), opts));
  if (GRAMMARS.size >= MAX_GRAMMARS) GRAMMARS.delete(GRAMMARS.keys().next().value!);
  GRAMMARS.set(key, g);
  return g;
}

/** The grammar of a response format (null for plain text). */
export function grammarForFormat(format: ResponseFormat): Grammar | null {
  if (format === null || typeof format !== 'object') throw new RangeError(`responseFormat must be an object like { type: 'json_schema', schema }`);
  switch (format.type) {
    case 'text':
      return null;
    case 'json_object':
      return grammarFor(ANY_OBJECT);
    case 'json_schema':
      if (format.schema === undefined) throw new RangeError(`responseFormat json_schema needs a schema`);
      return grammarFor(format.schema);
    default:
      throw new RangeError(`responseFormat.type must be 'text', 'json_object' or 'json_schema', got ${JSON.stringify((format as { type: unknown }).type)}`);
  }
}
