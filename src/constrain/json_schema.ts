/**
 * JSON Schema → grammar nodes for the byte automaton (json_automaton.ts).
 *
 * Supported: the subset OpenAI's strict mode accepts and a little more — type (one or a list),
 * object (properties, required, additionalProperties false / true / a schema), array (items,
 * minItems, maxItems), string (minLength, maxLength, pattern, format date / time / date-time /
 * uuid), integer and number (minimum, maximum, exclusiveMinimum, exclusiveMaximum), boolean,
 * null, enum, const, anyOf, $ref into $defs / definitions / any local JSON pointer (recursion
 * included), and annotations (title, description, default, examples, ...), which are ignored.
 * Any other keyword is refused with a SchemaError naming it and where it is: a schema the
 * engine cannot enforce never yields a silently unconstrained answer.
 *
 * Generation choices (each output is valid for the schema; not every valid document is reachable):
 * - objects without additionalProperties get only their declared properties, in any order;
 * - numbers have no exponent, at most 15 integer and 15 fraction digits;
 * - keys outside `properties` (additionalProperties) hold no escapes and at most 64 bytes;
 * - containers nest at most MAX_DEPTH deep.
 */
import { compileRegex, FORMAT_PATTERNS, RegexError, type Nfa } from './regex.js';

/** Deepest container nesting generated (and the limit a schema's minimum depth must fit). */
export const MAX_DEPTH = 24;
/** Bounds on what a schema may cost to compile. */
const MAX_NODES = 20_000;
const MAX_SCHEMA_NESTING = 64;
const MAX_LITERAL_BYTES = 4 << 20;

export class SchemaError extends RangeError {
  constructor(
    message: string,
    readonly keyword: string | null,
    readonly path: string,
  ) {
    super(message);
  }
}

export interface ObjectProp {
  name: string;
  /** The key's bytes inside its quotes (JSON-escaped UTF-8). */
  keyBytes: Uint8Array;
  node: GNode;
  required: boolean;
}

export type GNode =
  | { t: 'obj'; id: number; props: ObjectProp[]; additional: GNode | null; ordered: boolean; names: NameTrie; minDepth: number }
  | { t: 'arr'; id: number; items: GNode; min: number; max: number; minDepth: number }
  | { t: 'str'; id: number; min: number; max: number; re: Nfa | null; minDepth: number }
  | { t: 'lit'; id: number; trie: LiteralTrie; minDepth: number }
  | { t: 'num'; id: number; integer: boolean; min: number; max: number; exMin: boolean; exMax: boolean; minDepth: number }
  | { t: 'any'; id: number; minDepth: number }
  | { t: 'or'; id: number; options: GNode[]; minDepth: number }
  | { t: 'ref'; id: number; target: GNode | null; pointer: string; minDepth: number };

/**
 * A byte trie over literal values (enum / const / true / false / null), JSON-encoded.
 * Node 0 is the root; `child(node, byte)` is -1 when no value continues with that byte.
 */
export class LiteralTrie {
  private readonly edges: Map<number, number>[] = [new Map()];
  readonly terminal: boolean[] = [false];

  add(bytes: Uint8Array): void {
    let n = 0;
    for (const b of bytes) {
      let c = this.edges[n].get(b);
      if (c === undefined) {
        c = this.edges.length;
        this.edges.push(new Map());
        this.terminal.push(false);
        this.edges[n].set(b, c);
      }
      n = c;
    }
    this.terminal[n] = true;
  }

  child(node: number, b: number): number {
    return this.edges[node].get(b) ?? -1;
  }
  hasChildren(node: number): boolean {
    return this.edges[node].size > 0;
  }
  get size(): number {
    return this.edges.length;
  }
}

/** A byte trie over the declared property names of one object (key bytes inside the quotes). */
export class NameTrie {
  private readonly edges: Map<number, number>[] = [new Map()];
  /** The property index ending at each node (-1 = none). */
  readonly ends: number[] = [-1];
  /** Property indices at or below each node. */
  readonly below: number[][] = [[]];

