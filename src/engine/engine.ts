/**
 * The library API: load a model folder, then generate from a prompt or chat messages,
 * streaming text as an async iterator or through a callback.
 *
 *   const g3n = await Gemma3n.load(folder);
 *   for await (const chunk of g3n.stream([{ role: 'user', content: 'Hi' }], { maxTokens: 64 })) ...
 *   const chat = g3n.chat(); await chat.send('Hello'); await chat.send('And then?');
 */
import type { FileProvider } from '../io/byte_source.js';
import type { Kernels, WeightFormat } from '../kernels/kernels.js';
import { TsKernels } from '../kernels/ts_kernels.js';
import type { ModelConfig } from '../checkpoint/config.js';
import type { StepExplain } from '../model/explain.js';
import { validateSampling, type SamplingOptions } from './sampling.js';
import { Gemma3nTextModel } from '../model/text_model.js';
import { expandMultimodalPlaceholders, renderChat, type ChatMessage, type GemmaTokenizer } from '../tokenizer/index.js';
import type { ImageInput } from '../encoders/vision/index.js';
import type { AudioFeatures } from '../encoders/audio/index.js';
import type { TensorStore } from '../checkpoint/checkpoint.js';
import type { SliceSpec } from '../checkpoint/matformer.js';
import type { LoadOptions } from '../checkpoint/weights.js';
import { Towers, type MediaInput } from './towers.js';
import { checkPlaceholders } from './placeholders.js';
import { loadFolderTokenizer, type FolderTokenizer } from './load_tokenizer.js';
import { StopStringFilter } from './stop_strings.js';
import { generateTokens, type CacheSession, type GenerationMetrics } from './token_stream.js';
import { planStructured, type StructuredOptions } from './structured.js';
import { parseToolCalls, ToolCallScanner, type ToolCall, type ToolCallDelta } from './tools.js';
import { tokenTrieFor } from '../constrain/index.js';
import { BatchScheduler, type SchedulerOptions } from './scheduler.js';

export interface EngineLoadOptions extends LoadOptions {
  kernels?: Kernels;
  format?: WeightFormat;
  weightsFile?: string;
  /** Cut a MatFormer sub-model on the fly (src/checkpoint/matformer.ts). */
  slice?: SliceSpec;
}

export interface GenerateOptions extends SamplingOptions, StructuredOptions {
  /** Default 256. */
  maxTokens?: number;
  /** Generation ends before any of these strings (not included in the text). */
  stop?: string[];
  /** Extra stop ids (EOS and <end_of_turn> are always on for text prompts). */
  stopTokens?: number[];
  signal?: AbortSignal;
  /** Called with each piece of text as it becomes complete. */
  onText?: (text: string) => void;
  /** The explain trace: what the model did to produce each token (see formatExplain). */
  onExplain?: (explain: StepExplain, token: number) => void;
  /** Streams tool calls as they are written (OpenAI's delta.tool_calls pieces). */
  onToolCall?: (delta: ToolCallDelta) => void;
}

export interface GenerationResult {
  text: string;
  ids: number[];
  metrics: GenerationMetrics & { peakMemoryMb: number | null; maskMs?: number };
  /** The calls the answer holds (with `tools`); `text` is then the calls' JSON. */
  toolCalls?: ToolCall[];
}

/** A prompt: raw text (BOS is added), chat messages (rendered by the chat template), or raw ids. */
export type PromptInput = string | readonly ChatMessage[] | { ids: readonly number[]; media?: readonly MediaInput[] };

const memoryMb = (): number | null => {
  const p = (globalThis as { process?: { memoryUsage?: () => { rss: number } } }).process;
  return p?.memoryUsage ? p.memoryUsage().rss / 2 ** 20 : null;
};

export class Gemma3n {
  private chatTemplate: string | undefined;
  /** Set by useScheduler: stream()/generate() calls then share batched steps. */
  scheduler: BatchScheduler | null = null;

