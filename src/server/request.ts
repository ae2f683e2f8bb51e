/**
 * Request bodies → engine calls: validation of the OpenAI chat-completions body and of the
 * simple /chat and /analyze-image bodies, with a 400 naming the field for anything wrong.
 * Runtime-neutral (no Node APIs), so a Deno or browser front end can reuse it.
 *
 * Multimodal parts become ChatMessage parts the engine reads:
 *   {type:'image', image: Uint8Array}   PNG or JPEG file bytes
 *   {type:'audio', audio: Uint8Array}   WAV file bytes
 */
import type { GenerateOptions } from '../engine/engine.js';
import type { ChatContentPart, ChatMessage } from '../tokenizer/chat_template.js';
import { badRequest, HttpError } from './errors.js';
import { hasToolTurns, parseStructured, parseToolMessages } from './structured.js';

/** What the server needs to know about the loaded model besides generation. */
export interface ModelCapabilities {
  supportsImages: boolean;
  supportsAudio: boolean;
}

export interface ParsedCompletion {
  messages: ChatMessage[];
  /** Sampling and stop options; maxTokens is undefined when the client gave none. */
  opts: GenerateOptions;
  stream: boolean;
  includeUsage: boolean;
}

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const typeName = (v: unknown): string => (v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v);

/** Parses a request body as a JSON object, or throws a 400. */
export function parseJsonBody(text: string): Json {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (e) {
    throw new HttpError(400, `request body is not valid JSON: ${(e as Error).message}`, 'invalid_request_error', null, 'invalid_json');
  }
  if (!isObject(body)) throw new HttpError(400, `request body must be a JSON object, got ${typeName(body)}`, 'invalid_request_error', null, 'invalid_json');
  return body;
}

function num(body: Json, key: string, rule: (x: number) => boolean, ruleText: string, integer = false): number | undefined {
  const v = body[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v)) throw badRequest(key, `'${key}' must be a number, got ${typeName(v)}`, 'invalid_type');
  if (integer && !Number.isInteger(v)) throw badRequest(key, `'${key}' must be an integer, got ${v}`);
  if (!rule(v)) throw badRequest(key, `'${key}' ${ruleText}, got ${v}`);
  return v;
}

function bool(body: Json, key: string): boolean | undefined {
  const v = body[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'boolean') throw badRequest(key, `'${key}' must be a boolean, got ${typeName(v)}`, 'invalid_type');
  return v;
}

function string(body: Json, key: string, required: boolean, where = key): string | undefined {
  const v = body[key];
  if (v === undefined || v === null) {
    if (required) throw badRequest(where, `'${where}' is required`, 'missing_required_parameter');
    return undefined;
  }
  if (typeof v !== 'string') throw badRequest(where, `'${where}' must be a string, got ${typeName(v)}`, 'invalid_type');
  return v;
}

/**
 * The OpenAI penalties map onto the engine's one repetition penalty (CTRL-style, applied once
 * to every token already seen, whatever its count): p = max(frequency_penalty, presence_penalty)
 * in [-2, 2] gives repetition_penalty = 1 + p/2 for p >= 0 and 1 / (1 - p/2) for p < 0,
 * so 0 → 1 (off), 2 → 2, -2 → 0.5. An explicit repetition_penalty wins.
 */
export function penaltyToRepetition(p: number): number {
  return p >= 0 ? 1 + p / 2 : 1 / (1 - p / 2);
}