  add(bytes: Uint8Array, prop: number): void {
    let n = 0;
    this.below[0].push(prop);
    for (const b of bytes) {
      let c = this.edges[n].get(b);
      if (c === undefined) {
        c = this.edges.length;
        this.edges.push(new Map());
        this.ends.push(-1);
        this.below.push([]);
        this.edges[n].set(b, c);
      }
      n = c;
      this.below[n].push(prop);
    }
    this.ends[n] = prop;
  }

  child(node: number, b: number): number {
    return node < 0 ? -1 : (this.edges[node].get(b) ?? -1);
  }
}

const ANNOTATIONS = new Set([
  'title',
  'description',
  '$comment',
  'examples',
  'default',
  'deprecated',
  'readOnly',
  'writeOnly',
  '$schema',
  '$id',
  '$anchor',
  'strict',
]);
const KNOWN = new Set([
  'type',
  'enum',
  'const',
  'properties',
  'required',
  'additionalProperties',
  'items',
  'minItems',
  'maxItems',
  'minLength',
  'maxLength',
  'pattern',
  'format',
  'minimum',
  'maximum',
  'exclusiveMinimum',
  'exclusiveMaximum',
  'anyOf',
  '$ref',
  '$defs',
  'definitions',
]);
const OBJECT_KW = ['properties', 'required', 'additionalProperties'];
const ARRAY_KW = ['items', 'minItems', 'maxItems'];
const STRING_KW = ['minLength', 'maxLength', 'pattern', 'format'];
const NUMBER_KW = ['minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum'];
const TYPES = ['object', 'array', 'string', 'integer', 'number', 'boolean', 'null'];

const utf8 = new TextEncoder();
/** The bytes of a JSON string's content, as JSON.stringify writes it. */
export const keyBytesOf = (name: string): Uint8Array => {
  const s = JSON.stringify(name);
  return utf8.encode(s.slice(1, -1));
};

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function jsonType(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v;
}

/** The compiled schema: its root node, ready for JsonAutomaton. */
export interface CompiledSchema {
  root: GNode;
  nodeCount: number;
}

/** Options for compiling. */
export interface CompileOptions {
  /** Object nodes keep property order (the tool-call envelope: "name" before "parameters"). */
  orderedPaths?: ReadonlySet<string>;
}

/**
 * Compiles a JSON Schema (an object, or `true` for any value). Throws SchemaError naming the
 * keyword and the JSON pointer for anything it cannot enforce or that no value satisfies.
 */