  private constructor(
    readonly model: Gemma3nTextModel,
    readonly tokenizer: GemmaTokenizer | null,
    readonly config: ModelConfig,
    private readonly tokenizerConfig: object | undefined,
    /** The audio/vision towers (null for a text-only checkpoint). */
    readonly towers: Towers | null,
    /** The open checkpoint, while towers or a streamed PLE table still read from it. */
    private store: TensorStore | null,
  ) {}

  /**
   * Loads config, text weights, tokenizer (tokenizer.json, else tokenizer.model) and, for a
   * full Gemma 3n checkpoint, the multimodal embedders; the towers load on first use.
   */
  static async load(folder: FileProvider, opts: EngineLoadOptions = {}): Promise<Gemma3n> {
    const kernels = opts.kernels ?? new TsKernels();
    const { model, modelConfig, checkpoint } = await Gemma3nTextModel.load(folder, kernels, opts);
    const towers = modelConfig.modelType === 'gemma3n' ? await Towers.load(checkpoint, modelConfig, kernels, { linearFormat: opts.format === 'q4' ? 'q4' : 'f32' }) : null;
    if (towers) model.hardEmbedders = [towers.visionEmbedder, towers.audioEmbedder].filter((e) => e !== null);
    const keepOpen = model.weights.readsCheckpoint || (towers !== null && (towers.hasAudio || towers.hasVision));
    if (!keepOpen) await checkpoint.close();
    const { tokenizer, tokenizerConfig, chatTemplate } = await loadFolderTokenizer(folder);
    const engine = new Gemma3n(model, tokenizer, modelConfig, tokenizerConfig, towers, keepOpen ? checkpoint : null);
    engine.chatTemplate = chatTemplate;
    return engine;
  }

  /**
   * An engine around a text model loaded some other way (benchmarks, custom weights), with a
   * folder's tokenizer (loadFolderTokenizer) or none (ids only). No audio/vision towers.
   */
  static fromModel(model: Gemma3nTextModel, modelConfig: ModelConfig, tok: FolderTokenizer | null = null): Gemma3n {
    const engine = new Gemma3n(model, tok?.tokenizer ?? null, modelConfig, tok?.tokenizerConfig, null, null);
    engine.chatTemplate = tok?.chatTemplate;
    return engine;
  }

  /** Whether image / audio parts can be given in messages. */
  get supportsImages(): boolean { return this.towers?.hasVision ?? false; }
  get supportsAudio(): boolean { return this.towers?.hasAudio ?? false; }

  /** Frees the audio and vision towers (they reload when a request needs them). */
  releaseTowers(): void {
    this.towers?.release();
  }

  /** Closes the checkpoint files; the engine must not be used afterwards. */
  async dispose(): Promise<void> {
    await this.scheduler?.close();
    this.towers?.release();
    await this.store?.close();
    this.store = null;
  }

  private requireTokenizer(): GemmaTokenizer {
    if (!this.tokenizer) throw new Error('this model folder has no tokenizer.json or tokenizer.model: give token ids instead of text');
    return this.tokenizer;
  }

  /** Image and audio parts of chat messages, in prompt order. */
  private mediaOf(input: PromptInput): MediaInput[] {
    if (typeof input === 'object' && !Array.isArray(input) && 'ids' in input) {
      const media = [...((input as { media?: readonly MediaInput[] }).media ?? [])];
      if (media.some((m) => m.kind === 'image') && !this.supportsImages) throw new Error('this model has no vision tower: images cannot be used');
      if (media.some((m) => m.kind === 'audio') && !this.supportsAudio) throw new Error('this model has no audio tower: audio cannot be used');
      return media;
    }
    if (!Array.isArray(input)) return [];
    const media: MediaInput[] = [];
    for (const m of input as ChatMessage[]) {
      if (typeof m.content === 'string') continue;
      for (const part of m.content) {
        if (part.type === 'image') {
          if (!this.supportsImages) throw new Error('this model has no vision tower: image parts cannot be used');
          const p = part as { image?: ImageInput; pixelValues?: Float32Array };
          if (!p.image && !p.pixelValues) throw new Error('an image part needs `image` (PNG/JPEG bytes or RGB pixels) or `pixelValues`');
          media.push({ kind: 'image', image: p.image, pixelValues: p.pixelValues });
        } else if (part.type === 'audio') {
          if (!this.supportsAudio) throw new Error('this model has no audio tower: audio parts cannot be used');
          const p = part as { audio?: Uint8Array | Float32Array; features?: AudioFeatures };
          if (!p.audio && !p.features) throw new Error('an audio part needs `audio` (WAV bytes or 16 kHz mono samples) or `features`');
          media.push({ kind: 'audio', audio: p.audio, features: p.features });
        }
      }
    }
    return media;
  }

