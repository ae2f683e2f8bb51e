/**
 * The byte-level automaton that decides which bytes keep the output a valid prefix of a JSON
 * document for a compiled schema (json_schema.ts).
 *
 * A thread is a stack of frames (one per open container / value being written), immutable and
 * shared between threads; `anyOf` forks threads, which die when a byte rules them out. The set
 * of live threads is the automaton state: sets are interned into integer ids, and transitions
 * (id, byte) → id are memoized, so walking the vocabulary's token trie (token_mask.ts) is mostly
 * array lookups. Every live state can still be completed (the grammar only offers a choice that
 * can finish: required properties, minItems, number ranges, pattern liveness and the nesting
 * budget are all checked before a byte is accepted), so a mask never leads into a dead end.
 *
 * Whitespace between tokens is bounded (see wsNext; none before the top value), so a schema whose strings, arrays and objects are bounded always finishes.
 */
import {
  LiteralTrie,
  MAX_DEPTH,
  MAX_FRAC_DIGITS,
  MAX_INT_DIGITS,
  NameTrie,
  numberComplete,
  numberFeasible,
  type CompiledSchema,
  type GNode,
} from './json_schema.js';
import { PRINT_HI, PRINT_LO } from './regex.js';

/**
 * Whitespace between two JSON tokens: nothing, one space, or a newline and up to WS_INDENT
 * spaces/tabs (as llama.cpp's JSON grammars), so pretty-printing works and runs stay bounded.
 * A frame's `ws` field: 0 = none yet, 1 = one space (no more), 2 + k = newline and k indent.
 */
export const WS_INDENT = 20;

/** The ws field after byte b, or -1 if b may not extend the whitespace. */
function wsNext(ws: number, b: number): number {
  if (ws === 0) return b === 0x20 ? 1 : b === 0x0a ? 2 : -1;
  if (ws >= 2 && ws - 2 < WS_INDENT && (b === 0x20 || b === 0x09)) return ws + 1;
  return -1;
}
/** Longest key (in bytes) outside the declared properties. */
export const MAX_FREE_KEY = 64;
/** Most threads (readings of an ambiguous anyOf) alive at once. */
const MAX_THREADS = 512;
/** Interned states before the tables are dropped and rebuilt (bounds memory: ~1 KB each). */
const MAX_STATES = 20_000;

type ObjNode = Extract<GNode, { t: 'obj' }>;
type ArrNode = Extract<GNode, { t: 'arr' }>;
type StrNode = Extract<GNode, { t: 'str' }>;
type NumNode = Extract<GNode, { t: 'num' }>;
type LitNode = Extract<GNode, { t: 'lit' }>;

const enum Ph {
  Open,
  Key,
  Colon,
  Value,
  After,
  Comma,
}

type Frame =
  | { k: 'root'; node: GNode; done: boolean; key: string }
  | { k: 'free'; first: boolean; key: string }
  | {
      k: 'obj';
      node: ObjNode;
      depth: number;
      ph: Ph;
      seen: string;
      ws: number;
      trie: number;
      free: number;
      u8: number;
      lo: number;
      cur: number;
      next: number;
      key: string;
    }
  | { k: 'arr'; node: ArrNode; depth: number; ph: Ph; count: number; ws: number; key: string }
  | { k: 'str'; node: StrNode; count: number; esc: number; hex: number; u8: number; lo: number; hi: number; re: readonly number[] | null; key: string }
  | { k: 'num'; node: NumNode; text: string; key: string }
  | { k: 'lit'; node: LitNode; pos: number; key: string };

export interface Thread {
  readonly frame: Frame;
  readonly parent: Thread | null;
  readonly key: string;
}

const push = (parent: Thread | null, frame: Frame): Thread => ({ frame, parent, key: parent ? `${parent.key}|${frame.key}` : frame.key });

const isDigit = (b: number) => b >= 0x30 && b <= 0x39;
const isHex = (b: number) => isDigit(b) || (b >= 0x41 && b <= 0x46) || (b >= 0x61 && b <= 0x66);
const Q = 0x22,
  BS = 0x5c;

