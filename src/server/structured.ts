/**
 * Structured output in the OpenAI chat-completions API: `response_format` (json_schema with
 * strict, json_object, text), `tools` / `tool_choice` / `parallel_tool_calls`, tool turns in
 * `messages` (assistant `tool_calls`, `role: "tool"` results), and the answer's shape
 * (`message.tool_calls`, `finish_reason: "tool_calls"`, streamed `delta.tool_calls`).
 * Runtime-neutral, like request.ts.
 */
import type { GenerateOptions, GenerationResult } from '../engine/engine.js';
import { planStructured } from '../engine/structured.js';
import {
  renderToolMessages,
  ToolCallScanner,
  type ToolCall,
  type ToolCallDelta,
  type ToolChatMessage,
  type ToolChoice,
  type ToolDefinition,
} from '../engine/tools.js';
import { SchemaError, type ResponseFormat } from '../constrain/index.js';
import type { ChatContentPart, ChatMessage } from '../tokenizer/chat_template.js';
import { badRequest } from './errors.js';
/** What the server knows about the model (request.ts's ModelCapabilities). */
interface ModelCapabilities {
  supportsImages: boolean;
  supportsAudio: boolean;
}
/** request.ts's content-part parser (passed in: request.ts imports this file). */
export type PartParser = (part: unknown, where: string, caps: ModelCapabilities) => ChatContentPart;

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const typeName = (v: unknown): string => (v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v);

/** Whether the messages use tool turns (then parseToolMessages reads them). */
export function hasToolTurns(messages: unknown): boolean {
  return (
    Array.isArray(messages) &&
    messages.some((m) => isObject(m) && (m.role === 'tool' || (m.role === 'assistant' && m.tool_calls !== undefined && m.tool_calls !== null)))
  );
}

const textParts = (c: unknown, where: string, caps: ModelCapabilities, allowNull: boolean, parsePart: PartParser): ChatContentPart[] => {
  if (typeof c === 'string') return [{ type: 'text', text: c }];
  if ((c === null || c === undefined) && allowNull) return [];
  if (Array.isArray(c)) return c.map((p, j) => parsePart(p, `${where}.content[${j}]`, caps));
  throw badRequest(`${where}.content`, `'${where}.content' must be a string or an array of parts, got ${typeName(c)}`, 'invalid_type');
};

/**
 * OpenAI messages with tool turns → the engine's ToolChatMessage list (src/engine/tools.ts
 * renders them for the Gemma template). Checks that each tool result answers a call made earlier.
 */
export function parseToolMessages(value: unknown[], caps: ModelCapabilities, parsePart: PartParser): ToolChatMessage[] {
  const out: ToolChatMessage[] = [];
  const callIds = new Set<string>();
  value.forEach((m, i) => {
    const where = `messages[${i}]`;
    if (!isObject(m)) throw badRequest(where, `'${where}' must be an object, got ${typeName(m)}`, 'invalid_type');
    const role = m.role === 'developer' ? 'system' : m.role;
    if (role !== 'system' && role !== 'user' && role !== 'assistant' && role !== 'tool')
      throw badRequest(
        `${where}.role`,
        `'${where}.role' ${JSON.stringify(m.role)} is not supported (system, developer, user, assistant or tool)`,
        'invalid_value',
      );
    const parts = textParts(m.content, where, caps, role === 'assistant', parsePart);
    const content = parts.every((p) => p.type === 'text') ? parts.map((p) => (p as { text: string }).text).join('\n\n') : parts;
    if (role === 'tool') {
      if (typeof m.tool_call_id !== 'string')
        throw badRequest(`${where}.tool_call_id`, `'${where}.tool_call_id' is required for a tool message`, 'missing_required_parameter');
      if (!callIds.has(m.tool_call_id))
        throw badRequest(
          `${where}.tool_call_id`,
          `'${where}.tool_call_id' ${JSON.stringify(m.tool_call_id)} answers no earlier assistant tool call`,
          'invalid_value',
        );
      out.push({ role: 'tool', content, toolCallId: m.tool_call_id });
      return;
    }
    const msg: ToolChatMessage = { role, content };
    if (role === 'assistant' && m.tool_calls !== undefined && m.tool_calls !== null) {
      if (!Array.isArray(m.tool_calls)) throw badRequest(`${where}.tool_calls`, `'${where}.tool_calls' must be an array`, 'invalid_type');
      msg.toolCalls = m.tool_calls.map((c: unknown, j: number): ToolCall => {
        const w = `${where}.tool_calls[${j}]`;
        if (
          !isObject(c) ||
          typeof c.id !== 'string' ||
          !isObject(c.function) ||
          typeof c.function.name !== 'string' ||
          typeof c.function.arguments !== 'string'
        ) {
          throw badRequest(w, `'${w}' must be {id, type: "function", function: {name, arguments}} with string id, name and arguments`, 'invalid_value');
        }
        try {
          JSON.parse(c.function.arguments);
        } catch {
          throw badRequest(`${w}.function.arguments`, `'${w}.function.arguments' is not valid JSON`, 'invalid_value');
        }
        callIds.add(c.id);
        return { id: c.id, type: 'function', function: { name: c.function.name, arguments: c.function.arguments } };
      });
    }
    out.push(msg);
  });
  const last = out[out.length - 1];
  if (!last || (last.role !== 'user' && last.role !== 'tool'))
    throw badRequest('messages', `the last message must be the user's or a tool result (the model writes the next assistant turn)`, 'invalid_value');
  return out;
}

