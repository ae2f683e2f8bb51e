/**
 * The vocabulary as a byte trie laid out in pre-order, for computing token masks: node k has
 * byte `byte[k]` at depth `depth[k]` (1 = first byte of a token), its subtree is [k, end[k]),
 * and the tokens whose bytes end at k are `ids[tokStart[k] .. tokStart[k+1])`. A mask walk is
 * one forward scan that jumps to end[k] when a prefix is ruled out, so its cost is the number of
 * live prefixes, not the vocabulary size (262,144 pieces for Gemma 3n).
 *
 * Token bytes are held as "binary strings" (one char per byte, 0-255): they sort bytewise with
 * the native string sort, which keeps building the trie for 262k pieces fast.
 */
import type { GemmaTokenizer } from '../tokenizer/index.js';

const MAX_LEN = 255;

/**
 * Tokens made only of "plain" string characters (no '"', '\\', control bytes; whole UTF-8
 * characters) never interact with anything but the string they are in. For a state inside an
 * unconstrained string or a free key, every such token fits if the string has room for it, so
 * those masks are a precomputed bitmap plus a scan of the much smaller trie of the other tokens.
 */
export interface PlainTokens {
  /** The trie of tokens that are not plain. */
  rest: TokenTrie;
  /** bitmap of plain tokens of at most k characters (k = index; the last one: all plain tokens). */
  byChars: Uint32Array[];
  /** The same by bytes (free keys are bounded in bytes). */
  byBytes: Uint32Array[];
}

export class TokenTrie {
  private readonly cache: (Uint8Array | undefined)[];
  private plainCache: PlainTokens | null = null;

  constructor(
    /** Logit rows (ids at or above the strings' length have no bytes and are never allowed). */
    readonly vocabSize: number,
    readonly byte: Uint8Array,
    readonly depth: Uint8Array,
    readonly end: Int32Array,
    readonly tokStart: Int32Array,
    readonly ids: Int32Array,
    /** Each id's bytes as a binary string (null: special, or no text). */
    private readonly strings: readonly (string | null)[],
  ) {
    this.cache = new Array(strings.length);
  }

  get nodeCount(): number {
    return this.byte.length;
  }

  /** The bytes token `id` adds to the text (null: it never continues a constrained value). */
  bytesOf(id: number): Uint8Array | null {
    let b = this.cache[id];
    if (b === undefined) {
      const s = this.strings[id];
      if (s === null || s === undefined) return null;
      b = new Uint8Array(s.length);
      for (let i = 0; i < s.length; i++) b[i] = s.charCodeAt(i);
      this.cache[id] = b;
    }
    return b;
  }

  /** The plain-token split of this vocabulary (built on first use). */
  plain(): PlainTokens {
    if (this.plainCache) return this.plainCache;
    const strings = this.strings;
    const words = (this.vocabSize + 31) >>> 5;
    const restStrings: (string | null)[] = new Array(strings.length).fill(null);
    const chars = new Int32Array(strings.length).fill(-1);
    let maxChars = 0,
      maxBytes = 0;
    for (let id = 0; id < strings.length; id++) {
      const s = strings[id];
      if (!s) continue;
      const c = plainChars(s);
      if (c < 0) {
        restStrings[id] = s;
        continue;
      }
      chars[id] = c;
      if (c > maxChars) maxChars = c;
      if (s.length > maxBytes) maxBytes = s.length;
    }
    const buckets = (len: (id: number) => number, max: number): Uint32Array[] => {
      const out: Uint32Array[] = [];
      for (let k = 0; k <= max; k++) out.push(new Uint32Array(words));
      for (let id = 0; id < strings.length; id++) {
        if (chars[id] < 0) continue;
        const l = len(id);
        out[l][id >>> 5] |= 1 << (id & 31);
      }
      for (let k = 1; k <= max; k++) for (let w = 0; w < words; w++) out[k][w] |= out[k - 1][w];
      return out;
    };
    this.plainCache = {
      rest: TokenTrie.build(restStrings, this.vocabSize),
      byChars: buckets((id) => chars[id], maxChars),
      byBytes: buckets((id) => strings[id]!.length, maxBytes),
    };
    return this.plainCache;
  }