/** UTF-8 lead byte → [continuation bytes, first continuation lo, hi] (RFC 3629: no overlongs, no surrogates). */
function utf8Lead(b: number): [number, number, number] | null {
  if (b >= 0xc2 && b <= 0xdf) return [1, 0x80, 0xbf];
  if (b === 0xe0) return [2, 0xa0, 0xbf];
  if ((b >= 0xe1 && b <= 0xec) || b === 0xee || b === 0xef) return [2, 0x80, 0xbf];
  if (b === 0xed) return [2, 0x80, 0x9f];
  if (b === 0xf0) return [3, 0x90, 0xbf];
  if (b >= 0xf1 && b <= 0xf3) return [3, 0x80, 0xbf];
  if (b === 0xf4) return [3, 0x80, 0x8f];
  return null;
}

const ESCAPES: Record<number, number> = { 0x22: 0x22, 0x5c: 0x5c, 0x2f: 0x2f, 0x62: 8, 0x66: 12, 0x6e: 10, 0x72: 13, 0x74: 9 };

export interface AutomatonOptions {
  /**
   * Also accept free text that does not start with '{' or '[' (tool_choice "auto": the model
   * either answers in prose or writes a call, which is then held to the schema).
   */
  allowText?: boolean;
}

export class JsonAutomaton {
  private ids = new Map<string, number>();
  private sets: Thread[][] = [];
  private trans: Int32Array[] = [];
  private acc: Int8Array = new Int8Array(1024);
  /** Nodes for "any JSON value" containers, built once per automaton. */
  private readonly anyObj: ObjNode;
  private readonly anyArr: ArrNode;
  private readonly anyStr: StrNode;
  private readonly anyNum: NumNode;
  private readonly anyLit: Map<number, number>;
  private readonly anyLitNode: LitNode;
  /** Bumped whenever the tables are dropped (ids from an older epoch are invalid). */
  epoch = 0;

  constructor(
    readonly schema: CompiledSchema,
    readonly opts: AutomatonOptions = {},
  ) {
    let id = schema.nodeCount;
    const any: GNode = { t: 'any', id: id++, minDepth: 0 };
    this.anyObj = { t: 'obj', id: id++, props: [], additional: any, ordered: false, names: new NameTrie(), minDepth: 1 };
    this.anyArr = { t: 'arr', id: id++, items: any, min: 0, max: Infinity, minDepth: 1 };
    this.anyStr = { t: 'str', id: id++, min: 0, max: Infinity, re: null, minDepth: 0 };
    this.anyNum = { t: 'num', id: id++, integer: false, min: -Infinity, max: Infinity, exMin: false, exMax: false, minDepth: 0 };
    const lt = new LiteralTrie();
    for (const w of ['true', 'false', 'null']) lt.add(new TextEncoder().encode(w));
    this.anyLitNode = { t: 'lit', id: id++, trie: lt, minDepth: 0 };
    this.anyLit = new Map([
      [0x74, 0],
      [0x66, 0],
      [0x6e, 0],
    ]);
  }

  /** The initial threads. */
  startThreads(): Thread[] {
    const out = [push(null, { k: 'root', node: this.schema.root, done: false, key: `R${this.schema.root.id}` })];
    if (this.opts.allowText) out.push(push(null, { k: 'free', first: true, key: 'F1' }));
    return out;
  }

  /** Interns a thread set (deduplicated by key) as an id. */
  intern(threads: readonly Thread[]): number {
    const uniq = new Map<string, Thread>();
    for (const t of threads) uniq.set(t.key, t);
    if (uniq.size > MAX_THREADS)
      throw new RangeError(`constrained decoding: the schema is too ambiguous (more than ${MAX_THREADS} anyOf readings alive at once)`);
    const keys = [...uniq.keys()].sort();
    const key = keys.join('\n');
    let id = this.ids.get(key);
    if (id === undefined) {
      id = this.sets.length;
      this.ids.set(key, id);
      this.sets.push(keys.map((k) => uniq.get(k)!));
      const t = new Int32Array(256);
      t.fill(-2);
      this.trans.push(t);
      if (id >= this.acc.length) {
        const a = new Int8Array(this.acc.length * 2);
        a.set(this.acc);
        this.acc = a;
      }
      this.acc[id] = -1;
    }
    return id;
  }

  threadsOf(id: number): readonly Thread[] {
    return this.sets[id];
  }

