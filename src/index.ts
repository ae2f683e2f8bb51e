/**
 * gemma3n-ts public API (runtime-neutral). Node adapters: `gemma3n-ts/node` (NodeFolder,
 * createNodeWasmKernels); Deno: dist/src/deno/fs_folder.js (DenoFolder) and dist/src/deno/wasm_host.js
 * (createDenoWasmKernels); browsers: MemoryFolder / BlobSource.
 */
export { Gemma3n, ChatSession, type GenerateOptions, type GenerationResult, type PromptInput, type EngineLoadOptions } from './engine/engine.js';
export type { GenerationMetrics, CacheSession } from './engine/token_stream.js';
export { BatchScheduler, SchedulerFullError, SchedulerClosedError, type SchedulerOptions, type SchedulerStats } from './engine/scheduler.js';
export { PrefixCache, type PrefixCacheStats } from './engine/prefix_cache.js';
export { formatExplain } from './trace/explain_format.js';
export type { MediaInput } from './engine/towers.js';
export { traceRun, traceAudioRun, traceVisionRun } from './trace/run.js';
export { MemorySource, BlobSource, MemoryFolder, type ByteSource, type FileProvider } from './io/byte_source.js';
export type { Kernels, LinearWeight, WeightFormat, AttentionParams } from './kernels/kernels.js';
export { TsKernels } from './kernels/ts_kernels.js';
export { WasmKernels } from './kernels/wasm_kernels.js';
export { Q4Matrix } from './kernels/q4.js';
export { Gemma3nTextModel, type ForwardOptions } from './model/text_model.js';
export { Gemma4TextModel } from './model/gemma4_text_model.js';
export type { CausalLM, CausalLMConfig, BatchSequence, ForwardResult } from './model/causal_lm.js';
export { parseGemma4Config, isGemma4Config, type Gemma4Config, type Gemma4TextConfig } from './checkpoint/gemma4_config.js';
export { loadModelFamily, familyOf, type ModelFamily } from './engine/model_family.js';
export type { MediaTowers, PreparedMedia } from './engine/media.js';
export { GEMMA4_CHAT_TEMPLATE } from './tokenizer/gemma4_chat_template.js';
export { parseModelConfig, parseTextConfig, type ModelConfig, type TextConfig } from './checkpoint/config.js';
export { Checkpoint, type TensorStore } from './checkpoint/checkpoint.js';
export { SafetensorsFile, writeSafetensors, CheckpointError } from './checkpoint/safetensors.js';
export { MATFORMER_PRESETS, SlicedStore, slicedConfig, type SliceSpec } from './checkpoint/matformer.js';
export { GgufFile, type GgufTensorInfo, type GgufValue } from './checkpoint/gguf/reader.js';
export { GgufFolder } from './checkpoint/gguf/folder.js';
export { GgufStore } from './checkpoint/gguf/store.js';
export { writeGguf, MemorySink, type ByteSink, type GgufKV, type GgufTensorToWrite } from './checkpoint/gguf/writer.js';
export { ggufExport, type ExportType } from './checkpoint/gguf/export.js';
export type { StepExplain, LayerExplain } from './model/explain.js';
export type { Tracer } from './model/trace.js';
export { Sampler, type SamplingOptions } from './engine/sampling.js';
export { GemmaTokenizer, loadTokenizerFromFiles, renderChat, expandMultimodalPlaceholders, type ChatMessage } from './tokenizer/index.js';
export { loadFolderTokenizer, type FolderTokenizer } from './engine/load_tokenizer.js';
export {
  createBrowserWasmKernels,
  browserWasmHost,
  browserWasmUrls,
  HttpFolder,
  cacheApiStore,
  type ByteStore,
  type HttpFolderOptions,
  type HttpProgress,
} from './browser/index.js';