function parseResponseFormat(v: unknown): ResponseFormat | undefined {
  if (v === undefined || v === null) return undefined;
  if (!isObject(v)) throw badRequest('response_format', `'response_format' must be an object, got ${typeName(v)}`, 'invalid_type');
  if (v.type === 'text') return { type: 'text' };
  if (v.type === 'json_object') return { type: 'json_object' };
  if (v.type === 'json_schema') {
    const js = v.json_schema;
    if (!isObject(js))
      throw badRequest('response_format.json_schema', `'response_format.json_schema' must be an object {name, schema, strict}`, 'missing_required_parameter');
    if (js.name !== undefined && (typeof js.name !== 'string' || !/^[A-Za-z0-9_-]{1,64}$/.test(js.name)))
      throw badRequest('response_format.json_schema.name', `'response_format.json_schema.name' must be 1-64 letters, digits, '_' or '-'`);
    if (js.strict !== undefined && js.strict !== null && typeof js.strict !== 'boolean')
      throw badRequest('response_format.json_schema.strict', `'response_format.json_schema.strict' must be a boolean`, 'invalid_type');
    if (js.schema === undefined)
      throw badRequest('response_format.json_schema.schema', `'response_format.json_schema.schema' is required`, 'missing_required_parameter');
    return { type: 'json_schema', schema: js.schema, name: js.name as string | undefined, strict: js.strict as boolean | undefined };
  }
  throw badRequest('response_format.type', `'response_format.type' must be 'text', 'json_object' or 'json_schema', got ${JSON.stringify(v.type)}`);
}

function parseTools(body: Json): Pick<GenerateOptions, 'tools' | 'toolChoice' | 'parallelToolCalls'> {
  const out: Pick<GenerateOptions, 'tools' | 'toolChoice' | 'parallelToolCalls'> = {};
  if (body.tools !== undefined && body.tools !== null) {
    if (!Array.isArray(body.tools)) throw badRequest('tools', `'tools' must be an array, got ${typeName(body.tools)}`, 'invalid_type');
    out.tools = body.tools as ToolDefinition[];
  }
  const c = body.tool_choice;
  if (c !== undefined && c !== null) {
    if (typeof c === 'string' || isObject(c)) out.toolChoice = c as ToolChoice;
    else throw badRequest('tool_choice', `'tool_choice' must be "auto", "none", "required" or {type: "function", function: {name}}`, 'invalid_type');
  }
  if (body.parallel_tool_calls !== undefined && body.parallel_tool_calls !== null) {
    if (typeof body.parallel_tool_calls !== 'boolean') throw badRequest('parallel_tool_calls', `'parallel_tool_calls' must be a boolean`, 'invalid_type');
    out.parallelToolCalls = body.parallel_tool_calls;
  }
  return out;
}