  /** Turns a prompt into ids (chat messages through the chat template). */
  encodePrompt(input: PromptInput): number[] {
    if (typeof input === 'string') {
      if (input.length === 0) throw new RangeError('the prompt is empty');
      // Text typed by a user: control-token text stays plain text.
      return this.requireTokenizer().encode(input, { addBos: true });
    }
    if (Array.isArray(input)) {
      const text = renderChat(input as ChatMessage[], { template: this.chatTemplate, tokenizerConfig: this.tokenizerConfig });
      // Each image/audio placeholder becomes begin marker + N soft-token ids + end marker.
      const expanded = this.towers ? expandMultimodalPlaceholders(text, { imageTokens: this.towers.imageTokens, audioTokens: this.towers.audioTokens }) : text;
      return this.requireTokenizer().encode(expanded, { parseSpecial: true });
    }
    const ids = (input as { ids: readonly number[] }).ids;
    if (!Array.isArray(ids) || ids.length === 0) throw new RangeError('the prompt is empty');
    return [...ids];
  }

  /** Ids that end a turn: EOS ids of the config and <end_of_turn>. */
  defaultStopTokens(): number[] {
    const ids = new Set(this.model.config.eosTokenIds);
    const eot = this.tokenizer?.specialIds.endOfTurn;
    if (eot !== undefined) ids.add(eot);
    return [...ids];
  }

  /**
   * Serves several stream()/generate() calls at once (continuous batching, scheduler.ts): from
   * now on they decode together in batched steps, prompts are prefilled in chunks between
   * decode steps, and finished conversations' K/V are kept for prefix reuse. Outputs are the
   * same as without it. Chat sessions go through it too (each turn starts from the session's
   * cache); only `onExplain` runs keep running one by one.
   */
  useScheduler(opts: SchedulerOptions = {}): BatchScheduler {
    // A replaced scheduler finishes what it runs, then frees its prefix cache.
    void this.scheduler?.close();
    this.scheduler = new BatchScheduler(this.model, opts);
    return this.scheduler;
  }