  get stateCount(): number {
    return this.sets.length;
  }

  /** Drops every interned state when the table is large (call between masks, never during one). */
  maybeReset(): boolean {
    if (this.sets.length < MAX_STATES) return false;
    this.ids.clear();
    this.sets = [];
    this.trans = [];
    this.epoch++;
    return true;
  }

  /** The transition table of state `s` (entries: -2 unknown, -1 dead, else the next state). */
  table(s: number): Int32Array {
    return this.trans[s];
  }

  /** State after byte `b` from state `s` (-1 = the byte is not allowed). */
  next(s: number, b: number): number {
    const t = this.trans[s];
    let v = t[b];
    if (v !== -2) return v;
    const out: Thread[] = [];
    for (const th of this.sets[s]) this.step(th, b, out);
    v = out.length === 0 ? -1 : this.intern(out);
    this.trans[s][b] = v; // (intern may have grown the tables; s's row is unchanged)
    return v;
  }

  /**
   * When state `s` is one thread inside an unconstrained string (room in characters) or a free
   * key (room in bytes), the room left; plain tokens (token_trie.ts) then need no scan.
   */
  plainRoom(s: number): { unit: 'chars' | 'bytes'; room: number } | null {
    const set = this.sets[s];
    if (set.length !== 1) return null;
    const f = set[0].frame;
    if (f.k === 'str' && !f.re && f.esc === 0 && f.u8 === 0) return { unit: 'chars', room: f.node.max - f.count };
    if (f.k === 'obj' && f.ph === Ph.Key && f.trie < 0 && f.free >= 0 && f.u8 === 0) return { unit: 'bytes', room: MAX_FREE_KEY - f.free };
    return null;
  }

  /** Whether the output may end in state `s` (EOS allowed). */
  accepting(s: number): boolean {
    let a = this.acc[s];
    if (a < 0) {
      a = this.sets[s].some((t) => this.threadAccepts(t)) ? 1 : 0;
      this.acc[s] = a;
    }
    return a === 1;
  }

  private threadAccepts(th: Thread): boolean {
    let t: Thread | null = th;
    while (t) {
      const f: Frame = t.frame;
      if (f.k === 'root') return f.done;
      if (f.k === 'free') return !f.first;
      if (f.k === 'num' && numberComplete(f.node, f.text)) {
        t = t.parent;
        continue;
      }
      if (f.k === 'lit' && f.node.trie.terminal[f.pos]) {
        t = t.parent;
        continue;
      }
      return false;
    }
    return false;
  }

  // ---- stepping one thread by one byte ---------------------------------------------------

  private step(th: Thread, b: number, out: Thread[]): void {
    const f = th.frame;
    switch (f.k) {
      case 'root':
        if (!f.done) this.startValue(f.node, push(th.parent, { ...f, done: true, key: `R${f.node.id}d` }), 0, b, out);
        return;
      case 'free':
        if (f.first && (b === 0x7b || b === 0x5b)) return; // '{' or '[' starts a call, held to the schema
        out.push(f.first ? push(th.parent, { k: 'free', first: false, key: 'F0' }) : th);
        return;
      case 'obj':
        return this.stepObj(th, f, b, out);
      case 'arr':
        return this.stepArr(th, f, b, out);
      case 'str':
        return this.stepStr(th, f, b, out);
      case 'num':
        return this.stepNum(th, f, b, out);
      case 'lit': {
        const c = f.node.trie.child(f.pos, b);
        if (c >= 0) {
          if (f.node.trie.terminal[c] && !f.node.trie.hasChildren(c)) out.push(th.parent!);
          else out.push(push(th.parent, { ...f, pos: c, key: `L${f.node.id}.${c}` }));
        }
        if (f.node.trie.terminal[f.pos]) this.step(th.parent!, b, out);
        return;
      }
    }
  }

