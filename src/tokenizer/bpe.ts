/**
 * Byte-pair-encoding core shared by the tokenizer.json (HF `tokenizers`) and
 * tokenizer.model (SentencePiece) loaders.
 *
 * A word is split into code points, each mapped to its single-character piece
 * (or -1 when the character is not in the vocabulary). Adjacent pairs that have
 * a merge rule go into a binary min-heap keyed by (priority, left position);
 * the best pair is merged, its neighbours are re-examined, and stale heap
 * entries are dropped lazily when popped. This is the algorithm of
 * sentencepiece/src/bpe_model.cc and huggingface/tokenizers `Word::merge_all`:
 *   - HF: priority = merge rank (line number in `merges`), ties -> leftmost.
 *   - SentencePiece: priority = -score of the merged piece, ties -> leftmost.
 * Symbols live in typed arrays as a doubly linked list, so a word costs no
 * per-character allocation.
 */

/** Open-addressing hash map from an (int32, int32) id pair to an int32 value. */
export class PairTable {
  private keysL: Int32Array;
  private keysR: Int32Array;
  private vals: Int32Array;
  private mask: number;
  size = 0;

  constructor(expected: number) {
    let cap = 16;
    while (cap < expected * 2) cap *= 2;
    this.keysL = new Int32Array(cap).fill(-1);
    this.keysR = new Int32Array(cap);
    this.vals = new Int32Array(cap);
    this.mask = cap - 1;
  }

  private slot(l: number, r: number): number {
    let h = Math.imul(l, 0x9e3779b1) ^ Math.imul(r + 0x7f4a7c15, 0x85ebca77);
    h ^= h >>> 15;
    return h & this.mask;
  }

  /** Insert if absent; returns false when the pair was already present (first insert wins). */
  setIfAbsent(l: number, r: number, v: number): boolean {
    if (this.size * 2 >= this.mask) this.grow();
    let s = this.slot(l, r);
    for (;;) {
      const kl = this.keysL[s]!;
      if (kl === -1) {
        this.keysL[s] = l;
        this.keysR[s] = r;
        this.vals[s] = v;
        this.size++;
        return true;
      }
      if (kl === l && this.keysR[s] === r) return false;
      s = (s + 1) & this.mask;
    }
  }

  /** Value for the pair, or -1. */
  get(l: number, r: number): number {
    let s = this.slot(l, r);
    const keysL = this.keysL;
    for (;;) {
      const kl = keysL[s]!;
      if (kl === -1) return -1;
      if (kl === l && this.keysR[s] === r) return this.vals[s]!;
      s = (s + 1) & this.mask;
    }
  }

  private grow(): void {
    const { keysL, keysR, vals } = this;
    const cap = keysL.length * 2;
    this.keysL = new Int32Array(cap).fill(-1);
    this.keysR = new Int32Array(cap);
    this.vals = new Int32Array(cap);
    this.mask = cap - 1;
    this.size = 0;
    for (let i = 0; i < keysL.length; i++) if (keysL[i] !== -1) this.setIfAbsent(keysL[i]!, keysR[i]!, vals[i]!);
  }
}

export interface BpeModelInit {
  /** Number of ids (vocabulary size including added tokens). */
  vocabSize: number;
  /** Map from single code point to its piece id, for every piece that may start a word. */
  charIds: Map<number, number>;
  /** Merge rules: left id, right id, resulting id, priority (lower merges first). */
  mergeLeft: Int32Array;
  mergeRight: Int32Array;
  mergeResult: Int32Array;
  mergePriority: Float64Array;
  /** id of <0x00>..<0xFF> when byte fallback is enabled, else null. */
  byteIds: Int32Array | null;
  unkId: number;
  /** Collapse runs of unknown characters into one <unk> (HF `fuse_unk`; SentencePiece always does). */
  fuseUnk: boolean;
  /** Pieces of type UNUSED are re-split into the pair that made them (SentencePiece resegment). */
  unusedIds: Uint8Array | null;
}

