/**
 * `gemma3n export-gguf --model DIR --out FILE.gguf [--type q4_0|q8_0|f16|f32]`: the text decoder
 * as a GGUF file that llama.cpp loads as a `gemma3n` model (src/checkpoint/gguf/export.ts),
 * with the folder's tokenizer and chat template. A packed int4 folder (`gemma3n quantize`)
 * exports to Q4_0 with its int4 codes unchanged.
 */
import { open, rename } from 'node:fs/promises';
import { parseModelConfig } from '../../checkpoint/config.js';
import { ggufExport, type ExportType } from '../../checkpoint/gguf/export.js';
import { writeGguf } from '../../checkpoint/gguf/writer.js';
import { openTensorStore } from '../../checkpoint/open_store.js';
import type { FileProvider } from '../../io/byte_source.js';
import { NodeFolder } from '../../node/fs_folder.js';
import { parseSentencePieceModel } from '../../tokenizer/index.js';
import { vocabFromTokenizerJson, type GgufVocab } from '../../tokenizer/gguf_vocab.js';
import { UsageError } from '../args.js';
import { parse, resolveModelDir, str } from '../common.js';
import { isGgufPath, openGgufModel } from '../gguf.js';

const TYPES: readonly ExportType[] = ['q4_0', 'q8_0', 'f16', 'f32'];

/** The folder's tokenizer as GGUF vocabulary: tokenizer.json, else tokenizer.model (+ added tokens). */
async function folderVocab(folder: FileProvider, rows: number): Promise<{ vocab: GgufVocab | null; chatTemplate?: string }> {
  let config: Record<string, unknown> = {};
  if (await folder.exists('tokenizer_config.json')) config = JSON.parse(await folder.readText('tokenizer_config.json')) as Record<string, unknown>;
  const chatTemplate = (await folder.exists('chat_template.jinja'))
    ? await folder.readText('chat_template.jinja')
    : typeof config.chat_template === 'string'
      ? config.chat_template
      : undefined;
  if (await folder.exists('tokenizer.json')) return { vocab: vocabFromTokenizerJson(await folder.readText('tokenizer.json'), rows), chatTemplate };
  if (await folder.exists('tokenizer.model')) {
    const src = await folder.open('tokenizer.model');
    const m = parseSentencePieceModel(await src.read(0, src.size));
    const n = Math.max(rows, m.pieces.length);
    const tokens = Array.from({ length: n }, (_, i) => m.pieces[i]?.piece ?? `[PAD${i}]`);
    const types = Array.from({ length: n }, (_, i) => m.pieces[i]?.type ?? 5);
    const scores = Array.from({ length: n }, (_, i) => m.pieces[i]?.score ?? 0);
    for (const [id, t] of Object.entries((config.added_tokens_decoder ?? {}) as Record<string, { content: string; special?: boolean }>)) {
      if (Number(id) < n && Number(id) >= m.pieces.length) {
        tokens[Number(id)] = t.content;
        types[Number(id)] = t.special ? 3 : 4;
      }
    }
    const ts = m.trainerSpec;
    return {
      vocab: {
        tokens,
        scores,
        types,
        bosId: ts.bosId,
        eosId: ts.eosId,
        unkId: ts.unkId,
        padId: Math.max(0, ts.padId),
        addSpacePrefix: m.normalizerSpec.addDummyPrefix,
      },
      chatTemplate,
    };
  }
  return { vocab: null, chatTemplate };
}

export async function cmdExportGguf(argv: string[]): Promise<number> {
  const v = parse(argv, {
    model: { type: 'string' },
    weights: { type: 'string' },
    out: { type: 'string' },
    type: { type: 'string' },
    name: { type: 'string' },
  });
  const out = str(v, 'out');
  if (out === undefined || !out.endsWith('.gguf')) throw new UsageError('export-gguf: --out FILE.gguf is required');
  const type = (str(v, 'type') ?? 'q4_0').toLowerCase() as ExportType;
  if (!TYPES.includes(type)) throw new UsageError(`export-gguf: --type must be one of ${TYPES.join(', ')}, got '${type}'`);
  const m = str(v, 'model');
  const folder: FileProvider = isGgufPath(m) ? await openGgufModel(m) : new NodeFolder(await resolveModelDir(v));
  const config = parseModelConfig(await folder.readText('config.json'), `${folder.location}/config.json`).text;
  const store = await openTensorStore(folder, str(v, 'weights'));
  const { vocab, chatTemplate } = await folderVocab(folder, config.vocabSize);
  const { metadata, tensors } = ggufExport(store, config, { type, vocab, chatTemplate, name: str(v, 'name') ?? 'gemma3n-ts export' });
  const tmp = `${out}.tmp-${process.pid}`;
  const fh = await open(tmp, 'w');
  let bytes = 0;
  try {
    bytes = await writeGguf(
      {
        write: async (b) => {
          await fh.write(b);
        },
      },
      metadata,
      tensors,
    );
  } finally {
    await fh.close();
    await store.close();
  }
  await rename(tmp, out);
  process.stderr.write(
    `wrote ${out}: ${tensors.length} tensors, ${(bytes / 2 ** 20).toFixed(1)} MB, ${type.toUpperCase()}${vocab ? `, ${vocab.tokens.length}-token vocabulary` : ', placeholder vocabulary (the folder has no tokenizer)'}\n`,
  );
  return 0;
}