export function compileJsonSchema(schema: unknown, opts: CompileOptions = {}): CompiledSchema {
  let nextId = 0;
  const byPointer = new Map<string, GNode>();
  const refs: GNode[] = [];
  let literalBytes = 0;
  const newId = (path: string): number => {
    if (nextId >= MAX_NODES) throw new SchemaError(`the schema is too large (more than ${MAX_NODES} nodes)`, null, path);
    return nextId++;
  };
  const err = (msg: string, keyword: string | null, path: string): never => {
    throw new SchemaError(`${msg} (at ${path || '#'})`, keyword, path || '#');
  };

  const resolvePointer = (ref: string, path: string): unknown => {
    if (!ref.startsWith('#')) err(`$ref ${JSON.stringify(ref)}: only local references ("#/$defs/Name") are supported`, '$ref', path);
    let cur: unknown = schema;
    const parts = ref.length <= 1 ? [] : ref.slice(ref.startsWith('#/') ? 2 : 1).split('/');
    for (const raw of parts) {
      const p = decodeURIComponent(raw).replace(/~1/g, '/').replace(/~0/g, '~');
      if (isObject(cur) && p in cur) cur = cur[p];
      else if (Array.isArray(cur) && /^\d+$/.test(p) && Number(p) < cur.length) cur = cur[Number(p)];
      else err(`$ref ${JSON.stringify(ref)} does not resolve`, '$ref', path);
    }
    return cur;
  };

  const literal = (values: unknown[], path: string, keyword: string): GNode => {
    const trie = new LiteralTrie();
    for (const v of values) {
      const b = utf8.encode(JSON.stringify(v));
      literalBytes += b.length;
      if (literalBytes > MAX_LITERAL_BYTES) err(`the enum/const values are too large (over ${MAX_LITERAL_BYTES >> 20} MB)`, keyword, path);
      trie.add(b);
    }
    return { t: 'lit', id: newId(path), trie, minDepth: 0 };
  };

  const compile = (s: unknown, path: string, nesting: number): GNode => {
    if (nesting > MAX_SCHEMA_NESTING) err(`the schema nests deeper than ${MAX_SCHEMA_NESTING} levels`, null, path);
    if (s === true) return { t: 'any', id: newId(path), minDepth: 0 };
    if (s === false) err('the schema `false` admits no value', null, path);
    if (!isObject(s)) err(`a schema must be an object or a boolean, got ${jsonType(s)}`, null, path);
    const sc = s as Record<string, unknown>;
    for (const k of Object.keys(sc)) {
      if (ANNOTATIONS.has(k) || KNOWN.has(k)) continue;
      err(`the JSON Schema keyword '${k}' is not supported by constrained decoding`, k, `${path}/${k}`);
    }
    const constraintKeys = Object.keys(sc).filter((k) => KNOWN.has(k) && k !== '$defs' && k !== 'definitions');

    if ('$ref' in sc) {
      const others = constraintKeys.filter((k) => k !== '$ref');
      if (others.length) err(`'$ref' next to '${others[0]}' is not supported (put the constraint in the referenced schema)`, others[0], path);
      const ref = sc.$ref;
      if (typeof ref !== 'string') err(`'$ref' must be a string`, '$ref', path);
      const pointer = (ref as string) === '#' ? '#' : (ref as string);
      const node: GNode = { t: 'ref', id: newId(path), target: null, pointer, minDepth: Infinity };
      refs.push(node);
      return node;
    }
    if ('anyOf' in sc) {
      const others = constraintKeys.filter((k) => k !== 'anyOf');
      if (others.length) err(`'anyOf' next to '${others[0]}' is not supported (move it into each branch)`, others[0], path);
      const list = sc.anyOf;
      if (!Array.isArray(list) || list.length === 0) err(`'anyOf' must be a non-empty array`, 'anyOf', path);
      const options = (list as unknown[]).map((o, i) => compileAt(o, `${path}/anyOf/${i}`, nesting + 1));
      return { t: 'or', id: newId(path), options, minDepth: Infinity };
    }
    if ('enum' in sc || 'const' in sc) {
      const key = 'const' in sc ? 'const' : 'enum';
      const values = key === 'const' ? [sc.const] : sc.enum;
      if (!Array.isArray(values) || values.length === 0) err(`'enum' must be a non-empty array`, 'enum', path);
      const others = constraintKeys.filter((k) => k !== 'enum' && k !== 'const' && k !== 'type');
      if (others.length) err(`'${key}' next to '${others[0]}' is not supported`, others[0], path);
      let vals = values as unknown[];
      if ('type' in sc) {
        const types = typeList(sc.type, path);
        vals = vals.filter((v) => types.includes(jsonType(v)) || (jsonType(v) === 'integer' && types.includes('number')));
        if (vals.length === 0) err(`no '${key}' value has the type ${JSON.stringify(sc.type)}`, key, path);
      }
      return literal(vals, path, key);
    }

    // Types: given, or implied by the keywords present.
    let types: string[];
    if ('type' in sc) types = typeList(sc.type, path);
    else {
      types = [];
      if (OBJECT_KW.some((k) => k in sc)) types.push('object');
      if (ARRAY_KW.some((k) => k in sc)) types.push('array');
      if (STRING_KW.some((k) => k in sc)) types.push('string');
      if (NUMBER_KW.some((k) => k in sc)) types.push('number');
      if (types.length === 0) return { t: 'any', id: newId(path), minDepth: 0 };
      if (types.length > 1) types.push(...['boolean', 'null'].filter(() => false));
    }
    if (types.includes('integer') && types.includes('number')) types = types.filter((t) => t !== 'integer');
    const nodes = types.map((t) => compileTyped(t, sc, path, nesting));
    return nodes.length === 1 ? nodes[0] : { t: 'or', id: newId(path), options: nodes, minDepth: Infinity };
  };

  const typeList = (t: unknown, path: string): string[] => {
    const list = Array.isArray(t) ? t : [t];
    if (list.length === 0) err(`'type' must not be empty`, 'type', path);
    for (const x of list) if (typeof x !== 'string' || !TYPES.includes(x)) err(`'type' ${JSON.stringify(x)} is not a JSON Schema type`, 'type', path);
    return [...new Set(list as string[])];
  };

  const nonNegInt = (sc: Record<string, unknown>, k: string, path: string): number | undefined => {
    const v = sc[k];
    if (v === undefined) return undefined;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) err(`'${k}' must be a non-negative integer`, k, path);
    return v as number;
  };
  const numberKw = (sc: Record<string, unknown>, k: string, path: string): number | undefined => {
    const v = sc[k];
    if (v === undefined) return undefined;
    if (typeof v !== 'number' || !Number.isFinite(v)) err(`'${k}' must be a finite number (draft 2020-12 form)`, k, path);
    return v as number;
  };

  const compileTyped = (type: string, sc: Record<string, unknown>, path: string, nesting: number): GNode => {
    switch (type) {
      case 'null':
        return literal([null], path, 'type');
      case 'boolean':
        return literal([true, false], path, 'type');
      case 'integer':
      case 'number': {
        const integer = type === 'integer';
        let min = numberKw(sc, 'minimum', path) ?? -Infinity,
          max = numberKw(sc, 'maximum', path) ?? Infinity;
        let exMin = false,
          exMax = false;
        const xmin = numberKw(sc, 'exclusiveMinimum', path),
          xmax = numberKw(sc, 'exclusiveMaximum', path);
        if (xmin !== undefined && xmin >= min) {
          min = xmin;
          exMin = true;
        }
        if (xmax !== undefined && xmax <= max) {
          max = xmax;
          exMax = true;
        }
        if (integer) {
          // Integers in range: tighten to the closed integer interval.
          const lo = exMin ? Math.floor(min) + 1 : Math.ceil(min),
            hi = exMax ? Math.ceil(max) - 1 : Math.floor(max);
          min = lo;
          max = hi;
          exMin = exMax = false;
        }
        const node: GNode = { t: 'num', id: newId(path), integer, min, max, exMin, exMax, minDepth: 0 };
        if (!numberFeasible(node, '')) err(`no ${type} of at most 15 digits satisfies minimum/maximum`, 'minimum', path);
        return node;
      }
      case 'string': {
        const min = nonNegInt(sc, 'minLength', path) ?? 0;
        const max = nonNegInt(sc, 'maxLength', path) ?? Infinity;
        if (min > max) err(`minLength ${min} exceeds maxLength ${max}`, 'minLength', path);
        let re: Nfa | null = null;
        let source: string | undefined;
        if (sc.format !== undefined) {
          if (typeof sc.format !== 'string' || !(sc.format in FORMAT_PATTERNS))
            err(`format ${JSON.stringify(sc.format)} is not supported (supported: ${Object.keys(FORMAT_PATTERNS).join(', ')})`, 'format', path);
          source = FORMAT_PATTERNS[sc.format as string];
        }
        if (sc.pattern !== undefined) {
          if (typeof sc.pattern !== 'string') err(`'pattern' must be a string`, 'pattern', path);
          if (source !== undefined) err(`'pattern' together with 'format' is not supported`, 'pattern', path);
          source = sc.pattern as string;
        }
        if (source !== undefined) {
          const kw = sc.pattern !== undefined ? 'pattern' : 'format';
          if (sc.minLength !== undefined || sc.maxLength !== undefined) err(`'${kw}' together with minLength/maxLength is not supported`, kw, path);
          try {
            re = compileRegex(source);
          } catch (e) {
            if (e instanceof RegexError) err(e.message, kw, path);
            throw e;
          }
          if (re!.start().length === 0) err(`no printable-ASCII string matches the ${kw} ${JSON.stringify(source)}`, kw, path);
        }
        return { t: 'str', id: newId(path), min, max, re, minDepth: 0 };
      }
      case 'array': {
        const min = nonNegInt(sc, 'minItems', path) ?? 0;
        const max = nonNegInt(sc, 'maxItems', path) ?? Infinity;
        if (min > max) err(`minItems ${min} exceeds maxItems ${max}`, 'minItems', path);
        if (Array.isArray(sc.items)) err(`'items' as an array (tuple form) is not supported`, 'items', path);
        const items = sc.items === undefined ? { t: 'any' as const, id: newId(path), minDepth: 0 } : compileAt(sc.items, `${path}/items`, nesting + 1);
        return { t: 'arr', id: newId(path), items, min, max, minDepth: Infinity };
      }
      case 'object': {
        const propsIn = sc.properties ?? {};
        if (!isObject(propsIn)) err(`'properties' must be an object`, 'properties', path);
        const req = sc.required ?? [];
        if (!Array.isArray(req) || req.some((r) => typeof r !== 'string')) err(`'required' must be an array of strings`, 'required', path);
        const names = Object.keys(propsIn as object);
        for (const r of req as string[])
          if (!names.includes(r)) err(`required property '${r}' is not in 'properties' (generated objects hold declared properties only)`, 'required', path);
        const props: ObjectProp[] = names.map((name) => ({
          name,
          keyBytes: keyBytesOf(name),
          required: (req as string[]).includes(name),
          node: compileAt((propsIn as Record<string, unknown>)[name], `${path}/properties/${name.replace(/~/g, '~0').replace(/\//g, '~1')}`, nesting + 1),
        }));
        let additional: GNode | null = null;
        const ap = sc.additionalProperties;
        if (ap === undefined) additional = names.length === 0 ? { t: 'any', id: newId(path), minDepth: 0 } : null;
        else if (ap === false) additional = null;
        else additional = compileAt(ap, `${path}/additionalProperties`, nesting + 1);
        const trie = new NameTrie();
        props.forEach((p, i) => trie.add(p.keyBytes, i));
        return { t: 'obj', id: newId(path), props, additional, ordered: opts.orderedPaths?.has(path || '#') ?? false, names: trie, minDepth: Infinity };
      }
    }
    throw new Error(`unreachable type ${type}`);
  };

  /** Compiles the schema at `path` once (so $ref to it shares the node). */
  const compileAt = (s: unknown, path: string, nesting: number): GNode => {
    const key = path || '#';
    const known = byPointer.get(key);
    if (known) return known;
    const node = compile(s, path, nesting);
    byPointer.set(key, node);
    return node;
  };

  const root = compileAt(schema, '', 0);
  // Resolve references (compiling referenced sub-schemas reached only through $ref).
  for (let i = 0; i < refs.length; i++) {
    const r = refs[i] as Extract<GNode, { t: 'ref' }>;
    const ptr = r.pointer === '#' ? '' : r.pointer.startsWith('#/') ? r.pointer.slice(1) : r.pointer;
    const target = resolvePointer(r.pointer, ptr);
    const known = byPointer.get(ptr || '#');
    r.target = known ?? compileAt(target, ptr, 1);
  }
  for (const r of refs) {
    let t = (r as Extract<GNode, { t: 'ref' }>).target!;
    const seen = new Set<GNode>();
    while (t.t === 'ref') {
      if (seen.has(t)) err(`$ref ${JSON.stringify((r as Extract<GNode, { t: 'ref' }>).pointer)} refers only to itself`, '$ref', '#');
      seen.add(t);
      t = t.target!;
    }
  }
  computeMinDepths(byPointer, refs);
  if (root.minDepth > MAX_DEPTH) {
    err(
      root.minDepth === Infinity
        ? 'the schema admits no finite value (a recursive $ref with no terminating branch, or an impossible required property)'
        : `every value of the schema nests deeper than ${MAX_DEPTH} levels`,
      '$ref',
      '#',
    );
  }
  return { root, nodeCount: nextId };
}