  /** Streams generated text. The return value of the iterator is the full result. */
  async *stream(input: PromptInput, opts: GenerateOptions = {}, session?: CacheSession): AsyncGenerator<string, GenerationResult> {
    validateSampling(opts);
    const plan = planStructured(Array.isArray(input) ? (input as ChatMessage[]) : null, opts);
    if (plan.messages) input = plan.messages;
    const media = this.mediaOf(input);
    const ids = this.encodePrompt(input);
    if (media.length > 0) {
      const t = this.towers!;
      checkPlaceholders(ids, media, { imageTokenId: this.config.imageTokenId ?? 262_145, audioTokenId: this.config.audioTokenId ?? 262_273, imageTokens: t.imageTokens, audioTokens: t.audioTokens });
    }
    const inputsEmbeds = media.length > 0 ? await this.towers!.mergedEmbeddings(this.model, ids, media) : undefined;
    const rawIds = !Array.isArray(input) && typeof input !== 'string';
    const stopTokens = [...(rawIds ? [] : this.defaultStopTokens()), ...(opts.stopTokens ?? [])];
    const metrics: Partial<GenerationMetrics> = {};
    const decoder = this.tokenizer?.createStreamDecoder();
    const stops = new StopStringFilter(opts.stop ?? []);
    // Structured output: the end tokens close the value, so there must be one (raw ids: EOS).
    if (plan.grammar && stopTokens.length === 0) stopTokens.push(...this.defaultStopTokens());
    const constraint = plan.grammar ? plan.grammar.constraint(tokenTrieFor(this.requireTokenizer(), this.model.config.vocabSize), stopTokens) : undefined;
    const scanner = plan.callTools ? new ToolCallScanner() : null;
    const stopSet = new Set(stopTokens);
    const out: number[] = [];
    let text = '';
    const emit = (piece: string) => {
      if (!piece) return;
      text += piece;
      opts.onText?.(piece);
      if (scanner) for (const d of scanner.push(piece)) opts.onToolCall?.(d);
    };
    const tokenOpts = { ...opts, maxTokens: opts.maxTokens ?? 256, stopTokens, session, inputsEmbeds, constraint };
    const batched = this.scheduler !== null && !opts.onExplain;
    const gen = batched ? this.scheduler!.generate(ids, tokenOpts, metrics) : generateTokens(this.model, ids, tokenOpts, metrics);
    for (;;) {
      const r = await gen.next();
      if (r.done) break;
      const id = r.value;
      out.push(id);
      if (stopSet.has(id) || !decoder) continue; // the stop token itself is not text
      // The embedding table can be larger than the tokenizer (Gemma 3n: 262,400 rows); an id
      // past the tokenizer's pieces has no text. Sampled ids are kept, only their text is empty.
      if (id >= this.tokenizer!.vocabSize) continue;
      const piece = stops.push(decoder.push(id));
      if (piece) {
        emit(piece);
        yield piece;
      }
      if (stops.stopped) {
        await gen.return(undefined as never);
        break;
      }
    }
    if (decoder && !stops.stopped) {
      const tail = stops.push(decoder.flush()) + stops.flush();
      if (tail) {
        emit(tail);
        yield tail;
      }
    }
    const m = metrics as GenerationMetrics;
    if (stops.stopped) m.stopReason = 'stop_token';
    const result: GenerationResult = { text, ids: out, metrics: { ...m, peakMemoryMb: memoryMb() } };
    if (constraint) result.metrics.maskMs = constraint.maskMs;
    // A call counts only when the value was finished (an end token), never cut by max tokens.
    if (plan.callTools && constraint?.finished) {
      const calls = parseToolCalls(text, plan.callTools, scanner ?? undefined);
      if (calls) result.toolCalls = calls;
    }
    return result;
  }

  /** Generates to completion; `onText` streams pieces as they come. */
  async generate(input: PromptInput, opts: GenerateOptions = {}, session?: CacheSession): Promise<GenerationResult> {
    const it = this.stream(input, opts, session);
    for (;;) {
      const r = await it.next();
      if (r.done) return r.value;
    }
  }

  /** A multi-turn conversation that keeps its KV cache between turns. */
  chat(system?: string): ChatSession {
    return new ChatSession(this, system);
  }
}

export class ChatSession {
  readonly messages: ChatMessage[] = [];
  private readonly cache: CacheSession = { cache: null, ids: [] };

  constructor(private readonly engine: Gemma3n, system?: string) {
    if (system) this.messages.push({ role: 'system', content: system });
  }

  /** Sends a user message and streams the model's reply; the reply joins the history. */
  async *stream(content: ChatMessage['content'], opts: GenerateOptions = {}): AsyncGenerator<string, GenerationResult> {
    this.messages.push({ role: 'user', content });
    let result: GenerationResult;
    try {
      result = yield* this.engine.stream(this.messages, opts, this.cache);
    } catch (e) {
      this.messages.pop(); // a failed turn leaves the history as it was
      throw e;
    }
    // A reply that called tools keeps its calls, so tool results can follow (src/engine/tools.ts).
    this.messages.push({ role: 'assistant', content: result.text, ...(result.toolCalls ? { toolCalls: result.toolCalls } : {}) } as ChatMessage);
    return result;
  }

  async send(content: ChatMessage['content'], opts: GenerateOptions = {}): Promise<GenerationResult> {
    const it = this.stream(content, opts);
    for (;;) {
      const r = await it.next();
      if (r.done) return r.value;
    }
  }
}