/** Sampling fields shared by every route (snake_case as in the OpenAI API). */
export function parseSampling(body: Json): GenerateOptions {
  const maxTokens = num(body, 'max_completion_tokens', (x) => x >= 1, 'must be >= 1', true) ?? num(body, 'max_tokens', (x) => x >= 1, 'must be >= 1', true);
  const temperature = num(body, 'temperature', (x) => x >= 0 && x <= 2, 'must be in [0, 2]');
  const topP = num(body, 'top_p', (x) => x > 0 && x <= 1, 'must be in (0, 1]');
  const topK = num(body, 'top_k', (x) => x >= 0, 'must be >= 0 (0 = off)', true);
  const minP = num(body, 'min_p', (x) => x >= 0 && x < 1, 'must be in [0, 1)');
  const seed = num(body, 'seed', (x) => Number.isSafeInteger(x), 'must be a safe integer', true);
  const freq = num(body, 'frequency_penalty', (x) => x >= -2 && x <= 2, 'must be in [-2, 2]');
  const pres = num(body, 'presence_penalty', (x) => x >= -2 && x <= 2, 'must be in [-2, 2]');
  let repetitionPenalty = num(body, 'repetition_penalty', (x) => x > 0, 'must be > 0 (1 = off)');
  if (repetitionPenalty === undefined && (freq !== undefined || pres !== undefined)) {
    const p = Math.max(freq ?? -Infinity, pres ?? -Infinity);
    if (p !== 0) repetitionPenalty = penaltyToRepetition(p);
  }
  let stop: string[] | undefined;
  const s = body.stop;
  if (typeof s === 'string') stop = [s];
  else if (Array.isArray(s)) stop = s;
  else if (s !== undefined && s !== null) throw badRequest('stop', `'stop' must be a string or an array of strings, got ${typeName(s)}`, 'invalid_type');
  if (stop) {
    if (stop.length > 4) throw badRequest('stop', `'stop' takes at most 4 strings, got ${stop.length}`);
    stop.forEach((x, i) => {
      if (typeof x !== 'string' || x.length === 0) throw badRequest(`stop[${i}]`, `'stop[${i}]' must be a non-empty string`);
    });
    if (stop.length === 0) stop = undefined;
  }
  const opts: GenerateOptions = { maxTokens, temperature, topP, topK, minP, seed, repetitionPenalty, stop };
  for (const k of Object.keys(opts) as (keyof GenerateOptions)[]) if (opts[k] === undefined) delete opts[k];
  return opts;
}

