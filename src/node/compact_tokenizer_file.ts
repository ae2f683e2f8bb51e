/** Writes `tokenizer.gtok` (src/tokenizer/compact.ts) next to a folder's tokenizer.json. */
import { readFile, writeFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { encodeCompactTokenizer, sampledHash } from '../tokenizer/compact.js';
import { specFromTokenizerJson } from '../tokenizer/spec_from_tokenizer_json.js';

export { COMPACT_TOKENIZER as COMPACT_TOKENIZER_FILE } from '../engine/load_tokenizer.js';
import { COMPACT_TOKENIZER as COMPACT_TOKENIZER_FILE } from '../engine/load_tokenizer.js';

export async function writeCompactTokenizerFile(dir: string): Promise<string> {
  const src = join(dir, 'tokenizer.json');
  const bytes = await readFile(src);
  const stamp = await sampledHash(bytes.length, async (o, n) => bytes.subarray(o, o + n));
  const out = join(dir, COMPACT_TOKENIZER_FILE);
  const tmp = `${out}.tmp-${process.pid}`;
  await writeFile(tmp, encodeCompactTokenizer(specFromTokenizerJson(bytes.toString('utf8')), stamp));
  await rename(tmp, out);
  return out;
}
