/**
 * The schema compiler and the byte automaton without a model: which schemas are refused (and
 * how the error names the keyword), pathological schemas within bounded time, and random walks
 * over the automaton whose completed outputs must all validate with ajv while every live state
 * stays completable. Plus a fuzz test: arbitrary bytes never throw, only get refused.
 */
import { describe, expect, it } from 'vitest';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { compileJsonSchema, JsonAutomaton, SchemaError, compileRegex } from '../../src/constrain/index.js';
import { mulberry32 as rng } from '../helpers.js';

const ajv = new Ajv2020({ strict: false });
addFormats.default(ajv);

/** Random walk: picks a random allowed byte (biased toward ending), until the value completes. */
function walk(A: JsonAutomaton, rnd: () => number, maxBytes = 400): string | null {
  let s = A.intern(A.startThreads());
  const bytes: number[] = [];
  while (bytes.length < maxBytes) {
    if (A.accepting(s) && rnd() < 0.3) return new TextDecoder('utf-8', { fatal: true }).decode(Uint8Array.from(bytes));
    const allowed: number[] = [];
    for (let b = 0; b < 256; b++) if (A.next(s, b) >= 0) allowed.push(b);
    if (allowed.length === 0) {
      if (A.accepting(s)) return new TextDecoder('utf-8', { fatal: true }).decode(Uint8Array.from(bytes));
      throw new Error(`dead end after ${JSON.stringify(new TextDecoder().decode(Uint8Array.from(bytes)))}`);
    }
    // Prefer structural bytes so walks finish: closing quotes/brackets and digits first.
    const pref = allowed.filter((b) => b === 0x22 || b === 0x7d || b === 0x5d || b === 0x2c || b === 0x3a || (b >= 0x30 && b <= 0x39));
    const pool = pref.length && rnd() < 0.6 ? pref : allowed;
    const b = pool[Math.floor(rnd() * pool.length)];
    bytes.push(b);
    s = A.next(s, b);
  }
  return null;
}

const SCHEMAS: object[] = [
  {
    type: 'object',
    properties: { a: { type: 'string', minLength: 1, maxLength: 4 }, b: { type: 'number', minimum: -1.5, exclusiveMaximum: 2 }, c: { type: 'boolean' } },
    required: ['a', 'b'],
    additionalProperties: false,
  },
  {
    type: 'array',
    items: { anyOf: [{ type: 'integer', minimum: 5, maximum: 17 }, { type: 'null' }, { enum: ['x', 1.5, { k: [1] }] }] },
    minItems: 2,
    maxItems: 5,
  },
  {
    $defs: {
      t: {
        type: 'object',
        properties: { n: { type: 'integer', exclusiveMinimum: -3, maximum: 3 }, kids: { type: 'array', maxItems: 2, items: { $ref: '#/$defs/t' } } },
        required: ['n'],
        additionalProperties: false,
      },
    },
    $ref: '#/$defs/t',
  },
  { type: 'string', format: 'date-time' },
  { type: 'string', pattern: '^(ab|c+)[0-9]{2,3}$' },
  { type: 'string', pattern: '^q"\\\\+$' },
  { type: 'object', additionalProperties: { type: 'integer', minimum: 100, maximum: 100000 } },
  { type: 'object', properties: { id: { const: 'a"b' }, v: { type: ['integer', 'string'], maxLength: 2, minimum: 0, maximum: 0 } }, required: ['id', 'v'] },
  { type: 'object' },
  { type: 'number', minimum: 0.25, maximum: 0.5 },
  { type: 'integer', minimum: -1000000, maximum: -999990 },
];