  /** Builds the trie from each id's bytes as a binary string (null = never allowed). */
  static build(strings: readonly (string | null)[], vocabSize = strings.length): TokenTrie {
    const order: number[] = [];
    for (let id = 0; id < strings.length; id++) {
      const s = strings[id];
      if (s && s.length <= MAX_LEN) order.push(id);
    }
    order.sort((a, b) => {
      const x = strings[a]!,
        y = strings[b]!;
      return x < y ? -1 : x > y ? 1 : a - b;
    });
    const n = order.length;
    const shared = new Int32Array(n);
    let nodes = 0;
    for (let i = 0; i < n; i++) {
      const s = strings[order[i]]!;
      shared[i] = i > 0 ? lcp(strings[order[i - 1]]!, s) : 0;
      nodes += s.length - shared[i];
    }
    const byte = new Uint8Array(nodes),
      depth = new Uint8Array(nodes),
      end = new Int32Array(nodes);
    const tokStart = new Int32Array(nodes + 1),
      ids = new Int32Array(n),
      counts = new Int32Array(nodes + 1);
    const open = new Int32Array(MAX_LEN + 1); // open[d-1] = node at depth d on the current path
    let top = 0,
      k = 0;
    for (let i = 0; i < n; i++) {
      const s = strings[order[i]]!;
      while (top > shared[i]) end[open[--top]] = k; // close nodes off the new path
      for (let d = shared[i]; d < s.length; d++) {
        byte[k] = s.charCodeAt(d);
        depth[k] = d + 1;
        open[top++] = k++;
      }
      // Token i ends at the path's node of depth |s| (equal strings share it); sorted tokens end
      // at non-decreasing nodes, so `ids` stays in node order.
      counts[open[s.length - 1]]++;
      ids[i] = order[i];
    }
    while (top > 0) end[open[--top]] = k;
    let acc = 0;
    for (let j = 0; j < nodes; j++) {
      tokStart[j] = acc;
      acc += counts[j];
    }
    tokStart[nodes] = acc;
    return new TokenTrie(vocabSize, byte, depth, end, tokStart, ids, strings);
  }
}

/** Characters in a plain binary string (see PlainTokens), or -1 if it is not plain. */
function plainChars(s: string): number {
  let chars = 0;
  for (let i = 0; i < s.length; ) {
    const b = s.charCodeAt(i);
    if (b < 0x80) {
      if (b < 0x20 || b === 0x22 || b === 0x5c) return -1;
      i++;
    } else {
      const need = b >= 0xc2 && b <= 0xdf ? 1 : b >= 0xe0 && b <= 0xef ? 2 : b >= 0xf0 && b <= 0xf4 ? 3 : -1;
      if (need < 0 || i + need >= s.length) return -1; // not a lead byte, or the character is cut
      const c1 = s.charCodeAt(i + 1);
      const lo = b === 0xe0 ? 0xa0 : b === 0xf0 ? 0x90 : 0x80,
        hi = b === 0xed ? 0x9f : b === 0xf4 ? 0x8f : 0xbf;
      if (c1 < lo || c1 > hi) return -1;
      for (let j = 2; j <= need; j++) {
        const c = s.charCodeAt(i + j);
        if (c < 0x80 || c > 0xbf) return -1;
      }
      i += need + 1;
    }
    chars++;
  }
  return chars;
}

function lcp(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a.charCodeAt(i) === b.charCodeAt(i)) i++;
  return i;
}

/** UTF-8 bytes of a string as a binary string (encodeURIComponent does the encoding natively). */
function utf8Binary(s: string): string {
  try {
    return unescape(encodeURIComponent(s));
  } catch {
    return String.fromCharCode(...new TextEncoder().encode(s)); // lone surrogates: U+FFFD
  }
}

/** The bytes each id adds to decoded text, as the tokenizer's decoder writes them ('▁' → ' ', <0xXX> → byte). */
export function tokenizerBytes(tok: GemmaTokenizer, logitRows: number): (string | null)[] {
  const out: (string | null)[] = new Array(logitRows).fill(null);
  for (let id = 0; id < Math.min(logitRows, tok.vocabSize); id++) {
    if (tok.isSpecial(id)) continue;
    const piece = tok.idToPiece(id);
    if (piece === undefined || piece === '') continue;
    if (piece.length === 6 && piece.startsWith('<0x') && piece.endsWith('>')) {
      const v = parseInt(piece.slice(3, 5), 16);
      if (v >= 0 && /^[0-9A-Fa-f]{2}$/.test(piece.slice(3, 5))) {
        out[id] = String.fromCharCode(v);
        continue;
      }
    }
    out[id] = utf8Binary(piece.replaceAll('\u2581', ' '));
  }
  return out;
}

const cache = new WeakMap<GemmaTokenizer, Map<number, TokenTrie>>();

/** The token trie of a tokenizer (built once per tokenizer and logit count). */
export function tokenTrieFor(tok: GemmaTokenizer, logitRows: number): TokenTrie {
  let m = cache.get(tok);
  if (!m) {
    m = new Map();
    cache.set(tok, m);
  }
  let t = m.get(logitRows);
  if (!t) {
    t = TokenTrie.build(tokenizerBytes(tok, logitRows), logitRows);
    m.set(logitRows, t);
  }
  return t;
}
