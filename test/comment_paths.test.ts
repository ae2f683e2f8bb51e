/**
 * Comments and docs point only at files that exist: every repository path named in src/, test/,
 * bench/, assembly/, scripts/, web/, docs/ or the README
 * (`src/model/altup.ts`, `test/golden/README.md`, `docs/kernels.md` ...) is checked against the
 * tree. Paths inside another project (`[ggml/docs/gguf.md]`) and globs (`src/{node,deno}/...`)
 * are not ours and are skipped.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = join(__dirname, '..');
// Reference data (test/golden, test/fixtures) is copied from elsewhere and names the other side's files.
const SKIP = new Set(['golden', 'fixtures', 'node_modules']);
const files = (p: string): string[] =>
  statSync(p).isDirectory()
    ? readdirSync(p)
        .filter((f) => !SKIP.has(f))
        .flatMap((f) => files(join(p, f)))
    : /\.(ts|mjs|md)$/.test(p)
      ? [p]
      : [];
const ROOTS = ['src', 'test', 'bench', 'assembly', 'scripts', 'web', 'docs', 'README.md'];
// A path starts at a top-level folder of this repository, not after a '/' or a word character.
const PATH = /(?<![\w/.-])((?:src|test|bench|scripts|web|assembly|docs)\/[\w./-]+\.(?:ts|mjs|md|json|html))/g;

describe('comments', () => {
  it('every repository path named in the sources, tests, benchmarks and docs exists', () => {
    const missing: string[] = [];
    for (const f of ROOTS.flatMap((r) => files(join(ROOT, r)))) {
      for (const m of readFileSync(f, 'utf8').matchAll(PATH)) {
        if (!existsSync(join(ROOT, m[1]))) missing.push(`${relative(ROOT, f)}: ${m[1]}`);
      }
    }
    expect(missing).toEqual([]);
  });
});
