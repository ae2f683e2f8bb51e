/**
 * Comments point only at files that exist: every repository path a source file under src/ names
 * (`src/model/altup.ts`, `test/golden/README.md`, `docs/kernels.md` ...) is checked against the
 * tree. Paths inside another project (`[ggml/docs/gguf.md]`) and globs (`src/{node,deno}/...`)
 * are not ours and are skipped.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = join(__dirname, '..');
const files = (p: string): string[] => (statSync(p).isDirectory() ? readdirSync(p).flatMap((f) => files(join(p, f))) : p.endsWith('.ts') ? [p] : []);
// A path starts at a top-level folder of this repository, not after a '/' or a word character.
const PATH = /(?<![\w/.-])((?:src|test|bench|scripts|web|assembly|docs)\/[\w./-]+\.(?:ts|mjs|md|json|html))/g;

describe('comments', () => {
  it('every repository path named in src/ exists', () => {
    const missing: string[] = [];
    for (const f of files(join(ROOT, 'src'))) {
      for (const m of readFileSync(f, 'utf8').matchAll(PATH)) {
        if (!existsSync(join(ROOT, m[1]))) missing.push(`${relative(ROOT, f)}: ${m[1]}`);
      }
    }
    expect(missing).toEqual([]);
  });
});