describe('schema → automaton', () => {
  SCHEMAS.forEach((schema, i) => {
    it(`schema ${i}: random walks only finish valid documents, and never dead-end`, () => {
      const A = new JsonAutomaton(compileJsonSchema(schema));
      const validate = ajv.compile(schema);
      const rnd = rng(i + 1);
      let finished = 0;
      for (let k = 0; k < 60; k++) {
        const text = walk(A, rnd);
        if (text === null) continue;
        finished++;
        const v = JSON.parse(text);
        if (!validate(v)) throw new Error(`${text} fails ${ajv.errorsText(validate.errors)}`);
      }
      expect(finished).toBeGreaterThan(10);
    });
  });

  it('refuses what it cannot enforce, naming the keyword and where', () => {
    const cases: [object, RegExp, string | null][] = [
      [{ type: 'object', patternProperties: { a: {} } }, /'patternProperties'/, 'patternProperties'],
      [{ type: 'array', items: { type: 'string', uniqueItems: true } }, /'uniqueItems'.*#?\/items/, 'uniqueItems'],
      [{ oneOf: [{ type: 'string' }] }, /'oneOf'/, 'oneOf'],
      [{ type: 'number', multipleOf: 3 }, /'multipleOf'/, 'multipleOf'],
      [{ type: 'string', format: 'email' }, /format "email"/, 'format'],
      [{ type: 'string', pattern: 'a(?=b)' }, /lookaround/, 'pattern'],
      [{ type: 'string', pattern: '\\bword' }, /escape \\b/, 'pattern'],
      [{ $ref: 'http://example.com/s.json' }, /only local references/, '$ref'],
      [{ $ref: '#/$defs/missing' }, /does not resolve/, '$ref'],
      [{ enum: [] }, /non-empty array/, 'enum'],
      [{ type: 'string', minLength: 5, maxLength: 2 }, /exceeds maxLength/, 'minLength'],
      [{ type: 'integer', minimum: 1.5, maximum: 1.7 }, /no integer/, 'minimum'],
      [{ type: 'object', required: ['x'] }, /not in 'properties'/, 'required'],
      [{ $defs: { a: { $ref: '#/$defs/a' } }, $ref: '#/$defs/a' }, /refers only to itself/, '$ref'],
      [{ type: 'object', properties: { self: { $ref: '#' } }, required: ['self'] }, /no finite value/, '$ref'],
      [{ type: 'gizmo' }, /not a JSON Schema type/, 'type'],
    ];
    for (const [schema, re, keyword] of cases) {
      let err: unknown;
      try {
        compileJsonSchema(schema);
      } catch (e) {
        err = e;
      }
      expect(err, JSON.stringify(schema)).toBeInstanceOf(SchemaError);
      expect((err as Error).message).toMatch(re);
      expect((err as SchemaError).keyword).toBe(keyword);
    }
  });

  it('pathological schemas are refused or handled in bounded time', () => {
    // 100 levels of nesting: refused at compile.
    let deep: object = { type: 'integer' };
    for (let i = 0; i < 100; i++) deep = { type: 'array', items: deep, minItems: 1 };
    expect(() => compileJsonSchema(deep)).toThrow(/deeper than 64/);
    // 30 levels that every value must go through: beyond the generation depth.
    let req: object = { type: 'integer' };
    for (let i = 0; i < 30; i++) req = { type: 'array', items: req, minItems: 1 };
    expect(() => compileJsonSchema(req)).toThrow(/nests deeper than 24/);
    // A huge enum compiles and steps quickly.
    const t0 = performance.now();
    const values = Array.from({ length: 50_000 }, (_, i) => `v${i}`);
    const A = new JsonAutomaton(compileJsonSchema({ enum: values }));
    const validate = ajv.compile({ enum: values });
    const rnd = rng(9);
    for (let k = 0; k < 20; k++) {
      const t = walk(A, rnd);
      if (t !== null) expect(validate(JSON.parse(t))).toBe(true);
    }
    expect(performance.now() - t0).toBeLessThan(20_000);
    // Recursion without a way out under nesting: values stop at the depth limit, never dead-end.
    const R = new JsonAutomaton(compileJsonSchema({ $defs: { n: { type: 'array', items: { $ref: '#/$defs/n' }, maxItems: 1 } }, $ref: '#/$defs/n' }));
    let s = R.intern(R.startThreads());
    for (let d = 0; d < 40; d++) {
      const n = R.next(s, 0x5b);
      if (n < 0) break;
      s = n;
    }
    let closes = 0;
    while (!R.accepting(s)) {
      s = R.next(s, 0x5d);
      expect(s).toBeGreaterThanOrEqual(0);
      closes++;
    }
    expect(closes).toBe(24);
    // Too many ambiguous readings at once: a clear RangeError, not runaway memory.
    const amb = new JsonAutomaton(compileJsonSchema({ anyOf: Array.from({ length: 600 }, (_, i) => ({ type: 'string', maxLength: 10 + i })) }));
    expect(() => amb.next(amb.intern(amb.startThreads()), 0x22)).toThrow(/too ambiguous/);
  });

  it('fuzz: arbitrary bytes are refused or accepted, never throw; accepted prefixes stay completable', () => {
    const A = new JsonAutomaton(compileJsonSchema(SCHEMAS[0]));
    const rnd = rng(77);
    for (let k = 0; k < 3000; k++) {
      let s = A.intern(A.startThreads());
      const len = 1 + Math.floor(rnd() * 24);
      for (let j = 0; j < len; j++) {
        const b = rnd() < 0.5 ? Math.floor(rnd() * 256) : '{"a":"b, }1.-0e'.charCodeAt(Math.floor(rnd() * 15));
        const n = A.next(s, b);
        if (n < 0) break;
        s = n;
        let any = A.accepting(s);
        for (let c = 0; c < 256 && !any; c++) any = A.next(s, c) >= 0;
        expect(any).toBe(true);
      }
    }
  });

  it('patterns: the NFA agrees with RegExp on printable strings', () => {
    const rnd = rng(5);
    for (const p of ['^(ab|c+)[0-9]{2,3}$', 'x[^a-c]?y', '^\\d{2}-\\w+$', '^a{2,}b*$']) {
      const nfa = compileRegex(p);
      const re = new RegExp(p);
      for (let k = 0; k < 400; k++) {
        const len = Math.floor(rnd() * 7);
        let str = '';
        for (let j = 0; j < len; j++) str += 'abcxy019-_ '[Math.floor(rnd() * 11)];
        let set = nfa.start();
        for (const ch of str) set = nfa.step(set, ch.charCodeAt(0));
        expect(nfa.accepts(set), `${p} on ${JSON.stringify(str)}`).toBe(re.test(str));
      }
    }
  });
});