  /** Starts a value of `node` with byte b under `parent` (already moved past this value). */
  private startValue(node: GNode, parent: Thread, depth: number, b: number, out: Thread[]): void {
    if (depth + node.minDepth > MAX_DEPTH) return;
    switch (node.t) {
      case 'ref':
        return this.startValue(node.target!, parent, depth, b, out);
      case 'or':
        for (const o of node.options) this.startValue(o, parent, depth, b, out);
        return;
      case 'any':
        if (b === 0x7b) return this.startValue(this.anyObj, parent, depth, b, out);
        if (b === 0x5b) return this.startValue(this.anyArr, parent, depth, b, out);
        if (b === Q) return this.startValue(this.anyStr, parent, depth, b, out);
        if (b === 0x2d || isDigit(b)) return this.startValue(this.anyNum, parent, depth, b, out);
        if (this.anyLit.has(b)) return this.startValue(this.anyLitNode, parent, depth, b, out);
        return;
      case 'obj':
        if (b === 0x7b) out.push(push(parent, this.objFrame(node, depth + 1, Ph.Open, '0'.repeat(node.props.length), 0, -1, -1, 0, 0, -1, 0)));
        return;
      case 'arr':
        if (b === 0x5b) out.push(push(parent, { k: 'arr', node, depth: depth + 1, ph: Ph.Open, count: 0, ws: 0, key: `A${node.id}.0.0.0.${depth + 1}` }));
        return;
      case 'str':
        if (b === Q) out.push(push(parent, this.strFrame(node, 0, 0, 0, 0, 0, 0, node.re ? node.re.start() : null)));
        return;
      case 'num':
        if ((b === 0x2d || isDigit(b)) && numberFeasible(node, String.fromCharCode(b))) {
          const text = String.fromCharCode(b);
          out.push(push(parent, { k: 'num', node, text, key: `N${node.id}.${text}` }));
        }
        return;
      case 'lit': {
        const c = node.trie.child(0, b);
        if (c < 0) return;
        if (node.trie.terminal[c] && !node.trie.hasChildren(c)) out.push(parent);
        else out.push(push(parent, { k: 'lit', node, pos: c, key: `L${node.id}.${c}` }));
        return;
      }
    }
  }

  private objFrame(
    node: ObjNode,
    depth: number,
    ph: Ph,
    seen: string,
    ws: number,
    trie: number,
    free: number,
    u8: number,
    lo: number,
    cur: number,
    next: number,
  ): Frame {
    return {
      k: 'obj',
      node,
      depth,
      ph,
      seen,
      ws,
      trie,
      free,
      u8,
      lo,
      cur,
      next,
      key: `O${node.id}.${depth}.${ph}.${seen}.${ws}.${trie}.${free}.${u8}.${lo}.${cur}.${next}`,
    };
  }

  private strFrame(node: StrNode, count: number, esc: number, hex: number, u8: number, lo: number, hi: number, re: readonly number[] | null): Frame {
    return { k: 'str', node, count, esc, hex, u8, lo, hi, re, key: `S${node.id}.${count}.${esc}.${hex}.${u8}.${lo}.${hi}.${re ? re.join(',') : ''}` };
  }

  // ---- objects ----

  /** Whether property p may be written next (unseen, fits the depth budget, order kept if ordered). */
  private propOk(f: Extract<Frame, { k: 'obj' }>, p: number): boolean {
    if (f.seen.charCodeAt(p) === 0x31) return false;
    const n = f.node;
    if (f.depth + n.props[p].node.minDepth > MAX_DEPTH) return false;
    if (n.ordered) {
      if (p < f.next) return false;
      for (let i = f.next; i < p; i++) if (n.props[i].required) return false;
    }
    return true;
  }

  private additionalOk(f: Extract<Frame, { k: 'obj' }>): boolean {
    const a = f.node.additional;
    return a !== null && f.depth + a.minDepth <= MAX_DEPTH;
  }

  private canAddKey(f: Extract<Frame, { k: 'obj' }>): boolean {
    if (this.additionalOk(f)) return true;
    for (let p = 0; p < f.node.props.length; p++) if (this.propOk(f, p)) return true;
    return false;
  }

  private requiredDone(f: Extract<Frame, { k: 'obj' }>): boolean {
    const props = f.node.props;
    for (let p = 0; p < props.length; p++) if (props[p].required && f.seen.charCodeAt(p) !== 0x31) return false;
    return true;
  }

