/**
 * The house rules, checked on every import under src/:
 * - the runtime-neutral core never imports Node modules (file access, workers, HTTP and the CLI
 *   sit behind adapters in src/node, src/deno, src/server, src/cli);
 * - layers import only downward: cli → server → trace → engine → encoders → model → checkpoint →
 *   kernels / io / tokenizer / util (constrain, the constrained-decoding automaton, sits beside
 *   checkpoint: above tokenizer, below engine); the kernels import nothing from src/;
 * - no import cycles between files (type-only imports included);
 * - test/ mirrors src/: each test folder is named for the source folder it tests.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = join(__dirname, '..', 'src');
const CORE = ['model', 'checkpoint', 'constrain', 'encoders', 'tokenizer', 'kernels', 'engine', 'trace', 'io', 'util', 'index.ts'];

/** Higher may import lower or equal-rank folders of its own kind; never upward. */
const RANK: Record<string, number> = {
  util: 0,
  kernels: 0,
  io: 0,
  tokenizer: 1,
  checkpoint: 2,
  constrain: 2,
  model: 3,
  encoders: 4,
  engine: 5,
  trace: 6,
  node: 7,
  deno: 7,
  browser: 7,
  server: 8,
  'index.ts': 9,
  cli: 10,
};
/** Folders at one rank that must not import each other (each one kind of thing). */
const ISOLATED = new Set(['util', 'kernels', 'io']);

function files(p: string): string[] {
  return statSync(p).isDirectory() ? readdirSync(p).flatMap((f) => files(join(p, f))) : p.endsWith('.ts') ? [p] : [];
}
const all = files(ROOT);
const folder = (f: string): string => relative(ROOT, f).split('/')[0];

function imports(f: string): string[] {
  const src = readFileSync(f, 'utf8');
  const out: string[] = [];
  for (const m of src.matchAll(/(?:^|\n)\s*(?:import|export)\b[^'"]*?from\s*['"](\.{1,2}\/[^'"]+)['"]/g)) {
    out.push(resolve(dirname(f), m[1]).replace(/\.js$/, '.ts'));
  }
  for (const m of src.matchAll(/import\(\s*['"](\.{1,2}\/[^'"]+)['"]\s*\)/g)) out.push(resolve(dirname(f), m[1]).replace(/\.js$/, '.ts'));
  return out;
}
const graph = new Map(all.map((f) => [f, imports(f)]));

describe('layering', () => {
  it('every folder under src/ has a rank', () => {
    expect(all.map(folder).filter((d) => !(d in RANK))).toEqual([]);
  });

  it('no node: imports in the runtime-neutral core', () => {
    const offenders = all
      .filter((f) => CORE.includes(folder(f)))
      .filter((f) => /from ['"]node:|require\(['"]node:|import\(['"]node:/.test(readFileSync(f, 'utf8')));
    expect(offenders.map((f) => relative(ROOT, f))).toEqual([]);
  });

  it('imports point downward only, and every relative import resolves', () => {
    const bad: string[] = [];
    for (const [f, deps] of graph) {
      for (const d of deps) {
        const rel = `${relative(ROOT, f)} -> ${relative(ROOT, d)}`;
        if (!graph.has(d)) {
          bad.push(`${rel} (missing)`);
          continue;
        }
        const a = folder(f),
          b = folder(d);
        if (a === b) continue;
        if (a === 'kernels' || RANK[b] > RANK[a] || (RANK[a] === RANK[b] && (ISOLATED.has(a) || ISOLATED.has(b) || a !== b))) bad.push(rel);
      }
    }
    expect(bad).toEqual([]);
  });

  it('no import cycles', () => {
    const state = new Map<string, 1 | 2>();
    const cycles: string[] = [];
    const stack: string[] = [];
    const visit = (f: string): void => {
      state.set(f, 1);
      stack.push(f);
      for (const d of graph.get(f) ?? []) {
        if (!graph.has(d)) continue;
        if (state.get(d) === 1) cycles.push([...stack.slice(stack.indexOf(d)), d].map((x) => relative(ROOT, x)).join(' -> '));
        else if (!state.has(d)) visit(d);
      }
      stack.pop();
      state.set(f, 2);
    };
    for (const f of all) if (!state.has(f)) visit(f);
    expect(cycles).toEqual([]);
  });
});

describe('tests beside what they test', () => {
  // Suites that test the whole rather than one folder: the multimodal goldens and the packed package.
  const WHOLE = ['multimodal', 'package', 'golden', 'fixtures'];
  const TEST = join(__dirname);
  const dirs = (p: string): string[] =>
    readdirSync(p)
      .filter((f) => statSync(join(p, f)).isDirectory())
      .flatMap((f) => [join(p, f), ...dirs(join(p, f))]);

  it('every folder under test/ mirrors a folder under src/ (or is a whole-system suite)', () => {
    const stray = dirs(TEST)
      .map((d) => relative(TEST, d))
      .filter((d) => !WHOLE.includes(d.split('/')[0]) && !statSync(join(ROOT, d), { throwIfNoEntry: false })?.isDirectory());
    expect(stray).toEqual([]);
  });
});
