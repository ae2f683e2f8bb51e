/**
 * Token masks: which vocabulary tokens keep the output a valid prefix, per automaton state.
 *
 * A mask is one pre-order scan of the token trie (token_trie.ts) carrying the automaton state
 * per depth and skipping every subtree whose prefix the automaton rules out; masks are cached
 * per state, so the states a generation keeps returning to (inside a free string, between
 * tokens of an array) cost one lookup. A mask with few tokens is kept as a list of ids, a large
 * one as a bitmap.
 */
import type { JsonAutomaton, Thread } from './json_automaton.js';
import type { TokenTrie } from './token_trie.js';

/** What the generation loop needs from a constraint (src/engine/token_stream.ts). */
export interface LogitsConstraint {
  /** Sets the logits of every token that may not come next to -Infinity. */
  maskLogits(logits: Float32Array): void;
  /** Moves past the chosen token. */
  accept(token: number): void;
}

/** A cached mask: a sorted id list (sparse) or a bitmap over the vocabulary. */
type Mask = { ids: Int32Array; bits: null; count: number } | { ids: null; bits: Uint32Array; count: number };

const SPARSE_MAX = 4096;
/** Masks kept per grammar and vocabulary (a bitmap is 32 KB; most masks are short id lists). */
const MAX_CACHED_MASKS = 256;

/** Masks of one automaton over one vocabulary (shared by every generation with that schema). */
export class MaskCache {
  private masks = new Map<number, Mask>();
  private epoch = 0;
  private stack = new Int32Array(256);
  private scratch: Int32Array;
  /** Statistics: masks computed, cache hits, trie nodes visited, and time spent scanning. */
  readonly stats = { computed: 0, hits: 0, nodesVisited: 0, scanMs: 0 };

  constructor(
    readonly automaton: JsonAutomaton,
    readonly trie: TokenTrie,
  ) {
    this.scratch = new Int32Array(trie.ids.length);
  }

  get(state: number): Mask {
    if (this.automaton.epoch !== this.epoch) {
      this.masks.clear();
      this.epoch = this.automaton.epoch;
    }
    const m = this.masks.get(state);
    if (m) {
      this.stats.hits++;
      return m;
    }
    const t0 = now();
    const mask = this.compute(state);
    this.stats.scanMs += now() - t0;
    this.stats.computed++;
    if (this.masks.size >= MAX_CACHED_MASKS) this.masks.clear();
    this.masks.set(state, mask);
    return mask;
  }

  /** The mask of state `s0`: a scan of the whole trie, or plain tokens + a scan of the rest. */
  private compute(s0: number): Mask {
    const plain = this.automaton.plainRoom(s0);
    if (!plain) return this.pack(this.scan(this.trie, s0));
    const p = this.trie.plain();
    const buckets = plain.unit === 'chars' ? p.byChars : p.byBytes;
    const bits = buckets[Math.min(plain.room, buckets.length - 1)].slice();
    let count = 0;
    const n = this.scan(p.rest, s0);
    for (let i = 0; i < n; i++) bits[this.scratch[i] >>> 5] |= 1 << (this.scratch[i] & 31);
    for (let w = 0; w < bits.length; w++) count += popcount(bits[w]);
    return count <= SPARSE_MAX ? this.pack(unpack(bits, this.scratch)) : { ids: null, bits, count };
  }

  private pack(n: number): Mask {
    const out = this.scratch;
    if (n <= SPARSE_MAX) {
      const list = out.slice(0, n);
      list.sort();
      return { ids: list, bits: null, count: n };
    }
    const bits = new Uint32Array((this.trie.vocabSize + 31) >>> 5);
    for (let i = 0; i < n; i++) bits[out[i] >>> 5] |= 1 << (out[i] & 31);
    return { ids: null, bits, count: n };
  }

  /** One pre-order scan of `trie` from `s0`; the allowed ids go to scratch, their count is returned. */
  private scan(trie: TokenTrie, s0: number): number {
    const { byte, depth, end, tokStart, ids } = trie;
    const A = this.automaton;
    const st = this.stack;
    const out = this.scratch;
    st[0] = s0;
    let n = 0,
      visited = 0;
    const N = byte.length;
    for (let k = 0; k < N; ) {
      visited++;
      const d = depth[k];
      const ps = st[d - 1];
      let s = A.table(ps)[byte[k]];
      if (s === -2) s = A.next(ps, byte[k]);
      if (s < 0) {
        k = end[k];
        continue;
      }
      st[d] = s;
      for (let j = tokStart[k], e = tokStart[k + 1]; j < e; j++) out[n++] = ids[j];
      k++;
    }
    this.stats.nodesVisited += visited;
    return n;
  }
}

