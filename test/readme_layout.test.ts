/** The README's Layout section against the tree: every folder under src/ is listed, every listed path exists. */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = join(__dirname, '..');
const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
const layout = /## Layout\n[\s\S]*?```\n([\s\S]*?)```/.exec(readme)?.[1] ?? '';

describe('README Layout', () => {
  it('is there', () => expect(layout.length).toBeGreaterThan(100));

  it('lists every folder under src/', () => {
    const folders = readdirSync(join(ROOT, 'src')).filter((f) => statSync(join(ROOT, 'src', f)).isDirectory());
    expect(folders.filter((f) => !layout.includes(`src/${f}/`))).toEqual([]);
  });

  it('names only paths that exist', () => {
    const paths = [...layout.matchAll(/(?<![\w/])((?:src|test|bench|web|assembly)\/[\w./]*)/g)].map((m) => m[1]);
    expect(paths.length).toBeGreaterThan(10);
    expect(paths.filter((p) => !existsSync(join(ROOT, p)))).toEqual([]);
  });
});
