/**
 * `gemma3n tokenize --model DIR --jsonl FILE`: one JSON string per input line in, one JSON
 * array of token ids (no BOS) per line out. `--decode`: arrays of ids in, JSON strings out.
 * Special-token text is kept as plain text unless --parse-special. DIR may hold only the
 * tokenizer files (tokenizer.json or tokenizer.model, tokenizer_config.json).
 */
import { readFile } from 'node:fs/promises';
import { NodeFolder } from '../../node/fs_folder.js';
import { loadFolderTokenizer } from '../../engine/load_tokenizer.js';
import { UsageError } from '../args.js';
import { parse, resolveModelDir, str } from '../common.js';

export async function cmdTokenize(argv: string[]): Promise<number> {
  const v = parse(argv, {
    model: { type: 'string' },
    jsonl: { type: 'string' },
    decode: { type: 'boolean' },
    'parse-special': { type: 'boolean' },
    'skip-special': { type: 'boolean' },
  });
  const file = str(v, 'jsonl');
  if (file === undefined) throw new UsageError('tokenize: --jsonl FILE is required (one JSON value per line)');
  const dir = await resolveModelDir(v, 'tokenizer'); // a tokenizer-only folder is enough
  const { tokenizer } = await loadFolderTokenizer(new NodeFolder(dir));
  if (!tokenizer) throw new Error(`${dir}: no tokenizer.json or tokenizer.model`);
  const lines = (await readFile(file, 'utf8')).split('\n');
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  const out: string[] = [];
  lines.forEach((line, i) => {
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (e) {
      throw new UsageError(`${file}:${i + 1}: not valid JSON (${(e as Error).message})`);
    }
    if (v.decode) {
      if (!Array.isArray(value) || !value.every((x) => Number.isInteger(x) && x >= 0 && x < tokenizer.vocabSize))
        throw new UsageError(`${file}:${i + 1}: expected a JSON array of token ids in [0, ${tokenizer.vocabSize})`);
      out.push(JSON.stringify(tokenizer.decode(value as number[], { skipSpecial: v['skip-special'] === true })));
    } else {
      if (typeof value !== 'string') throw new UsageError(`${file}:${i + 1}: expected a JSON string`);
      out.push(JSON.stringify(tokenizer.encode(value, { addBos: false, parseSpecial: v['parse-special'] === true })));
    }
  });
  process.stdout.write(out.length ? out.join('\n') + '\n' : '');
  return 0;
}
