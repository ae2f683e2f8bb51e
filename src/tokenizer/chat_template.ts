/**
 * Chat prompt rendering for Gemma 3n with @huggingface/jinja.
 *
 * The template comes from the model folder (chat_template.jinja, or
 * tokenizer_config.json's "chat_template"); when neither is given we use
 * GEMMA3N_CHAT_TEMPLATE, a copy of the template in google/gemma-3n-E2B-it's
 * tokenizer_config.json. Its shape:
 *   <bos><start_of_turn>user\n{system}\n\n{user text}<end_of_turn>\n
 *   <start_of_turn>model\n{reply}<end_of_turn>\n ... [<start_of_turn>model\n]
 * Image and audio parts become one placeholder each ("<image_soft_token>",
 * "<audio_soft_token>"); Gemma3nProcessor then replaces every placeholder with
 * "\n\n<start_of_image>" + 256 x "<image_soft_token>" + "<end_of_image>\n\n"
 * (audio: <start_of_audio>, 188 x <audio_soft_token>, <end_of_audio>), which
 * expandMultimodalPlaceholders reproduces.
 */
import { Template } from '@huggingface/jinja';
import type { GemmaTokenizer } from './tokenizer.js';
import { chatTemplateFromConfig } from './load.js';

export type ChatContentPart = { type: 'text'; text: string } | { type: 'image'; [key: string]: unknown } | { type: 'audio'; [key: string]: unknown };

export interface ChatMessage {
  /** 'system' | 'user' | 'assistant' (rendered as "model"); 'model' is accepted as is. */
  role: string;
  content: string | ChatContentPart[];
}

export interface RenderChatOptions {
  /** Template text (e.g. the contents of chat_template.jinja). Wins over tokenizerConfig. */
  template?: string;
  /** tokenizer_config.json (text or object); its chat_template is used when `template` is absent. */
  tokenizerConfig?: string | object;
  /** Append "<start_of_turn>model\n" so the model writes the next turn. Default true. */
  addGenerationPrompt?: boolean;
  /** Default "<bos>". */
  bosToken?: string;
  /** Default "<eos>". */
  eosToken?: string;
  /** Extra variables for custom templates (tools, enable_thinking, ...). */
  variables?: Record<string, unknown>;
}

/** google/gemma-3n-E2B-it tokenizer_config.json "chat_template". */
export const GEMMA3N_CHAT_TEMPLATE = `{{ bos_token }}
{%- if messages[0]['role'] == 'system' -%}
    {%- if messages[0]['content'] is string -%}
        {%- set first_user_prefix = messages[0]['content'] + '\n\n' -%}
    {%- else -%}
        {%- set first_user_prefix = messages[0]['content'][0]['text'] + '\n\n' -%}
    {%- endif -%}
    {%- set loop_messages = messages[1:] -%}
{%- else -%}
    {%- set first_user_prefix = "" -%}
    {%- set loop_messages = messages -%}
{%- endif -%}
{%- for message in loop_messages -%}
    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}
        {{ raise_exception("Conversation roles must alternate user/assistant/user/assistant/...") }}
    {%- endif -%}
    {%- if (message['role'] == 'assistant') -%}
        {%- set role = "model" -%}
    {%- else -%}
        {%- set role = message['role'] -%}
    {%- endif -%}
    {{ '<start_of_turn>' + role + '\n' + (first_user_prefix if loop.first else "") }}
    {%- if message['content'] is string -%}
        {{ message['content'] | trim }}
    {%- elif message['content'] is iterable -%}
        {%- for item in message['content'] -%}
            {%- if item['type'] == 'audio' -%}
                {{ '<audio_soft_token>' }}
            {%- elif item['type'] == 'image' -%}
                {{ '<image_soft_token>' }}
            {%- elif item['type'] == 'text' -%}
                {{ item['text'] | trim }}
            {%- endif -%}
        {%- endfor -%}
    {%- else -%}
        {{ raise_exception("Invalid content type") }}
    {%- endif -%}
    {{ '<end_of_turn>\n' }}
{%- endfor -%}
{%- if add_generation_prompt -%}
    {{'<start_of_turn>model\n'}}
{%- endif -%}
`;

const compiled = new Map<string, Template>();

function compile(source: string): Template {
  let t = compiled.get(source);
  if (t === undefined) {
    t = new Template(source);
    compiled.set(source, t);
  }
  return t;
}

/**
 * Render messages to the prompt text. Encode the result with
 * `tokenizer.encode(prompt, { parseSpecial: true })` (it already starts with <bos>).
 */
