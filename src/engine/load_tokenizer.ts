/** Finds and loads the tokenizer of a model folder: tokenizer.json, else tokenizer.model. */
import type { FileProvider } from '../io/byte_source.js';
import { GemmaTokenizer, loadTokenizerFromFiles } from '../tokenizer/index.js';
import { decodeCompactTokenizer, sampledHash } from '../tokenizer/compact.js';
import { mark } from '../util/marks.js';

/** The compact tokenizer `gemma3n quantize` writes (src/tokenizer/compact.ts). */
export const COMPACT_TOKENIZER = 'tokenizer.gtok';

/**
 * tokenizer.json through its compact form when one made from this very file is present (start-up
 * skips parsing 33 MB of JSON); null when there is none or it is stale.
 */
async function compactTokenizer(folder: FileProvider): Promise<GemmaTokenizer | null> {
  if (!(await folder.exists(COMPACT_TOKENIZER))) return null;
  const json = await folder.open('tokenizer.json');
  const gtok = await folder.open(COMPACT_TOKENIZER);
  try {
    const stamp = await sampledHash(json.size, (o, n) => json.read(o, n));
    const spec = decodeCompactTokenizer(await gtok.read(0, gtok.size), stamp, `${folder.location}/${COMPACT_TOKENIZER}`);
    return spec ? new GemmaTokenizer(spec) : null;
  } finally {
    await json.close?.();
    await gtok.close?.();
  }
}

export interface FolderTokenizer {
  tokenizer: GemmaTokenizer | null;
  tokenizerConfig: object | undefined;
  chatTemplate: string | undefined;
}

export async function loadFolderTokenizer(folder: FileProvider): Promise<FolderTokenizer> {
  let tokenizerConfig: object | undefined;
  if (await folder.exists('tokenizer_config.json')) {
    try {
      tokenizerConfig = JSON.parse(await folder.readText('tokenizer_config.json')) as object;
    } catch (e) {
      throw new Error(`${folder.location}/tokenizer_config.json: not valid JSON (${(e as Error).message})`);
    }
  }
  let tokenizer: GemmaTokenizer | null = null;
  try {
    if (await folder.exists('tokenizer.json')) {
      tokenizer = (await compactTokenizer(folder)) ?? loadTokenizerFromFiles({ tokenizerJson: await folder.readText('tokenizer.json') });
    } else if (await folder.exists('tokenizer.model')) {
      const src = await folder.open('tokenizer.model');
      tokenizer = loadTokenizerFromFiles({ tokenizerModel: await src.read(0, src.size), tokenizerConfig });
      await src.close?.();
    }
  } catch (e) {
    throw new Error(`${folder.location}: cannot load the tokenizer: ${(e as Error).message}`);
  }
  mark('tokenizer loaded');
  const chatTemplate = (await folder.exists('chat_template.jinja')) ? await folder.readText('chat_template.jinja') : undefined;
  return { tokenizer, tokenizerConfig, chatTemplate };
}