/** base64 (standard or URL-safe, padding optional) → bytes; undefined when not base64. */
export function decodeBase64(text: string): Uint8Array | undefined {
  const clean = text.replace(/\s+/g, '');
  if (clean.length === 0 || !/^[A-Za-z0-9+/_-]*={0,2}$/.test(clean) || clean.length % 4 === 1) return undefined;
  const std = clean.replace(/-/g, '+').replace(/_/g, '/').replace(/=+$/, '');
  const bin = atob(std + '='.repeat((4 - (std.length % 4)) % 4));
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

const IMAGE_TYPES = new Set(['image/png', 'image/jpeg', 'image/jpg']);

/** An image given as a data URL ("data:image/png;base64,...") or bare base64 → file bytes. */
export function decodeImage(value: unknown, param: string): Uint8Array {
  if (typeof value !== 'string') throw badRequest(param, `'${param}' must be a string (a data: URL or base64), got ${typeName(value)}`, 'invalid_type');
  let payload = value;
  if (/^https?:/i.test(value))
    throw badRequest(param, `'${param}': the server does not fetch URLs; send the image inline as a data:image/png;base64,... URL`, 'unsupported_value');
  if (value.startsWith('data:')) {
    const m = /^data:([^;,]*)((?:;[^;,]*)*),/.exec(value);
    if (!m) throw badRequest(param, `'${param}': malformed data URL`);
    const mime = m[1].toLowerCase();
    if (!m[2].split(';').includes('base64')) throw badRequest(param, `'${param}': the data URL must be base64-encoded (data:image/png;base64,...)`);
    if (mime && !IMAGE_TYPES.has(mime)) throw badRequest(param, `'${param}': image type '${mime}' is not supported (PNG or JPEG)`, 'unsupported_value');
    payload = value.slice(m[0].length);
  }
  const bytes = decodeBase64(payload);
  if (!bytes) throw badRequest(param, `'${param}' is not valid base64`);
  const png = bytes.length > 8 && bytes[0] === 0x89 && bytes[1] === 0x50 && bytes[2] === 0x4e && bytes[3] === 0x47;
  const jpeg = bytes.length > 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff;
  if (!png && !jpeg) throw badRequest(param, `'${param}' is not a PNG or JPEG file`, 'unsupported_value');
  return bytes;
}

export const NO_VISION = 'this model has no vision tower: it cannot read images (load a Gemma 3n checkpoint with vision_config and its vision weights)';
export const NO_AUDIO = 'this model has no audio tower: it cannot hear audio (load a Gemma 3n checkpoint with audio_config and its audio weights)';

function parsePart(part: unknown, where: string, caps: ModelCapabilities): ChatContentPart {
  if (!isObject(part)) throw badRequest(where, `'${where}' must be an object, got ${typeName(part)}`, 'invalid_type');
  switch (part.type) {
    case 'text':
      return { type: 'text', text: string(part, 'text', true, `${where}.text`)! };
    case 'image_url': {
      if (!caps.supportsImages) throw badRequest(where, NO_VISION, 'model_not_multimodal');
      const iu = part.image_url;
      const url = isObject(iu) ? iu.url : iu; // {url} as in the API; a bare string is accepted too
      return { type: 'image', image: decodeImage(url, `${where}.image_url.url`) };
    }
    case 'input_audio': {
      if (!caps.supportsAudio) throw badRequest(where, NO_AUDIO, 'model_not_multimodal');
      const ia = part.input_audio;
      if (!isObject(ia)) throw badRequest(`${where}.input_audio`, `'${where}.input_audio' must be an object {data, format}`, 'invalid_type');
      const format = string(ia, 'format', true, `${where}.input_audio.format`)!;
      if (format.toLowerCase() !== 'wav')
        throw badRequest(`${where}.input_audio.format`, `audio format '${format}' is not supported (send 'wav')`, 'unsupported_value');
      const data = string(ia, 'data', true, `${where}.input_audio.data`)!;
      const bytes = decodeBase64(data);
      if (!bytes) throw badRequest(`${where}.input_audio.data`, `'${where}.input_audio.data' is not valid base64`);
      return { type: 'audio', audio: bytes };
    }
    default:
      throw badRequest(`${where}.type`, `'${where}.type' must be 'text', 'image_url' or 'input_audio', got ${JSON.stringify(part.type)}`, 'invalid_value');
  }
}

const ROLES: Record<string, 'system' | 'user' | 'assistant'> = { system: 'system', developer: 'system', user: 'user', assistant: 'assistant' };

/**
 * OpenAI messages → the alternating system? user assistant user ... list the Gemma chat
 * template takes. Consecutive messages of one role are merged; system (or developer) messages
 * must come first; the last message must be the user's.
 */
export function parseMessages(value: unknown, caps: ModelCapabilities): ChatMessage[] {
  if (!Array.isArray(value))
    throw badRequest(
      'messages',
      value === undefined ? `'messages' is required` : `'messages' must be an array, got ${typeName(value)}`,
      value === undefined ? 'missing_required_parameter' : 'invalid_type',
    );
  if (value.length === 0) throw badRequest('messages', `'messages' must contain at least one message`, 'empty_array');
  const out: { role: string; parts: ChatContentPart[] }[] = [];
  value.forEach((m: unknown, i) => {
    const where = `messages[${i}]`;
    if (!isObject(m)) throw badRequest(where, `'${where}' must be an object, got ${typeName(m)}`, 'invalid_type');
    if (typeof m.role !== 'string') throw badRequest(`${where}.role`, `'${where}.role' is required (system, user or assistant)`, 'missing_required_parameter');
    const role = ROLES[m.role];
    if (!role)
      throw badRequest(`${where}.role`, `'${where}.role' ${JSON.stringify(m.role)} is not supported (system, developer, user or assistant)`, 'invalid_value');
    let parts: ChatContentPart[];
    const c = m.content;
    if (typeof c === 'string') parts = [{ type: 'text', text: c }];
    else if (Array.isArray(c)) parts = c.map((p, j) => parsePart(p, `${where}.content[${j}]`, caps));
    else if ((c === null || c === undefined) && role === 'assistant') parts = [];
    else throw badRequest(`${where}.content`, `'${where}.content' must be a string or an array of parts, got ${typeName(c)}`, 'invalid_type');
    if (role === 'system') {
      if (parts.some((p) => p.type !== 'text')) throw badRequest(`${where}.content`, `a system message holds text only`);
      if (out.length > 0 && out[out.length - 1].role !== 'system')
        throw badRequest(`${where}.role`, `system messages must come before the conversation (${where} follows a ${out[out.length - 1].role} message)`);
    }
    const last = out[out.length - 1];
    if (last && last.role === role) last.parts.push(...parts);
    else out.push({ role, parts });
  });
  const turns = out[0].role === 'system' ? out.slice(1) : out;
  if (turns.length === 0) throw badRequest('messages', `'messages' holds only system messages: add a user message`, 'invalid_value');
  if (turns[0].role !== 'user')
    throw badRequest('messages', `the conversation must start with a user message (after any system message), not ${turns[0].role}`, 'invalid_value');
  if (turns[turns.length - 1].role !== 'user')
    throw badRequest('messages', `the last message must be the user's (the model writes the next assistant turn)`, 'invalid_value');
  if (turns[turns.length - 1].parts.length === 0 || turns[turns.length - 1].parts.every((p) => p.type === 'text' && p.text.trim() === '')) {
    throw badRequest('messages', `the last user message is empty`, 'invalid_value');
  }
  return out.map(({ role, parts }) => {
    // Plain text stays a string (the chat template trims it); media keep the parts list.
    if (parts.every((p) => p.type === 'text')) return { role, content: parts.map((p) => (p as { text: string }).text).join('\n\n') };
    return { role, content: parts };
  });
}

/** POST /v1/chat/completions body. */
export function parseChatCompletion(body: Json, caps: ModelCapabilities): ParsedCompletion {
  num(body, 'n', (x) => x === 1, 'must be 1 (one choice per request is supported)', true);
  if (body.model !== undefined && typeof body.model !== 'string')
    throw badRequest('model', `'model' must be a string, got ${typeName(body.model)}`, 'invalid_type');
  // Tool turns (assistant tool_calls, role "tool") and structured output: src/server/structured.ts.
  const messages = hasToolTurns(body.messages) ? parseToolMessages(body.messages as unknown[], caps, parsePart) : parseMessages(body.messages, caps);
  const opts = { ...parseSampling(body), ...parseStructured(body, messages) };
  const stream = bool(body, 'stream') ?? false;
  let includeUsage = false;
  if (body.stream_options !== undefined && body.stream_options !== null) {
    if (!isObject(body.stream_options)) throw badRequest('stream_options', `'stream_options' must be an object`, 'invalid_type');
    includeUsage = bool(body.stream_options, 'include_usage') ?? false;
  }
  return { messages, opts, stream, includeUsage };
}

/** POST /chat body: {message, history?: [{role, content}], system?} plus sampling fields. */
export function parseSimpleChat(body: Json, caps: ModelCapabilities): { messages: ChatMessage[]; opts: GenerateOptions } {
  const message = string(body, 'message', true)!;
  if (message.trim() === '') throw badRequest('message', `'message' is empty`, 'invalid_value');
  const system = string(body, 'system', false);
  const history = body.history ?? [];
  if (!Array.isArray(history)) throw badRequest('history', `'history' must be an array of {role, content}, got ${typeName(history)}`, 'invalid_type');
  const all = [...(system !== undefined ? [{ role: 'system', content: system }] : []), ...history, { role: 'user', content: message }];
  let messages: ChatMessage[];
  try {
    messages = parseMessages(all, caps);
  } catch (e) {
    // Point at history[i] rather than at the merged list.
    if (e instanceof HttpError && e.param?.startsWith('messages[')) {
      const off = system !== undefined ? 1 : 0;
      const param = e.param.replace(/^messages\[(\d+)\]/, (_, i) => (Number(i) - off < history.length ? `history[${Number(i) - off}]` : 'message'));
      throw badRequest(param, e.message.replace(/messages\[(\d+)\]/g, param.split('.')[0]), e.code);
    }
    throw e;
  }
  return { messages, opts: parseSampling(body) };
}

/** POST /analyze-image body: {image: base64 or data URL, prompt?} plus sampling fields. */
export function parseAnalyzeImage(body: Json, caps: ModelCapabilities): { messages: ChatMessage[]; opts: GenerateOptions } {
  if (body.image === undefined || body.image === null)
    throw badRequest('image', `'image' is required (base64 or a data:image/png;base64,... URL)`, 'missing_required_parameter');
  if (!caps.supportsImages) throw badRequest('image', NO_VISION, 'model_not_multimodal');
  const image = decodeImage(body.image, 'image');
  const prompt = string(body, 'prompt', false) ?? 'Describe this image in detail.';
  return {
    messages: [
      {
        role: 'user',
        content: [
          { type: 'image', image },
          { type: 'text', text: prompt },
        ],
      },
    ],
    opts: parseSampling(body),
  };
}