/** Fixpoint: the least container depth a value of each node needs (Infinity = none is finite). */
function computeMinDepths(byPointer: Map<string, GNode>, refs: GNode[]): void {
  const all = new Set<GNode>();
  const visit = (n: GNode): void => {
    if (all.has(n)) return;
    all.add(n);
    if (n.t === 'obj') {
      n.props.forEach((p) => visit(p.node));
      if (n.additional) visit(n.additional);
    } else if (n.t === 'arr') visit(n.items);
    else if (n.t === 'or') n.options.forEach(visit);
    else if (n.t === 'ref' && n.target) visit(n.target);
  };
  for (const n of byPointer.values()) visit(n);
  for (const n of refs) visit(n);
  for (let changed = true; changed; ) {
    changed = false;
    for (const n of all) {
      let d: number;
      switch (n.t) {
        case 'obj':
          d = 1 + n.props.reduce((m, p) => (p.required ? Math.max(m, p.node.minDepth) : m), 0);
          break;
        case 'arr':
          d = 1 + (n.min > 0 ? n.items.minDepth : 0);
          break;
        case 'or':
          d = Math.min(...n.options.map((o) => o.minDepth));
          break;
        case 'ref':
          d = n.target!.minDepth;
          break;
        default:
          d = 0;
      }
      if (d < n.minDepth) {
        n.minDepth = d;
        changed = true;
      }
    }
  }
}