export class BpeModel {
  private readonly bmpCharIds: Int32Array;
  private readonly astralCharIds: Map<number, number>;
  private readonly pairs: PairTable;
  private readonly mergeResult: Int32Array;
  private readonly mergePriority: Float64Array;
  private readonly byteIds: Int32Array | null;
  private readonly unkId: number;
  private readonly fuseUnk: boolean;
  private readonly unusedIds: Uint8Array | null;

  // Scratch buffers reused across calls (encoding is synchronous).
  private cps = new Int32Array(256);
  private ids = new Int32Array(256);
  private next = new Int32Array(256);
  private prev = new Int32Array(256);
  // Candidate pool and heap of candidate indices.
  private cPri = new Float64Array(512);
  private cLeft = new Int32Array(512);
  private cRight = new Int32Array(512);
  private cLid = new Int32Array(512);
  private cRid = new Int32Array(512);
  private cMerge = new Int32Array(512);
  private heap = new Int32Array(512);
  private nCand = 0;
  private heapSize = 0;
  private readonly utf8Buf = new Uint8Array(4);

  constructor(init: BpeModelInit) {
    this.bmpCharIds = new Int32Array(0x10000).fill(-1);
    this.astralCharIds = new Map();
    for (const [cp, id] of init.charIds) {
      if (cp < 0x10000) this.bmpCharIds[cp] = id;
      else this.astralCharIds.set(cp, id);
    }
    const n = init.mergeLeft.length;
    this.pairs = new PairTable(n);
    // A repeated pair keeps its last rule, as HF tokenizers and transformers.js do (map built in order).
    for (let i = n - 1; i >= 0; i--) this.pairs.setIfAbsent(init.mergeLeft[i]!, init.mergeRight[i]!, i);
    this.mergeResult = init.mergeResult;
    this.mergePriority = init.mergePriority;
    this.byteIds = init.byteIds;
    this.unkId = init.unkId;
    this.fuseUnk = init.fuseUnk;
    this.unusedIds = init.unusedIds;
  }

  /** Id of the merge rule for (left, right), or -1. */
  mergeFor(left: number, right: number): number {
    return this.pairs.get(left, right);
  }

  private ensureSymbols(n: number): void {
    if (this.cps.length >= n) return;
    let cap = this.cps.length;
    while (cap < n) cap *= 2;
    this.cps = new Int32Array(cap);
    this.ids = new Int32Array(cap);
    this.next = new Int32Array(cap);
    this.prev = new Int32Array(cap);
  }

  private growCandidates(): void {
    const cap = this.cPri.length * 2;
    const g32 = (a: Int32Array): Int32Array<ArrayBuffer> => {
      const b = new Int32Array(cap);
      b.set(a);
      return b;
    };
    const f = new Float64Array(cap);
    f.set(this.cPri);
    this.cPri = f;
    this.cLeft = g32(this.cLeft);
    this.cRight = g32(this.cRight);
    this.cLid = g32(this.cLid);
    this.cRid = g32(this.cRid);
    this.cMerge = g32(this.cMerge);
    this.heap = g32(this.heap);
  }

  /** (priority, left position) ordering: true when candidate a should merge before b. */
  private before(a: number, b: number): boolean {
    const pa = this.cPri[a]!,
      pb = this.cPri[b]!;
    return pa < pb || (pa === pb && this.cLeft[a]! < this.cLeft[b]!);
  }

