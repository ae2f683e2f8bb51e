/**
 * package.json's runtime `dependencies` are exactly the packages the shipped code (src/, bin/)
 * imports or resolves; everything else (tests, benchmarks, the page, build tools) is a
 * devDependency. A new runtime import without a dependency would break `npm install gemma3n-ts`.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '../..');

function files(p: string): string[] {
  return statSync(p).isDirectory() ? readdirSync(p).flatMap((f) => files(join(p, f))) : /\.(ts|js|mjs)$/.test(p) ? [p] : [];
}

/** The package a bare specifier names: 'a/b/c' -> 'a', '@s/a/b' -> '@s/a'. */
const packageOf = (spec: string): string =>
  spec
    .split('/')
    .slice(0, spec.startsWith('@') ? 2 : 1)
    .join('/');

describe('runtime dependencies', () => {
  it('are exactly what src/ and bin/ import (incl. require.resolve of data files)', () => {
    const used = new Set<string>();
    for (const f of [...files(join(ROOT, 'src')), ...files(join(ROOT, 'bin'))]) {
      const text = readFileSync(f, 'utf8');
      const specs = [
        ...text.matchAll(/(?:^|\n)\s*(?:import|export)\b[^'"]*?from\s*['"]([^'"]+)['"]/g),
        ...text.matchAll(/import\(\s*['"]([^'"]+)['"]\s*\)/g),
        ...text.matchAll(/require(?:\.resolve)?\(\s*['"]([^'"]+)['"]\s*\)/g),
      ].map((m) => m[1]);
      for (const s of specs) {
        if (s.startsWith('.') || s.startsWith('node:') || builtinModules.includes(s) || s.startsWith('npm:')) continue;
        used.add(packageOf(s));
      }
    }
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
    expect([...used].sort()).toEqual(Object.keys(pkg.dependencies).sort());
  });
});