// ---- numbers -------------------------------------------------------------------------------

/** Digits allowed in the integer part and in the fraction. */
export const MAX_INT_DIGITS = 15,
  MAX_FRAC_DIGITS = 15;

type NumNode = Extract<GNode, { t: 'num' }>;

function inRange(n: NumNode, v: number): boolean {
  if (n.exMin ? !(v > n.min) : !(v >= n.min)) return false;
  if (n.exMax ? !(v < n.max) : !(v <= n.max)) return false;
  return true;
}

/** Whether the interval from a to b (open ends as flagged) meets the node's range. */
function meets(n: NumNode, a: number, aOpen: boolean, b: number, bOpen: boolean): boolean {
  const [lo, loOpen] = a > n.min ? [a, aOpen] : a < n.min ? [n.min, n.exMin] : [a, aOpen || n.exMin];
  const [hi, hiOpen] = b < n.max ? [b, bOpen] : b > n.max ? [n.max, n.exMax] : [b, bOpen || n.exMax];
  return lo < hi || (lo === hi && !loOpen && !hiOpen);
}

/** Whether `text` (a prefix of -?(0|[1-9]\d*)(\.\d+)?) is itself a complete in-range number. */
export function numberComplete(n: NumNode, text: string): boolean {
  const c = text.charCodeAt(text.length - 1);
  if (!(c >= 48 && c <= 57)) return false;
  return inRange(n, Number(text));
}

