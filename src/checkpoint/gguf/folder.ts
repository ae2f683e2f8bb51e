/**
 * A GGUF file as a model folder (FileProvider): `config.json` from the `gemma3n.*` / `gemma4.*` metadata (arch.ts),
 * `tokenizer.model` rebuilt from `tokenizer.ggml.*` (src/tokenizer/gguf_vocab.ts),
 * `tokenizer_config.json` / `chat_template.jinja` from `tokenizer.chat_template`, and
 * `model.gguf`, the file itself. The engine loads it like any folder; `openTensorStore`
 * (src/checkpoint/open_store.ts) turns `model.gguf` into a GgufStore.
 */
import type { ByteSource, FileProvider } from '../../io/byte_source.js';
import { sentencePieceProto, type GgufVocab } from '../../tokenizer/gguf_vocab.js';
import { CheckpointError } from '../safetensors.js';
import { ggufTextConfig } from './arch.js';
import { GgufFile } from './reader.js';

export const GGUF_FILE = 'model.gguf';

/** The tokenizer of a GGUF file, when it carries a SentencePiece ("llama") vocabulary. */
export function ggufVocab(f: GgufFile): GgufVocab | null {
  const model = f.has('tokenizer.ggml.model') ? f.str('tokenizer.ggml.model') : null;
  if (model === null) return null;
  if (model === 'gemma4') return null; // Gemma 4's BPE vocabulary (tokens + merges) is not rebuilt yet: give the tokenizer files beside the GGUF, or --ids
  if (model !== 'llama') throw new CheckpointError(`${f.name}: metadata 'tokenizer.ggml.model' is '${model}'; Gemma 3n uses 'llama' (SentencePiece)`);
  const tokens =
    f.strings('tokenizer.ggml.tokens') ??
    (() => {
      throw new CheckpointError(`${f.name}: metadata 'tokenizer.ggml.tokens' is missing`);
    })();
  const scores = f.numbers('tokenizer.ggml.scores') ?? new Array<number>(tokens.length).fill(0);
  const types = f.numbers('tokenizer.ggml.token_type') ?? new Array<number>(tokens.length).fill(1);
  if (scores.length !== tokens.length || types.length !== tokens.length)
    throw new CheckpointError(`${f.name}: tokenizer.ggml.tokens has ${tokens.length} entries but scores ${scores.length} and token_type ${types.length}`);
  for (let i = 0; i < types.length; i++)
    if (!(types[i] >= 1 && types[i] <= 6))
      throw new CheckpointError(`${f.name}: metadata 'tokenizer.ggml.token_type'[${i}] is ${types[i]}, not a token type (1-6)`);
  const id = (k: string, def: number) => {
    const v = f.num(k, def);
    if (v >= tokens.length) throw new CheckpointError(`${f.name}: metadata '${k}' is ${v}, past the ${tokens.length} tokens`);
    return v;
  };
  return {
    tokens,
    scores,
    types,
    bosId: id('tokenizer.ggml.bos_token_id', 2),
    eosId: id('tokenizer.ggml.eos_token_id', 1),
    unkId: id('tokenizer.ggml.unknown_token_id', 3),
    padId: id('tokenizer.ggml.padding_token_id', 0),
    addSpacePrefix: f.bool('tokenizer.ggml.add_space_prefix', false),
  };
}

export class GgufFolder implements FileProvider {
  private readonly texts = new Map<string, string>();
  private tokenizerModel: Uint8Array | null = null;

  private constructor(readonly gguf: GgufFile) {}

  get location(): string {
    return this.gguf.name;
  }

  static async open(source: ByteSource): Promise<GgufFolder> {
    const f = await GgufFile.open(source);
    const folder = new GgufFolder(f);
    folder.texts.set('config.json', JSON.stringify(await ggufTextConfig(f), null, 2));
    const vocab = ggufVocab(f);
    if (vocab) folder.tokenizerModel = sentencePieceProto(vocab);
    const template = f.has('tokenizer.chat_template') ? f.str('tokenizer.chat_template') : undefined;
    if (template !== undefined) folder.texts.set('chat_template.jinja', template);
    if (vocab) {
      folder.texts.set(
        'tokenizer_config.json',
        JSON.stringify({
          add_bos_token: f.bool('tokenizer.ggml.add_bos_token', true),
          add_eos_token: f.bool('tokenizer.ggml.add_eos_token', false),
          bos_token: vocab.tokens[vocab.bosId],
          eos_token: vocab.tokens[vocab.eosId],
          pad_token: vocab.tokens[vocab.padId],
          unk_token: vocab.tokens[vocab.unkId],
          ...(template !== undefined ? { chat_template: template } : {}),
        }),
      );
    }
    return folder;
  }

  async exists(name: string): Promise<boolean> {
    return this.texts.has(name) || name === GGUF_FILE || (name === 'tokenizer.model' && this.tokenizerModel !== null);
  }

  async open(name: string): Promise<ByteSource> {
    if (name === GGUF_FILE) return this.gguf.source;
    const bytes = name === 'tokenizer.model' ? this.tokenizerModel : this.texts.has(name) ? new TextEncoder().encode(this.texts.get(name)!) : null;
    if (!bytes) throw new Error(`${this.location}: no '${name}' in this GGUF file`);
    const { MemorySource } = await import('../../io/byte_source.js');
    return new MemorySource(bytes, `${this.location}:${name}`);
  }

  async readText(name: string): Promise<string> {
    const t = this.texts.get(name);
    if (t === undefined) throw new Error(`${this.location}: no '${name}' in this GGUF file`);
    return t;
  }
}