  private push(left: number, right: number): void {
    const lid = this.ids[left]!,
      rid = this.ids[right]!;
    if (lid < 0 || rid < 0) return;
    const m = this.pairs.get(lid, rid);
    if (m < 0) return;
    if (this.nCand >= this.cPri.length) this.growCandidates();
    const c = this.nCand++;
    this.cPri[c] = this.mergePriority[m]!;
    this.cLeft[c] = left;
    this.cRight[c] = right;
    this.cLid[c] = lid;
    this.cRid[c] = rid;
    this.cMerge[c] = m;
    // sift up
    const heap = this.heap;
    let i = this.heapSize++;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.before(c, heap[p]!)) break;
      heap[i] = heap[p]!;
      i = p;
    }
    heap[i] = c;
  }

  private pop(): number {
    const heap = this.heap;
    const top = heap[0]!;
    const last = heap[--this.heapSize]!;
    const n = this.heapSize;
    let i = 0;
    for (;;) {
      let child = 2 * i + 1;
      if (child >= n) break;
      if (child + 1 < n && this.before(heap[child + 1]!, heap[child]!)) child++;
      if (!this.before(heap[child]!, last)) break;
      heap[i] = heap[child]!;
      i = child;
    }
    heap[i] = last;
    return top;
  }

  /**
   * Encode `text.slice(start, end)` as one BPE word and append ids to `out`.
   * The word must already be normalized (e.g. spaces replaced by '▁').
   */
  encodeWord(text: string, start: number, end: number, out: number[]): void {
    this.ensureSymbols(end - start);
    const { cps, ids, next, prev, bmpCharIds } = this;
    let n = 0;
    for (let i = start; i < end; n++) {
      const cp = text.codePointAt(i)!;
      cps[n] = cp;
      if (cp < 0x10000) {
        ids[n] = bmpCharIds[cp]!;
        i++;
      } else {
        ids[n] = this.astralCharIds.get(cp) ?? -1;
        i += 2;
      }
      prev[n] = n - 1;
      next[n] = n + 1;
    }
    if (n === 0) return;
    next[n - 1] = -1;

    this.nCand = 0;
    this.heapSize = 0;
    for (let i = 0; i + 1 < n; i++) this.push(i, i + 1);

    let rev: Map<number, number> | null = null;
    const unused = this.unusedIds;
    while (this.heapSize > 0) {
      const c = this.pop();
      const left = this.cLeft[c]!,
        right = this.cRight[c]!;
      // Stale if either side changed since the candidate was queued.
      if (next[left] !== right || ids[left] !== this.cLid[c] || ids[right] !== this.cRid[c]) continue;
      const merged = this.mergeResult[this.cMerge[c]!]!;
      if (unused !== null && unused[merged] === 1) {
        (rev ??= new Map()).set(merged, ids[left]! * 0x100000 + ids[right]!);
      }
      ids[left] = merged;
      ids[right] = -2; // dead
      const nr = next[right]!;
      next[left] = nr;
      if (nr !== -1) prev[nr] = left;
      if (prev[left] !== -1) this.push(prev[left]!, left);
      if (nr !== -1) this.push(left, nr);
    }

    let lastUnk = false;
    for (let i = 0; i !== -1; i = next[i]!) {
      const id = ids[i]!;
      if (id >= 0) {
        lastUnk = false;
        if (rev?.has(id)) this.resegment(id, rev, out);
        else out.push(id);
        continue;
      }
      // Unknown character: byte fallback, else <unk>.
      if (this.byteIds !== null) {
        const nb = encodeUtf8CodePoint(cps[i]!, this.utf8Buf);
        for (let b = 0; b < nb; b++) out.push(this.byteIds[this.utf8Buf[b]!]!);
      } else if (!(this.fuseUnk && lastUnk)) {
        out.push(this.unkId);
        lastUnk = true;
      }
    }
  }

  private resegment(id: number, rev: Map<number, number>, out: number[]): void {
    const packed = rev.get(id);
    if (packed === undefined) {
      out.push(id);
      return;
    }
    this.resegment(Math.floor(packed / 0x100000), rev, out);
    this.resegment(packed % 0x100000, rev, out);
  }
}

/** Write the UTF-8 encoding of a code point into buf; returns the byte count. */
export function encodeUtf8CodePoint(cp: number, buf: Uint8Array): number {
  if (cp < 0x80) {
    buf[0] = cp;
    return 1;
  }
  if (cp < 0x800) {
    buf[0] = 0xc0 | (cp >> 6);
    buf[1] = 0x80 | (cp & 63);
    return 2;
  }
  if (cp < 0x10000) {
    buf[0] = 0xe0 | (cp >> 12);
    buf[1] = 0x80 | ((cp >> 6) & 63);
    buf[2] = 0x80 | (cp & 63);
    return 3;
  }
  buf[0] = 0xf0 | (cp >> 18);
  buf[1] = 0x80 | ((cp >> 12) & 63);
  buf[2] = 0x80 | ((cp >> 6) & 63);
  buf[3] = 0x80 | (cp & 63);
  return 4;
}