/**
 * Whether the prefix `text` can still be completed to an in-range number within the digit
 * limits. Completions of an integer part D with j more digits have magnitudes in
 * [D·10^j, (D+1)·10^j) (integers: D·10^j .. D·10^j + 10^j - 1); after a '.', completions of
 * D.F lie in [D.F, D.F + 10^-|F|). A '-' mirrors the magnitudes.
 */
export function numberFeasible(n: NumNode, text: string): boolean {
  const neg = text.startsWith('-');
  const body = neg ? text.slice(1) : text;
  // Magnitudes [lo, hi] (hi open when hiOpen) → values.
  const mag = (lo: number, hi: number, hiOpen: boolean): boolean => (neg ? meets(n, -hi, hiOpen, -lo, false) : meets(n, lo, false, hi, hiOpen));
  if (text === '') {
    const lim = 10 ** MAX_INT_DIGITS;
    return meets(n, 0, false, lim, true) || meets(n, -lim, true, 0, false);
  }
  const dot = body.indexOf('.');
  const intPart = dot < 0 ? body : body.slice(0, dot);
  if (dot >= 0) {
    const frac = body.slice(dot + 1);
    if (frac.length === 0) return mag(Number(intPart), Number(intPart) + 1, true);
    const base = Number(`${intPart}.${frac}`);
    return frac.length < MAX_FRAC_DIGITS ? mag(base, base + 10 ** -frac.length, true) : mag(base, base, false);
  }
  // (An integer after '-' is at least 1 in magnitude: "-0" is not written.)
  if (intPart === '') return n.integer ? mag(neg ? 1 : 0, 10 ** MAX_INT_DIGITS - 1, false) : mag(0, 10 ** MAX_INT_DIGITS, true);
  if (intPart === '0') return n.integer ? !neg && mag(0, 0, false) : mag(0, 1, true); // no "-0" integer
  const D = Number(intPart);
  for (let j = 0; intPart.length + j <= MAX_INT_DIGITS; j++) {
    const lo = D * 10 ** j;
    if (n.integer ? mag(lo, lo + 10 ** j - 1, false) : mag(lo, (D + 1) * 10 ** j, true)) return true;
  }
  return false;
}