  private stepObj(th: Thread, f: Extract<Frame, { k: 'obj' }>, b: number, out: Thread[]): void {
    const n = f.node;
    const again = (ph: Ph, ws: number, trie = -1, free = -1, u8 = 0, lo = 0, cur = f.cur, seen = f.seen, next = f.next) =>
      out.push(push(th.parent, this.objFrame(n, f.depth, ph, seen, ws, trie, free, u8, lo, cur, next)));
    const ws = f.ph !== Ph.Key ? wsNext(f.ws, b) : -1;
    const wsOk = ws >= 0;
    switch (f.ph) {
      case Ph.Open:
      case Ph.Comma:
        if (wsOk) return void again(f.ph, ws);
        if (b === Q && this.canAddKey(f)) return void again(Ph.Key, 0, 0, this.additionalOk(f) ? 0 : -1);
        if (b === 0x7d && f.ph === Ph.Open && this.requiredDone(f)) out.push(th.parent!);
        return;
      case Ph.Key: {
        if (b === Q) {
          if (f.u8 > 0) return;
          const p = f.trie >= 0 ? n.names.ends[f.trie] : -1;
          if (p >= 0) {
            if (this.propOk(f, p)) again(Ph.Colon, 0, -1, -1, 0, 0, p);
            return;
          }
          if (f.free >= 0) again(Ph.Colon, 0, -1, -1, 0, 0, -1);
          return;
        }
        // A declared name continues with b?
        const c = n.names.child(f.trie, b);
        let declOk = false;
        if (c >= 0)
          for (const p of n.names.below[c])
            if (this.propOk(f, p)) {
              declOk = true;
              break;
            }
        // Or a free key (additionalProperties): plain characters, no escapes, valid UTF-8.
        let free = -1,
          u8 = 0,
          lo = 0;
        if (f.free >= 0) {
          if (f.u8 > 0) {
            // lo packs the next continuation byte's range as (low << 8 | high).
            if (b >= f.lo >> 8 && b <= (f.lo & 0xff)) {
              free = f.free + 1;
              u8 = f.u8 - 1;
              lo = u8 > 0 ? 0x80bf : 0;
            }
          } else if (b >= 0x20 && b < 0x80 && b !== Q && b !== BS) {
            if (f.free + 1 <= MAX_FREE_KEY) free = f.free + 1;
          } else {
            const lead = utf8Lead(b);
            if (lead && f.free + 1 + lead[0] <= MAX_FREE_KEY) {
              free = f.free + 1;
              u8 = lead[0];
              lo = (lead[1] << 8) | lead[2];
            }
          }
        }
        if (!declOk && free < 0) return;
        again(Ph.Key, 0, c, free, u8, lo);
        return;
      }
      case Ph.Colon:
        if (wsOk) return void again(Ph.Colon, ws);
        if (b === 0x3a) again(Ph.Value, 0);
        return;
      case Ph.Value: {
        if (wsOk) return void again(Ph.Value, ws);
        const cur = f.cur;
        const node = cur >= 0 ? n.props[cur].node : n.additional!;
        const seen = cur >= 0 ? f.seen.slice(0, cur) + '1' + f.seen.slice(cur + 1) : f.seen;
        const after = push(th.parent, this.objFrame(n, f.depth, Ph.After, seen, 0, -1, -1, 0, 0, -1, cur >= 0 ? cur + 1 : f.next));
        this.startValue(node, after, f.depth, b, out);
        return;
      }
      case Ph.After:
        if (wsOk) return void again(Ph.After, ws);
        if (b === 0x2c && this.canAddKey(f)) return void again(Ph.Comma, 0);
        if (b === 0x7d && this.requiredDone(f)) out.push(th.parent!);
        return;
    }
  }

  // ---- arrays ----

  private stepArr(th: Thread, f: Extract<Frame, { k: 'arr' }>, b: number, out: Thread[]): void {
    const n = f.node;
    const again = (ph: Ph, ws: number, count = f.count) =>
      push(th.parent, { k: 'arr', node: n, depth: f.depth, ph, count, ws, key: `A${n.id}.${ph}.${count}.${ws}.${f.depth}` });
    const itemOk = f.count < n.max && f.depth + n.items.minDepth <= MAX_DEPTH;
    const ws = wsNext(f.ws, b);
    if (ws >= 0) {
      out.push(again(f.ph, ws));
      return;
    }
    switch (f.ph) {
      case Ph.Open:
        if (b === 0x5d && n.min === 0) {
          out.push(th.parent!);
          return;
        }
        if (itemOk) this.startValue(n.items, again(Ph.After, 0, f.count + 1), f.depth, b, out);
        return;
      case Ph.Comma:
        if (itemOk) this.startValue(n.items, again(Ph.After, 0, f.count + 1), f.depth, b, out);
        return;
      case Ph.After:
        if (b === 0x2c && itemOk) out.push(again(Ph.Comma, 0));
        else if (b === 0x5d && f.count >= n.min) out.push(th.parent!);
        return;
    }
  }

