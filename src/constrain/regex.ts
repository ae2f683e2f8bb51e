/**
 * A small regular-expression engine for JSON Schema `pattern` and `format` strings: the
 * ECMA-262 subset that schemas use in practice (literals, `.`, classes `[a-z0-9_]` / `[^...]`,
 * `\d \w \s \D \W \S`, groups `( )` `(?: )`, alternation, `* + ? {n} {n,} {n,m}`, anchors `^`/`$`
 * at the ends) compiled to a Thompson NFA over printable ASCII (0x20-0x7E). JSON Schema patterns
 * are unanchored searches, so a side without its anchor gets `.*`.
 *
 * Constrained strings stay in printable ASCII, so the NFA steps one byte at a time; anything
 * outside the subset is refused with the construct named.
 */

/** Characters a constrained pattern string may hold. */
export const PRINT_LO = 0x20,
  PRINT_HI = 0x7e;
const ALPHABET = PRINT_HI - PRINT_LO + 1;

/** A character set over printable ASCII (bit per character). */
type CharSet = Uint8Array;

interface NfaState {
  /** Character transition (null = none). */
  set: CharSet | null;
  next: number;
  /** Epsilon transitions. */
  eps: number[];
}

export class RegexError extends Error {}

/** A compiled pattern: `start()` gives the initial state set, `step` advances one character. */
export class Nfa {
  /** States from which the accept state is reachable (over printable ASCII). */
  private readonly live: Uint8Array;

  constructor(
    private readonly states: NfaState[],
    private readonly startState: number,
    private readonly accept: number,
  ) {
    // Backward reachability from accept.
    const n = states.length;
    const back: number[][] = Array.from({ length: n }, () => []);
    states.forEach((s, i) => {
      for (const e of s.eps) back[e].push(i);
      if (s.set?.some((x) => x === 1)) back[s.next].push(i);
    });
    this.live = new Uint8Array(n);
    const todo = [accept];
    this.live[accept] = 1;
    while (todo.length)
      for (const p of back[todo.pop()!])
        if (!this.live[p]) {
          this.live[p] = 1;
          todo.push(p);
        }
  }

  private closure(seeds: Iterable<number>): number[] {
    const seen = new Set<number>();
    const todo = [...seeds];
    while (todo.length) {
      const s = todo.pop()!;
      if (seen.has(s) || !this.live[s]) continue;
      seen.add(s);
      for (const e of this.states[s].eps) todo.push(e);
    }
    return [...seen].sort((a, b) => a - b);
  }

  /** Initial live state set (empty when nothing can match). */
  start(): number[] {
    return this.closure([this.startState]);
  }

  /** The live states after reading character code c (empty = no match possible). */
  step(set: readonly number[], c: number): number[] {
    if (c < PRINT_LO || c > PRINT_HI) return [];
    const next: number[] = [];
    for (const s of set) {
      const st = this.states[s];
      if (st.set?.[c - PRINT_LO]) next.push(st.next);
    }
    return next.length ? this.closure(next) : [];
  }

  accepts(set: readonly number[]): boolean {
    return set.includes(this.accept);
  }
}

const classOf = (pred: (c: number) => boolean): CharSet => {
  const s = new Uint8Array(ALPHABET);
  for (let c = PRINT_LO; c <= PRINT_HI; c++) if (pred(c)) s[c - PRINT_LO] = 1;
  return s;
};
const isDigit = (c: number) => c >= 48 && c <= 57;
const isWord = (c: number) => isDigit(c) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95;
const isSpace = (c: number) => c === 32; // the only printable whitespace

/** Largest repetition count accepted in `{n,m}` (each copy is NFA states). */
const MAX_REPEAT = 100;
/** Largest NFA. */
const MAX_STATES = 20_000;