/**
 * Reads response_format / tools / tool_choice and compiles the grammar now, so a schema the
 * engine cannot enforce is a 400 naming the keyword before the request queues.
 */
export function parseStructured(
  body: Json,
  messages: readonly ChatMessage[],
): Pick<GenerateOptions, 'responseFormat' | 'tools' | 'toolChoice' | 'parallelToolCalls'> {
  const out: Pick<GenerateOptions, 'responseFormat' | 'tools' | 'toolChoice' | 'parallelToolCalls'> = { ...parseTools(body) };
  const rf = parseResponseFormat(body.response_format);
  if (rf) out.responseFormat = rf;
  if (!out.tools && !out.responseFormat && out.toolChoice === undefined) return out;
  try {
    planStructured(messages, out);
  } catch (e) {
    if (e instanceof SchemaError) {
      const base = out.responseFormat?.type === 'json_schema' ? 'response_format.json_schema.schema' : 'tools';
      throw badRequest(base, e.message, e.keyword ? 'unsupported_schema_keyword' : 'invalid_schema');
    }
    if (e instanceof RangeError) {
      const m = /^tools\[(\d+)\]\S*/.exec(e.message);
      throw badRequest(m ? m[0] : /tool_?[cC]hoice/.test(e.message) ? 'tool_choice' : 'tools', e.message);
    }
    throw e;
  }
  return out;
}

/** The messages the prompt is built from (tool declarations and turns rendered), for counting. */
export function promptMessages(messages: ChatMessage[], opts: GenerateOptions): ChatMessage[] {
  const tools = opts.tools && opts.tools.length > 0 ? opts.tools : undefined;
  if (!tools && !hasToolTurns(messages.map((m) => ({ role: m.role, tool_calls: (m as ToolChatMessage).toolCalls })))) return messages;
  return renderToolMessages(messages as ToolChatMessage[], tools, opts.toolChoice, opts.parallelToolCalls ?? true);
}

/** finish_reason: "tool_calls" when the answer holds calls, "length" when cut, else "stop". */
export function finishReasonOf(r: GenerationResult): string {
  if (r.toolCalls && r.toolCalls.length > 0) return 'tool_calls';
  return r.metrics.stopReason === 'max_tokens' ? 'length' : 'stop';
}

/** The assistant message of a non-streamed answer. */
export function assistantMessage(r: GenerationResult): { role: 'assistant'; content: string | null; tool_calls?: ToolCall[] } {
  if (r.toolCalls && r.toolCalls.length > 0) return { role: 'assistant', content: null, tool_calls: r.toolCalls };
  return { role: 'assistant', content: r.text };
}

/**
 * Streaming: text pieces become `delta.content`, unless the answer is a tool call, whose
 * pieces become `delta.tool_calls` (id and name first, then the arguments as they are written).
 * Sets `opts.onToolCall`; feed every text piece to `piece`.
 */
export class StreamShaper {
  private readonly scanner = new ToolCallScanner();
  private held = '';

  constructor(
    private readonly opts: GenerateOptions,
    private readonly send: (delta: object) => void,
  ) {
    if (opts.tools && opts.tools.length > 0 && opts.toolChoice !== 'none') {
      opts.onToolCall = (d: ToolCallDelta) => send({ tool_calls: [d] });
    }
  }

  private get tools(): boolean {
    return this.opts.onToolCall !== undefined;
  }

  piece(text: string): void {
    if (!this.tools) {
      this.send({ content: text });
      return;
    }
    // Hold leading whitespace until the first character says prose or call.
    if (this.scanner.isCall === null) {
      this.held += text;
      this.scanner.push(text);
      if (this.scanner.isCall === false) {
        this.send({ content: this.held });
        this.held = '';
      }
      return;
    }
    if (this.scanner.isCall === false) this.send({ content: text });
  }

  /** End of the stream: anything held that was not a call is content after all. */
  finish(r: GenerationResult): void {
    if (this.held && !(r.toolCalls && r.toolCalls.length > 0) && this.scanner.isCall !== true) this.send({ content: this.held });
    this.held = '';
  }
}
