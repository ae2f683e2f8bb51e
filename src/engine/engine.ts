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
import { isGemma4Config, type Gemma4Config } from '../checkpoint/gemma4_config.js';
import type { StepExplain } from '../model/explain.js';
import type { CausalLM } from '../model/causal_lm.js';
import { validateSampling, type SamplingOptions } from './sampling.js';
import { chatTemplateFromConfig, renderChat, type ChatMessage, type GemmaTokenizer } from '../tokenizer/index.js';
import type { ImageInput } from '../encoders/vision/index.js';
import type { AudioFeatures } from '../encoders/audio/index.js';
import type { TensorStore } from '../checkpoint/checkpoint.js';
import type { Towers } from './towers.js';
import type { MediaInput, MediaTowers, PreparedMedia } from './media.js';
import { loadModelFamily, type FamilyLoadOptions, type ModelFamily } from './model_family.js';
import { GEMMA3N_CHAT_TEMPLATE } from '../tokenizer/chat_template.js';
import { GEMMA4_CHAT_TEMPLATE, GEMMA4_STOP_PIECES } from '../tokenizer/gemma4_chat_template.js';
import { loadFolderTokenizer, type FolderTokenizer } from './load_tokenizer.js';
import { StopStringFilter } from './stop_strings.js';
import { generateTokens, type CacheSession, type GenerationMetrics } from './token_stream.js';
import { planStructured, type StructuredOptions } from './structured.js';
import { parseToolCalls, ToolCallScanner, type ToolCall, type ToolCallDelta } from './tools.js';
import { tokenTrieFor } from '../constrain/index.js';
import { BatchScheduler, type SchedulerOptions } from './scheduler.js';

/** Weight loading (LoadOptions), `slice` (Gemma 3n MatFormer) and `imageSoftTokens` (Gemma 4): model_family.ts. */
export interface EngineLoadOptions extends FamilyLoadOptions {
  kernels?: Kernels;
  format?: WeightFormat;
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

/**
 * The engine, for Gemma 3n and Gemma 4 checkpoints alike (config.json's model_type picks the
 * family, model_family.ts); the class keeps the project's name.
 */
export class Gemma3n {
  private chatTemplate: string | undefined;
  /** The family's chat template, for folders that ship none. */
  private defaultChatTemplate = GEMMA3N_CHAT_TEMPLATE;
  /** Pieces that end a model turn besides EOS: <end_of_turn> (Gemma 3n), <turn|> (Gemma 4). */
  private stopPieces: readonly string[] = ['<end_of_turn>'];
  /** 'gemma3n' or 'gemma4'. */
  family: ModelFamily = 'gemma3n';
  /** Set by useScheduler: stream()/generate() calls then share batched steps. */
  scheduler: BatchScheduler | null = null;

  /** Gemma 3n's audio/vision towers (null for Gemma 4 or a text-only checkpoint); `media` covers both families. */
  readonly towers: Towers | null = null;

  private constructor(
    readonly model: CausalLM,
    readonly tokenizer: GemmaTokenizer | null,
    readonly config: ModelConfig | Gemma4Config,
    private readonly tokenizerConfig: object | undefined,
    /** The audio/vision towers of either family (null for a text-only checkpoint). */
    readonly media: MediaTowers | null,
    /** The open checkpoint, while towers or a streamed PLE table still read from it. */
    private store: TensorStore | null,
  ) {}

  /**
   * Loads config, text weights, tokenizer (tokenizer.json, else tokenizer.model) and, for a
   * full checkpoint, what the towers need up front (Gemma 3n: the multimodal embedders); the
   * towers load on first use. config.json's model_type picks Gemma 3n or Gemma 4.
   */
  static async load(folder: FileProvider, opts: EngineLoadOptions = {}): Promise<Gemma3n> {
    const kernels = opts.kernels ?? new TsKernels();
    // The tokenizer loads while the weights stream in (their file reads run on other threads).
    const tok = loadFolderTokenizer(folder);
    tok.catch(() => {}); // awaited below; a failed weight load must not leave it unhandled
    // A packed folder's weights keep arriving while the first prompt runs (LoadOptions.background:
    // the forward pass awaits each layer just before using it; `background: false` waits for all).
    const f = await loadModelFamily(folder, kernels, { ...opts, background: opts.background ?? true });
    const keepOpen = f.model.readsCheckpoint || (f.media !== null && (f.media.hasAudio || f.media.hasVision));
    if (!keepOpen) await f.checkpoint.close();
    const { tokenizer, tokenizerConfig, chatTemplate } = await tok;
    const engine = new Gemma3n(f.model, tokenizer, f.config, tokenizerConfig, f.media, keepOpen ? f.checkpoint : null);
    Object.assign(engine, { towers: f.gemma3nTowers });
    engine.chatTemplate = chatTemplate;
    engine.family = f.family;
    engine.defaultChatTemplate = f.defaultChatTemplate;
    engine.stopPieces = f.stopPieces;
    return engine;
  }