export function renderChat(messages: readonly ChatMessage[], opts: RenderChatOptions = {}): string {
  if (!Array.isArray(messages) || messages.length === 0) throw new Error('renderChat: messages must be a non-empty array');
  const source = opts.template ?? (opts.tokenizerConfig !== undefined ? chatTemplateFromConfig(opts.tokenizerConfig) : undefined) ?? GEMMA3N_CHAT_TEMPLATE;
  return compile(source).render({
    ...opts.variables,
    messages,
    bos_token: opts.bosToken ?? '<bos>',
    eos_token: opts.eosToken ?? '<eos>',
    add_generation_prompt: opts.addGenerationPrompt ?? true,
  });
}

export interface ExpandOptions {
  /** Soft tokens per image (Gemma 3n: 256, MobileNet-V5 at 768x768). */
  imageTokens?: number;
  /** Soft tokens per audio clip (Gemma 3n: 188; the processor's audio_seq_length). */
  audioTokens?: number;
  /** Text the template emits per image. Default "<image_soft_token>" (Gemma 3 templates use "<start_of_image>"). */
  imagePlaceholder?: string;
  /** Text the template emits per audio clip. Default "<audio_soft_token>". */
  audioPlaceholder?: string;
}

export interface ExpandIdsOptions extends ExpandOptions {
  /** Resolves the marker ids (<start_of_image>, "\n\n", ...). */
  tokenizer: GemmaTokenizer;
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * Expand each image/audio placeholder into the sequence the model consumes:
 *   "\n\n<start_of_image>" + imageTokens x "<image_soft_token>" + "<end_of_image>\n\n"
 *   "\n\n<start_of_audio>" + audioTokens x "<audio_soft_token>" + "<end_of_audio>\n\n"
 * (Gemma3nProcessor.full_image_sequence / full_audio_sequence.)
 *
 * Text form: exactly what the HF processor does; tokenize the result with parseSpecial.
 * Id form: replaces each placeholder id; the "\n\n" markers are emitted as their
 * own token, so when the placeholder sits next to a newline the ids can differ from
 * tokenizing the expanded text (the tokenizer would fuse "\n" + "\n\n" into "\n\n\n").
 * Prefer the text form when you have the prompt text.
 */
export function expandMultimodalPlaceholders(text: string, opts?: ExpandOptions): string;
export function expandMultimodalPlaceholders(ids: ArrayLike<number>, opts: ExpandIdsOptions): number[];
export function expandMultimodalPlaceholders(input: string | ArrayLike<number>, opts: ExpandOptions | ExpandIdsOptions = {}): string | number[] {
  const imageTokens = opts.imageTokens ?? 256;
  const audioTokens = opts.audioTokens ?? 188;
  for (const [name, n] of [
    ['imageTokens', imageTokens],
    ['audioTokens', audioTokens],
  ] as const) {
    if (!Number.isInteger(n) || n < 0) throw new RangeError(`expandMultimodalPlaceholders: ${name} must be a non-negative integer, got ${n}`);
  }
  const imagePh = opts.imagePlaceholder ?? '<image_soft_token>';
  const audioPh = opts.audioPlaceholder ?? '<audio_soft_token>';

  if (typeof input === 'string') {
    const image = `\n\n<start_of_image>${'<image_soft_token>'.repeat(imageTokens)}<end_of_image>\n\n`;
    const audio = `\n\n<start_of_audio>${'<audio_soft_token>'.repeat(audioTokens)}<end_of_audio>\n\n`;
    const re = new RegExp(`${escapeRegExp(imagePh)}|${escapeRegExp(audioPh)}`, 'g');
    return input.replace(re, (m) => (m === imagePh ? image : audio));
  }

  const tok = (opts as Partial<ExpandIdsOptions>).tokenizer;
  if (tok === undefined) throw new Error('expandMultimodalPlaceholders: expanding ids needs opts.tokenizer');
  const need = (piece: string): number => {
    const id = tok.pieceToId(piece);
    if (id === undefined) throw new Error(`expandMultimodalPlaceholders: ${JSON.stringify(piece)} is not in the vocabulary`);
    return id;
  };
  const nl2 = need('\n\n');
  const imagePhId = tok.pieceToId(imagePh);
  const audioPhId = tok.pieceToId(audioPh);
  const out: number[] = [];
  for (let i = 0; i < input.length; i++) {
    const id = input[i]!;
    if (id === imagePhId) {
      out.push(nl2, need('<start_of_image>'));
      const soft = need('<image_soft_token>');
      for (let k = 0; k < imageTokens; k++) out.push(soft);
      out.push(need('<end_of_image>'), nl2);
    } else if (id === audioPhId) {
      out.push(nl2, need('<start_of_audio>'));
      const soft = need('<audio_soft_token>');
      for (let k = 0; k < audioTokens; k++) out.push(soft);
      out.push(need('<end_of_audio>'), nl2);
    } else out.push(id);
  }
  return out;
}
