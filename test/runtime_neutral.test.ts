/** The engine's core never imports Node modules: file access, workers and the CLI sit behind adapters. */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = join(__dirname, '..', 'src');
const CORE = ['model', 'encoders', 'tokenizer', 'kernels', 'engine', 'io', 'index.ts'];

function files(p: string): string[] {
  return statSync(p).isDirectory() ? readdirSync(p).flatMap((f) => files(join(p, f))) : p.endsWith('.ts') ? [p] : [];
}

describe('runtime-neutral core', () => {
  it('no node: imports under src/{model,encoders,tokenizer,kernels,engine,io}', () => {
    const offenders = CORE.flatMap((d) => files(join(ROOT, d))).filter((f) => /from ['"]node:|require\(['"]node:/.test(readFileSync(f, 'utf8')));
    expect(offenders).toEqual([]);
  });
});