/** Parses `source` (JSON Schema pattern syntax) into an NFA. Throws RegexError naming the construct. */
export function compileRegex(source: string): Nfa {
  const states: NfaState[] = [];
  const add = (): number => {
    if (states.length >= MAX_STATES) throw new RegexError(`pattern ${JSON.stringify(source)} is too large`);
    states.push({ set: null, next: -1, eps: [] });
    return states.length - 1;
  };
  interface Frag {
    start: number;
    end: number;
  }
  let pos = 0;
  let src = source;
  const fail = (what: string): never => {
    throw new RegexError(`pattern ${JSON.stringify(source)}: ${what} (at offset ${pos}) is not supported`);
  };

  // Parse tree first (so repetitions can copy sub-expressions), then build.
  type Ast = { k: 'set'; set: CharSet } | { k: 'cat'; items: Ast[] } | { k: 'alt'; items: Ast[] } | { k: 'rep'; item: Ast; min: number; max: number };

  const escapeClass = (c: string): CharSet | null => {
    switch (c) {
      case 'd':
        return classOf(isDigit);
      case 'D':
        return classOf((x) => !isDigit(x));
      case 'w':
        return classOf(isWord);
      case 'W':
        return classOf((x) => !isWord(x));
      case 's':
        return classOf(isSpace);
      case 'S':
        return classOf((x) => !isSpace(x));
      default:
        return null;
    }
  };
  const escapeChar = (c: string): number => {
    if ('\\/.^$*+?()[]{}|-'.includes(c)) return c.charCodeAt(0);
    if ('tnrfv0'.includes(c) || c === 'b' || c === 'B' || /[1-9]/.test(c)) fail(`escape \\${c}`);
    if (c === 'x' || c === 'u') fail(`escape \\${c}`);
    if (/[A-Za-z]/.test(c)) fail(`escape \\${c}`);
    return c.charCodeAt(0);
  };
  const literalChar = (code: number): number => {
    if (code < PRINT_LO || code > PRINT_HI) fail(`the non-printable or non-ASCII character U+${code.toString(16).padStart(4, '0')}`);
    return code;
  };

  const parseClass = (): CharSet => {
    // at '[' already consumed
    let negate = false;
    if (src[pos] === '^') {
      negate = true;
      pos++;
    }
    const set = new Uint8Array(ALPHABET);
    let first = true;
    while (pos < src.length && (src[pos] !== ']' || first)) {
      first = false;
      let lo: number;
      if (src[pos] === '\\') {
        pos++;
        const cls = escapeClass(src[pos] ?? '');
        if (cls) {
          pos++;
          for (let i = 0; i < ALPHABET; i++) set[i] |= cls[i];
          continue;
        }
        lo = escapeChar(src[pos++] ?? fail('a trailing backslash'));
      } else lo = literalChar(src.charCodeAt(pos++));
      let hi = lo;
      if (src[pos] === '-' && pos + 1 < src.length && src[pos + 1] !== ']') {
        pos++;
        if (src[pos] === '\\') {
          pos++;
          hi = escapeChar(src[pos++] ?? fail('a trailing backslash'));
        } else hi = literalChar(src.charCodeAt(pos++));
        if (hi < lo) fail('a reversed class range');
      }
      for (let c = lo; c <= hi; c++) if (c >= PRINT_LO && c <= PRINT_HI) set[c - PRINT_LO] = 1;
    }
    if (src[pos] !== ']') fail('an unterminated character class');
    pos++;
    if (negate) for (let i = 0; i < ALPHABET; i++) set[i] ^= 1;
    return set;
  };

  const parseAlt = (depth: number): Ast => {
    if (depth > 32) fail('nesting deeper than 32 groups');
    const items: Ast[] = [parseCat(depth)];
    while (src[pos] === '|') {
      pos++;
      items.push(parseCat(depth));
    }
    return items.length === 1 ? items[0] : { k: 'alt', items };
  };
  const parseCat = (depth: number): Ast => {
    const items: Ast[] = [];
    while (pos < src.length && src[pos] !== '|' && src[pos] !== ')') {
      let atom!: Ast;
      const c = src[pos];
      if (c === '(') {
        pos++;
        if (src[pos] === '?') {
          if (src[pos + 1] === ':') pos += 2;
          else fail('a lookaround or named group');
        }
        atom = parseAlt(depth + 1);
        if (src[pos] !== ')') fail('an unclosed group');
        pos++;
      } else if (c === '[') {
        pos++;
        atom = { k: 'set', set: parseClass() };
      } else if (c === '.') {
        pos++;
        atom = { k: 'set', set: classOf(() => true) };
      } else if (c === '\\') {
        pos++;
        const e = src[pos] ?? fail('a trailing backslash');
        const cls = escapeClass(e);
        pos++;
        atom = { k: 'set', set: cls ?? classOf((x) => x === escapeChar(e)) };
      } else if (c === '^' || c === '$') fail(`the anchor ${c} inside the pattern`);
      else if ('*+?{'.includes(c)) fail(`a quantifier with nothing to repeat`);
      else {
        pos++;
        const code = literalChar(c.charCodeAt(0));
        atom = { k: 'set', set: classOf((x) => x === code) };
      }
      // Quantifiers.
      for (;;) {
        const q = src[pos];
        let min: number, max: number;
        if (q === '*') {
          min = 0;
          max = Infinity;
          pos++;
        } else if (q === '+') {
          min = 1;
          max = Infinity;
          pos++;
        } else if (q === '?') {
          min = 0;
          max = 1;
          pos++;
        } else if (q === '{') {
          const m = /^\{(\d+)(,(\d*))?\}/.exec(src.slice(pos));
          if (!m) fail('a malformed {n,m} quantifier');
          min = Number(m![1]);
          max = m![2] === undefined ? min : m![3] === '' ? Infinity : Number(m![3]);
          if (min > MAX_REPEAT || (max !== Infinity && max > MAX_REPEAT)) fail(`a repetition count above ${MAX_REPEAT}`);
          if (max < min) fail('a {n,m} quantifier with m < n');
          pos += m![0].length;
        } else break;
        if (src[pos] === '?') pos++; // lazy: same language
        atom = { k: 'rep', item: atom, min, max };
      }
      items.push(atom);
    }
    return { k: 'cat', items };
  };

  const anchoredStart = source.startsWith('^');
  const anchoredEnd = source.endsWith('$') && !source.endsWith('\\$');
  src = source.slice(anchoredStart ? 1 : 0, anchoredEnd ? source.length - 1 : source.length);
  pos = 0;
  let ast = parseAlt(0);
  if (pos !== src.length) fail(src[pos] === ')' ? 'an unbalanced )' : 'this construct');
  const any: Ast = { k: 'rep', item: { k: 'set', set: classOf(() => true) }, min: 0, max: Infinity };
  if (!anchoredStart || !anchoredEnd) ast = { k: 'cat', items: [...(anchoredStart ? [] : [any]), ast, ...(anchoredEnd ? [] : [any])] };

  const build = (a: Ast): Frag => {
    switch (a.k) {
      case 'set': {
        const s = add(),
          e = add();
        states[s].set = a.set;
        states[s].next = e;
        return { start: s, end: e };
      }
      case 'cat': {
        if (a.items.length === 0) {
          const s = add();
          return { start: s, end: s };
        }
        const frags = a.items.map(build);
        for (let i = 0; i + 1 < frags.length; i++) states[frags[i].end].eps.push(frags[i + 1].start);
        return { start: frags[0].start, end: frags[frags.length - 1].end };
      }
      case 'alt': {
        const s = add(),
          e = add();
        for (const it of a.items) {
          const f = build(it);
          states[s].eps.push(f.start);
          states[f.end].eps.push(e);
        }
        return { start: s, end: e };
      }
      case 'rep': {
        const s = add();
        let cur = s;
        for (let i = 0; i < a.min; i++) {
          const f = build(a.item);
          states[cur].eps.push(f.start);
          cur = f.end;
        }
        if (a.max === Infinity) {
          const f = build(a.item);
          const e = add();
          states[cur].eps.push(f.start, e);
          states[f.end].eps.push(f.start, e);
          return { start: s, end: e };
        }
        const e = add();
        states[cur].eps.push(e);
        for (let i = a.min; i < a.max; i++) {
          const f = build(a.item);
          states[cur].eps.push(f.start);
          states[f.end].eps.push(e);
          cur = f.end;
        }
        return { start: s, end: e };
      }
    }
  };
  const frag = build(ast);
  return new Nfa(states, frag.start, frag.end);
}

/** `format` values the constraint can enforce, as patterns (a subset of each format's values). */
export const FORMAT_PATTERNS: Record<string, string> = {
  // RFC 3339 full-date. February stops at 28 so every generated date exists in every year.
  date: '^\\d{4}-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12]\\d|3[01])|(?:0[469]|11)-(?:0[1-9]|[12]\\d|30)|02-(?:0[1-9]|1\\d|2[0-8]))$',
  time: '^(?:[01]\\d|2[0-3]):[0-5]\\d:[0-5]\\d(?:\\.\\d{1,6})?(?:Z|[+-](?:[01]\\d|2[0-3]):[0-5]\\d)$',
  'date-time':
    '^\\d{4}-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12]\\d|3[01])|(?:0[469]|11)-(?:0[1-9]|[12]\\d|30)|02-(?:0[1-9]|1\\d|2[0-8]))T(?:[01]\\d|2[0-3]):[0-5]\\d:[0-5]\\d(?:\\.\\d{1,6})?(?:Z|[+-](?:[01]\\d|2[0-3]):[0-5]\\d)$',
  uuid: '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$',
};
