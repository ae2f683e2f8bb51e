/**
 * The model-family seam: config.json's `model_type` picks the decoder and the towers.
 *
 *   gemma3n / gemma3n_text   → Gemma3nTextModel (text_model.ts) + Towers (towers.ts)
 *   gemma4  / gemma4_text    → Gemma4TextModel (gemma4_text_model.ts) + Gemma4Towers (gemma4_towers.ts)
 *
 * Both decoders are a CausalLM (src/model/causal_lm.ts), so everything above this file —
 * generation, chat sessions, the batching scheduler, the prefix cache, the server — is shared.
 * What else differs per family sits here: the default chat template and the tokens that end a turn.
 */
import type { TensorStore } from '../checkpoint/checkpoint.js';
import type { ModelConfig } from '../checkpoint/config.js';
import { isGemma4Config, type Gemma4Config } from '../checkpoint/gemma4_config.js';
import type { SliceSpec } from '../checkpoint/matformer.js';
import type { LoadOptions } from '../checkpoint/weights.js';
import type { FileProvider } from '../io/byte_source.js';
import type { Kernels, WeightFormat } from '../kernels/kernels.js';
import type { CausalLM } from '../model/causal_lm.js';
import { Gemma4TextModel } from '../model/gemma4_text_model.js';
import { Gemma3nTextModel } from '../model/text_model.js';
import { GEMMA3N_CHAT_TEMPLATE } from '../tokenizer/chat_template.js';
import { GEMMA4_CHAT_TEMPLATE, GEMMA4_STOP_PIECES } from '../tokenizer/gemma4_chat_template.js';
import { Gemma4Towers } from './gemma4_towers.js';
import type { MediaTowers } from './media.js';
import { Towers } from './towers.js';

export type ModelFamily = 'gemma3n' | 'gemma4';

export interface FamilyLoadOptions extends LoadOptions {
  format?: WeightFormat;
  weightsFile?: string;
  /** MatFormer sub-model (Gemma 3n only). */
  slice?: SliceSpec;
  /** Gemma 4: soft-token budget per image (70, 140, 280 = default, 560, 1120). */
  imageSoftTokens?: number;
}

export interface LoadedFamily {
  family: ModelFamily;
  model: CausalLM;
  config: ModelConfig | Gemma4Config;
  /** Gemma 3n's towers (also `media`), kept under their own type for Gemma 3n-only callers. */
  gemma3nTowers: Towers | null;
  media: MediaTowers | null;
  checkpoint: TensorStore;
  /** The chat template when the folder has none. */
  defaultChatTemplate: string;
  /** Pieces that end a model turn besides the config's EOS ids. */
  stopPieces: readonly string[];
}

/** The family of a config.json's text (unknown model types fall to Gemma 3n, whose parser names the problem). */
export function familyOf(configText: string): ModelFamily {
  let raw: unknown = null;
  try {
    raw = JSON.parse(configText);
  } catch {
    /* the family's parser reports it */
  }
  return isGemma4Config(raw) ? 'gemma4' : 'gemma3n';
}

export async function loadModelFamily(folder: FileProvider, kernels: Kernels, opts: FamilyLoadOptions = {}): Promise<LoadedFamily> {
  const family = familyOf(await folder.readText('config.json'));
  if (family === 'gemma4') {
    if (opts.slice)
      throw new Error(
        `${folder.location}/config.json: MatFormer slicing (--preset, --layers-to-skip, --ffn) is a Gemma 3n feature; this is a Gemma 4 checkpoint`,
      );
    const { model, modelConfig, checkpoint } = await Gemma4TextModel.load(folder, kernels, opts);
    const towers =
      modelConfig.visionConfig !== null || modelConfig.audioConfig !== null
        ? new Gemma4Towers(checkpoint, modelConfig, kernels, { imageSoftTokens: opts.imageSoftTokens })
        : null;
    return {
      family,
      model,
      config: modelConfig,
      gemma3nTowers: null,
      media: towers,
      checkpoint,
      defaultChatTemplate: GEMMA4_CHAT_TEMPLATE,
      stopPieces: GEMMA4_STOP_PIECES,
    };
  }
  const { model, modelConfig, checkpoint } = await Gemma3nTextModel.load(folder, kernels, opts);
  const towers =
    modelConfig.modelType === 'gemma3n' ? await Towers.load(checkpoint, modelConfig, kernels, { linearFormat: opts.format === 'q4' ? 'q4' : 'f32' }) : null;
  if (towers) model.hardEmbedders = [towers.visionEmbedder, towers.audioEmbedder].filter((e) => e !== null);
  return {
    family,
    model,
    config: modelConfig,
    gemma3nTowers: towers,
    media: towers,
    checkpoint,
    defaultChatTemplate: GEMMA3N_CHAT_TEMPLATE,
    stopPieces: ['<end_of_turn>'],
  };
}