  // ---- strings ----

  private stepStr(th: Thread, f: Extract<Frame, { k: 'str' }>, b: number, out: Thread[]): void {
    const n = f.node;
    const to = (count: number, esc: number, hex: number, u8: number, lo: number, hi: number, re = f.re) =>
      out.push(push(th.parent, this.strFrame(n, count, esc, hex, u8, lo, hi, re)));
    if (f.re) {
      // Pattern strings: printable ASCII; '"' and '\' only as the escapes \" and \\.
      const nfa = n.re!;
      if (f.esc === 1) {
        if (b !== Q && b !== BS) return;
        const r = nfa.step(f.re, b);
        if (r.length) to(f.count + 1, 0, 0, 0, 0, 0, r);
        return;
      }
      if (b === Q) {
        if (nfa.accepts(f.re)) out.push(th.parent!);
        return;
      }
      if (b === BS) {
        if (nfa.step(f.re, Q).length || nfa.step(f.re, BS).length) to(f.count, 1, 0, 0, 0, 0);
        return;
      }
      if (b < PRINT_LO || b > PRINT_HI) return;
      const r = nfa.step(f.re, b);
      if (r.length) to(f.count + 1, 0, 0, 0, 0, 0, r);
      return;
    }
    if (f.u8 > 0) {
      if (b < f.lo || b > f.hi) return;
      to(f.count, 0, 0, f.u8 - 1, 0x80, 0xbf);
      return;
    }
    if (f.esc === 1) {
      if (b === 0x75) to(f.count, 2, 0, 0, 0, 0);
      else if (ESCAPES[b] !== undefined) to(f.count, 0, 0, 0, 0, 0);
      return;
    }
    if (f.esc >= 2) {
      if (!isHex(b)) return;
      const v = f.hex * 16 + parseInt(String.fromCharCode(b), 16);
      // No lone surrogates: \uD800-\uDFFF are refused at the second digit.
      if (f.esc === 3 && v >= 0xd8 && v <= 0xdf) return;
      to(f.count, f.esc === 5 ? 0 : f.esc + 1, f.esc === 5 ? 0 : v, 0, 0, 0);
      return;
    }
    if (b === Q) {
      if (f.count >= n.min) out.push(th.parent!);
      return;
    }
    if (f.count >= n.max) return;
    if (b === BS) {
      to(f.count + 1, 1, 0, 0, 0, 0);
      return;
    }
    if (b < 0x20) return;
    if (b < 0x80) {
      to(f.count + 1, 0, 0, 0, 0, 0);
      return;
    }
    const lead = utf8Lead(b);
    if (lead) to(f.count + 1, 0, 0, lead[0], lead[1], lead[2]);
  }

  // ---- numbers ----

  private stepNum(th: Thread, f: Extract<Frame, { k: 'num' }>, b: number, out: Thread[]): void {
    const n = f.node,
      t = f.text;
    if (isDigit(b) || b === 0x2e) {
      const body = t.startsWith('-') ? t.slice(1) : t;
      const dot = body.indexOf('.');
      let ok: boolean;
      if (b === 0x2e) ok = !n.integer && dot < 0 && body.length > 0;
      else if (dot >= 0) ok = body.length - dot - 1 < MAX_FRAC_DIGITS;
      else ok = body !== '0' && body.length < MAX_INT_DIGITS;
      const text = t + String.fromCharCode(b);
      if (ok && numberFeasible(n, text)) out.push(push(th.parent, { k: 'num', node: n, text, key: `N${n.id}.${text}` }));
    }
    if (numberComplete(n, t)) this.step(th.parent!, b, out);
  }
}