  /**
   * An engine around a text model loaded some other way (benchmarks, custom weights), with a
   * folder's tokenizer (loadFolderTokenizer) or none (ids only). No audio/vision towers.
   */
  static fromModel(model: CausalLM, modelConfig: ModelConfig | Gemma4Config, tok: FolderTokenizer | null = null): Gemma3n {
    const engine = new Gemma3n(model, tok?.tokenizer ?? null, modelConfig, tok?.tokenizerConfig, null, null);
    engine.chatTemplate = tok?.chatTemplate;
    if (isGemma4Config(modelConfig.raw)) {
      engine.family = 'gemma4';
      engine.defaultChatTemplate = GEMMA4_CHAT_TEMPLATE;
      engine.stopPieces = GEMMA4_STOP_PIECES;
    }
    return engine;
  }

  /** Whether image / audio parts can be given in messages. */
  get supportsImages(): boolean {
    return this.media?.hasVision ?? false;
  }
  get supportsAudio(): boolean {
    return this.media?.hasAudio ?? false;
  }

  /** Frees the audio and vision towers (they reload when a request needs them). */
  releaseTowers(): void {
    this.media?.release();
  }

  /** Closes the checkpoint files; the engine must not be used afterwards. */
  async dispose(): Promise<void> {
    await this.scheduler?.close();
    this.media?.release();
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

  /**
   * Turns a prompt into ids (chat messages through the chat template). With `prepared` media
   * (MediaTowers.prepare), each image/audio placeholder the template wrote is expanded into
   * the family's begin marker + soft-token placeholders + end marker; without, they stay one
   * placeholder each (enough to count a prompt's text tokens).
   */
  encodePrompt(input: PromptInput, prepared?: PreparedMedia): number[] {
    if (typeof input === 'string') {
      if (input.length === 0) throw new RangeError('the prompt is empty');
      // Text typed by a user: control-token text stays plain text.
      return this.requireTokenizer().encode(input, { addBos: true });
    }
    if (Array.isArray(input)) {
      // The folder's template (chat_template.jinja, tokenizer_config.json) wins over the family's.
      const template = this.chatTemplate ?? (this.tokenizerConfig ? chatTemplateFromConfig(this.tokenizerConfig) : undefined) ?? this.defaultChatTemplate;
      const text = renderChat(input as ChatMessage[], { template });
      // Each image/audio placeholder becomes begin marker + N soft-token ids + end marker.
      return this.requireTokenizer().encode(prepared ? prepared.expandText(text) : text, { parseSpecial: true });
    }
    const ids = (input as { ids: readonly number[] }).ids;
    if (!Array.isArray(ids) || ids.length === 0) throw new RangeError('the prompt is empty');
    return [...ids];
  }

  /** Ids that end a turn: EOS ids of the config and the family's end-of-turn (<end_of_turn>, <turn|>). */
  defaultStopTokens(): number[] {
    const ids = new Set(this.model.config.eosTokenIds);
    for (const piece of this.stopPieces) {
      const id = this.tokenizer?.pieceToId(piece);
      if (id !== undefined) ids.add(id);
    }
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
    // Media are preprocessed first: a Gemma 4 image's token count depends on its size.
    const prepared = media.length > 0 ? await this.media!.prepare(media) : undefined;
    const ids = this.encodePrompt(input, prepared);
    const inputsEmbeds = prepared ? await prepared.embed(this.model, ids) : undefined;
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

  constructor(
    private readonly engine: Gemma3n,
    system?: string,
  ) {
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