function popcount(x: number): number {
  x -= (x >>> 1) & 0x55555555;
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  return (((x + (x >>> 4)) & 0x0f0f0f0f) * 0x01010101) >>> 24;
}

/** Bitmap → ids in `out`; returns the count. */
function unpack(bits: Uint32Array, out: Int32Array): number {
  let n = 0;
  for (let w = 0; w < bits.length; w++) for (let x = bits[w]; x !== 0; x &= x - 1) out[n++] = (w << 5) + (31 - Math.clz32(x & -x));
  return n;
}

const now = (): number => (typeof performance !== 'undefined' ? performance.now() : Date.now());

/**
 * Holds a generation to an automaton: masks the logits before each sample, advances on the
 * token chosen. The end tokens (EOS, <end_of_turn>) are allowed exactly when the output so far
 * is complete.
 */
export class JsonConstraint implements LogitsConstraint {
  private threads: readonly Thread[];
  private state: number;
  private epoch: number;
  private readonly end: Set<number>;
  private saved = new Float32Array(0);
  /** Set once an end token was accepted. */
  finished = false;
  /** Time spent masking (scan + apply) in this generation, and the steps masked. */
  maskMs = 0;
  steps = 0;

  constructor(
    readonly cache: MaskCache,
    endTokens: readonly number[],
  ) {
    if (endTokens.length === 0) throw new Error('constrained decoding needs an end-of-sequence token id');
    this.end = new Set(endTokens);
    const A = cache.automaton;
    this.threads = A.startThreads();
    this.state = A.intern(this.threads);
    this.epoch = A.epoch;
  }

  private current(): number {
    const A = this.cache.automaton;
    if (A.maybeReset() || A.epoch !== this.epoch) {
      this.state = A.intern(this.threads);
      this.epoch = A.epoch;
    }
    return this.state;
  }

  /** Whether the output so far is a complete value (an end token may come next). */
  get complete(): boolean {
    return this.cache.automaton.accepting(this.current());
  }

  maskLogits(logits: Float32Array): void {
    const t0 = now();
    const s = this.current();
    const mask = this.cache.get(s);
    const accepting = this.cache.automaton.accepting(s);
    if (mask.count === 0 && !accepting) throw new Error('constrained decoding reached a state no token can continue (a bug: please report the schema)');
    const V = logits.length;
    if (mask.ids) {
      const ids = mask.ids;
      if (this.saved.length < ids.length + this.end.size) this.saved = new Float32Array(ids.length + this.end.size + 64);
      for (let i = 0; i < ids.length; i++) this.saved[i] = logits[ids[i]];
      let e = 0;
      const endIds = [...this.end];
      for (const id of endIds) this.saved[ids.length + e++] = id < V ? logits[id] : -Infinity;
      logits.fill(-Infinity);
      for (let i = 0; i < ids.length; i++) if (ids[i] < V) logits[ids[i]] = this.saved[i];
      if (accepting)
        endIds.forEach((id, j) => {
          if (id < V) logits[id] = this.saved[ids.length + j];
        });
    } else {
      const bits = mask.bits;
      const endVals = [...this.end].map((id) => [id, logits[id]] as const);
      for (let w = 0; w < bits.length; w++) {
        const word = bits[w];
        if (word === -1 >>> 0) continue;
        const base = w << 5;
        for (let j = 0; j < 32 && base + j < V; j++) if (!(word & (1 << j))) logits[base + j] = -Infinity;
      }
      for (let i = bits.length << 5; i < V; i++) logits[i] = -Infinity;
      for (const [id, v] of endVals) if (id < V) logits[id] = accepting ? v : -Infinity;
    }
    this.maskMs += now() - t0;
    this.steps++;
  }

  accept(token: number): void {
    if (this.end.has(token)) {
      if (!this.complete) throw new Error(`constrained decoding: end token ${token} before the value is complete`);
      this.finished = true;
      return;
    }
    const bytes = this.cache.trie.bytesOf(token);
    if (!bytes) throw new Error(`constrained decoding: token ${token} has no text and cannot continue the value`);
    const A = this.cache.automaton;
    let s = this.current();
    for (const b of bytes) {
      s = A.next(s, b);
      if (s < 0) throw new Error(`constrained decoding: token ${token} is not allowed here`);
    }
    this.state = s;
    this.threads = A.threadsOf(s);
  }

  /** Feeds text directly (tests, forced prefixes); returns false (state unchanged) if not allowed. */
  acceptText(text: string): boolean {
    const A = this.cache.automaton;
    let s = this.current();
    for (const b of new TextEncoder().encode(text)) {
      s = A.next(s, b);
      if (s < 0) return false;
    }
    this.state = s;
    this.threads = A.threadsOf(s);
    return true;
  }
}
