export {
  GemmaTokenizer,
  type EncodeOptions,
  type DecodeOptions,
  type StreamDecoder,
  type GemmaSpecialIds,
} from './tokenizer.js';
export type { AddedTokenSpec } from './spec.js';
export { loadTokenizerFromFiles, chatTemplateFromConfig, type TokenizerFiles } from './load.js';
export {
  renderChat,
  expandMultimodalPlaceholders,
  GEMMA3N_CHAT_TEMPLATE,
  type ChatMessage,
  type ChatContentPart,
  type RenderChatOptions,
  type ExpandOptions,
  type ExpandIdsOptions,
} from './chat_template.js';
export { parseSentencePieceModel, PieceType, type SentencePieceModel } from './sentencepiece_model.js';
