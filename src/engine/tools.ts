/**
 * Tool (function) calling, OpenAI-shaped, for Gemma 3n.
 *
 * Gemma has no tool tokens: following Google's "Function calling with Gemma" guide, the
 * declarations go into the prompt as JSON with the instruction to answer a call as
 *   {"name": function name, "parameters": dictionary of argument name and its value}
 * and tool results come back in a user turn as ```tool_output blocks. Here the call is not left
 * to the model's discipline: it is constrained (src/constrain/) to name a declared tool and to
 * carry parameters valid for that tool's schema ("name" first, so a stream can announce the call
 * before its arguments), and parsed back into OpenAI `tool_calls`. Several calls at once are a
 * JSON array of such objects.
 */
import type { ChatContentPart, ChatMessage } from '../tokenizer/chat_template.js';

export interface ToolFunction {
  name: string;
  description?: string;
  /** JSON Schema of the arguments object (default: no arguments). */
  parameters?: Record<string, unknown>;
  strict?: boolean;
}

export interface ToolDefinition {
  type: 'function';
  function: ToolFunction;
}

/** "auto" (default with tools): prose or a call; "none": prose; "required": a call; or one named function. */
export type ToolChoice = 'auto' | 'none' | 'required' | { type: 'function'; function: { name: string } };

export interface ToolCall {
  id: string;
  type: 'function';
  function: { name: string; arguments: string };
}

/** A streamed piece of a tool call, as OpenAI's `delta.tool_calls[i]`. */
export interface ToolCallDelta {
  index: number;
  /** On the first delta of a call. */
  id?: string;
  type?: 'function';
  function: { name?: string; arguments: string };
}

/** Chat messages with the OpenAI tool fields (assistant calls, tool results). */
export interface ToolChatMessage extends ChatMessage {
  toolCalls?: ToolCall[];
  toolCallId?: string;
}

/** Most calls in one parallel answer. */
export const MAX_PARALLEL_CALLS = 8;
const NAME_RE = /^[A-Za-z0-9_-]{1,64}$/;

/** Checks tool declarations and the choice; throws RangeError naming the field. */
export function validateTools(tools: readonly ToolDefinition[], choice: ToolChoice | undefined): void {
  if (!Array.isArray(tools)) throw new RangeError('tools must be an array of { type: "function", function: { name, parameters } }');
  const names = new Set<string>();
  tools.forEach((t, i) => {
    if (typeof t !== 'object' || t === null || t.type !== 'function') throw new RangeError(`tools[${i}].type must be "function"`);
    const f = t.function;
    if (typeof f !== 'object' || f === null) throw new RangeError(`tools[${i}].function is required`);
    if (typeof f.name !== 'string' || !NAME_RE.test(f.name)) throw new RangeError(`tools[${i}].function.name must be 1-64 letters, digits, '_' or '-'`);
    if (names.has(f.name)) throw new RangeError(`tools[${i}].function.name "${f.name}" is declared twice`);
    names.add(f.name);
    if (f.description !== undefined && typeof f.description !== 'string') throw new RangeError(`tools[${i}].function.description must be a string`);
    if (f.parameters !== undefined && (typeof f.parameters !== 'object' || f.parameters === null || Array.isArray(f.parameters)))
      throw new RangeError(`tools[${i}].function.parameters must be a JSON Schema object`);
  });
  if (choice === undefined || choice === 'auto' || choice === 'none') return;
  if (choice === 'required') {
    if (tools.length === 0) throw new RangeError('tool_choice "required" needs at least one tool');
    return;
  }
  if (typeof choice === 'object' && choice !== null && choice.type === 'function' && typeof choice.function?.name === 'string') {
    if (!names.has(choice.function.name)) throw new RangeError(`tool_choice names the function "${choice.function.name}", which is not in tools`);
    return;
  }
  throw new RangeError(`tool_choice must be "auto", "none", "required" or { type: "function", function: { name } }`);
}

const NO_ARGS = { type: 'object', properties: {}, additionalProperties: false };

/** Rewrites a tool's local $refs so they resolve inside the combined call schema. */
function rebaseRefs(schema: unknown, base: string): unknown {
  if (Array.isArray(schema)) return schema.map((s) => rebaseRefs(s, base));
  if (typeof schema !== 'object' || schema === null) return schema;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(schema)) {
    if (k === '$ref' && typeof v === 'string' && v.startsWith('#')) out[k] = base + v.slice(1);
    else if (k === 'enum' || k === 'const' || k === 'default' || k === 'examples') out[k] = v;
    else out[k] = rebaseRefs(v, base);
  }
  return out;
}

/** The tools a choice allows. */
function allowedTools(tools: readonly ToolDefinition[], choice: ToolChoice | undefined): ToolDefinition[] {
  if (typeof choice === 'object') return tools.filter((t) => t.function.name === choice.function.name);
  return [...tools];
}

/**
 * The JSON Schema of an answer that calls tools: one envelope per allowed tool
 * ({"name": const, "parameters": its schema}, in that order), or (parallel) an array of them.
 * Returns the schema and the JSON pointers of the envelopes, whose property order is kept.
 */
export function toolCallSchema(
  tools: readonly ToolDefinition[],
  choice: ToolChoice | undefined,
  parallel = true,
): { schema: object; orderedPaths: Set<string> } {
  const list = allowedTools(tools, choice);
  const envelopes = list.map((t, i) => ({
    type: 'object',
    properties: { name: { const: t.function.name }, parameters: rebaseRefs(t.function.parameters ?? NO_ARGS, `#/anyOf/${i}/properties/parameters`) },
    required: ['name', 'parameters'],
    additionalProperties: false,
  }));
  const orderedPaths = new Set(list.map((_, i) => `/anyOf/${i}`));
  const anyOf: object[] = [...envelopes];
  if (parallel) anyOf.push({ type: 'array', minItems: 1, maxItems: MAX_PARALLEL_CALLS, items: { anyOf: list.map((_, i) => ({ $ref: `#/anyOf/${i}` })) } });
  return { schema: { anyOf }, orderedPaths };
}

/** The instruction block of Google's Gemma function-calling guide (JSON form). */
export function toolInstructions(tools: readonly ToolDefinition[], choice: ToolChoice | undefined, parallel = true): string {
  const list = allowedTools(tools, choice).map((t) => ({
    name: t.function.name,
    ...(t.function.description ? { description: t.function.description } : {}),
    parameters: t.function.parameters ?? NO_ARGS,
  }));
  let text =
    'You have access to functions. If you decide to invoke any of the function(s), you MUST put it in the format of\n' +
    '{"name": function name, "parameters": dictionary of argument name and its value}\n\n' +
    'You SHOULD NOT include any other text in the response if you call a function\n' +
    JSON.stringify(list, null, 2);
  if (parallel) text += '\n\nTo call several functions at once, put the calls in a JSON array.';
  if (choice === 'required') text += '\n\nYou MUST call a function.';
  else if (typeof choice === 'object') text += `\n\nYou MUST call the function ${choice.function.name}.`;
  return text;
}

const callText = (calls: readonly ToolCall[]): string => {
  const objs = calls.map((c) => `{"name": ${JSON.stringify(c.function.name)}, "parameters": ${c.function.arguments || '{}'}}`);
  return objs.length === 1 ? objs[0] : `[${objs.join(', ')}]`;
};

const textOf = (c: ChatMessage['content']): string =>
  typeof c === 'string'
    ? c
    : c
        .filter((p) => p.type === 'text')
        .map((p) => (p as { text: string }).text)
        .join('\n\n');

/**
 * Messages with tool declarations, assistant calls and tool results → the plain
 * system / user / assistant turns the Gemma chat template takes: declarations join the system
 * text; an assistant's calls become its text; tool results become a user turn of
 * ```tool_output blocks (merged with a following user message, as the roles must alternate).
 */
export function renderToolMessages(
  messages: readonly ToolChatMessage[],
  tools: readonly ToolDefinition[] | undefined,
  choice: ToolChoice | undefined,
  parallel = true,
): ChatMessage[] {
  const out: ChatMessage[] = [];
  const add = (role: string, content: ChatMessage['content']) => {
    const last = out[out.length - 1];
    if (last && last.role === role) {
      if (typeof last.content === 'string' && typeof content === 'string') last.content = `${last.content}\n\n${content}`;
      else {
        const parts = (c: ChatMessage['content']): ChatContentPart[] => (typeof c === 'string' ? [{ type: 'text', text: c }] : c);
        last.content = [...parts(last.content), { type: 'text', text: '\n\n' }, ...parts(content)];
      }
    } else out.push({ role, content: typeof content === 'string' ? content : [...content] });
  };
  const declare = tools && tools.length > 0 && choice !== 'none' ? toolInstructions(tools, choice, parallel) : null;
  let i = 0;
  if (declare) {
    if (messages[0]?.role === 'system') {
      out.push({ role: 'system', content: `${textOf(messages[0].content)}\n\n${declare}` });
      i = 1;
    } else out.push({ role: 'system', content: declare });
  }
  const names = new Map<string, string>();
  for (; i < messages.length; i++) {
    const m = messages[i];
    if (m.role === 'assistant' && m.toolCalls && m.toolCalls.length > 0) {
      for (const c of m.toolCalls) names.set(c.id, c.function.name);
      const text = textOf(m.content).trim();
      add('assistant', (text ? `${text}\n` : '') + callText(m.toolCalls));
    } else if (m.role === 'tool') {
      add('user', `\`\`\`tool_output\n${textOf(m.content)}\n\`\`\``);
    } else add(m.role, m.content);
  }
  return out;
}

const randomId = (): string => {
  const bytes = new Uint8Array(12);
  globalThis.crypto.getRandomValues(bytes);
  return `call_${Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('')}`;
};

/**
 * Reads tool calls out of generated text as it streams: `push(text)` returns the deltas that
 * text completes (a call's id and name once its "name" is read, then its arguments as they come),
 * `calls` holds the finished calls. The arguments are the raw JSON text of "parameters", so the
 * streamed deltas concatenate to exactly the final `arguments`.
 */
export class ToolCallScanner {
  readonly calls: ToolCall[] = [];
  /** True once the text is known to be a call (it starts with '{' or '['). */
  isCall: boolean | null = null;
  private depth = 0;
  private envDepth = 0;
  private inStr = false;
  private esc = false;
  private str = '';
  private key: string | null = null;
  private expectKey = false;
  private field: 'name' | 'parameters' | null = null;
  private argDepth = -1;
  private current: { id: string; name: string; args: string } | null = null;

  push(text: string): ToolCallDelta[] {
    const out: ToolCallDelta[] = [];
    let args = '';
    const flushArgs = () => {
      if (args && this.current) out.push({ index: this.calls.length, function: { arguments: args } });
      args = '';
    };
    for (const ch of text) {
      if (this.isCall === null) {
        if (ch === ' ' || ch === '\n' || ch === '\t') continue;
        this.isCall = ch === '{' || ch === '[';
        if (!this.isCall) return out;
        this.envDepth = ch === '{' ? 1 : 2;
      }
      if (!this.isCall) return out;
      const inArgs = this.field === 'parameters' && this.current !== null && this.argDepth >= 0;
      if (inArgs) {
        this.current!.args += ch;
        args += ch;
      }
      if (this.inStr) {
        if (this.esc) this.esc = false;
        else if (ch === '\\') this.esc = true;
        else if (ch === '"') {
          this.inStr = false;
          if (this.depth === this.envDepth && this.expectKey) {
            this.key = JSON.parse(`"${this.str}"`) as string;
            this.expectKey = false;
          } else if (this.depth === this.envDepth && this.field === 'name') {
            const name = JSON.parse(`"${this.str}"`) as string;
            this.current = { id: randomId(), name, args: '' };
            out.push({ index: this.calls.length, id: this.current.id, type: 'function', function: { name, arguments: '' } });
            this.field = null;
          }
        } else this.str += ch;
        if (this.inStr && ch !== '"') {
          /* collecting */
        }
        continue;
      }
      if (ch === '"') {
        this.inStr = true;
        this.str = '';
        if (this.depth === this.envDepth && this.key === null && this.field === null) this.expectKey = true;
        continue;
      }
      if (ch === ':' && this.depth === this.envDepth && this.key !== null) {
        this.field = this.key === 'name' ? 'name' : this.key === 'parameters' ? 'parameters' : null;
        if (this.field === 'parameters') this.argDepth = -1;
        this.key = null;
        continue;
      }
      if (ch === '{' || ch === '[') {
        this.depth++;
        if (this.field === 'parameters' && this.argDepth < 0 && this.depth === this.envDepth + 1) {
          this.argDepth = this.depth;
          this.current!.args += ch;
          args += ch;
        }
        if (this.depth === this.envDepth && ch === '{') {
          this.key = null;
          this.field = null;
        }
        continue;
      }
      if (ch === '}' || ch === ']') {
        if (this.field === 'parameters' && this.depth === this.argDepth) {
          this.field = null;
          this.argDepth = -1;
        }
        if (this.depth === this.envDepth && ch === '}' && this.current) {
          flushArgs();
          this.calls.push({ id: this.current.id, type: 'function', function: { name: this.current.name, arguments: this.current.args } });
          this.current = null;
        }
        this.depth--;
        continue;
      }
      if (ch === ',' && this.depth === this.envDepth) {
        this.key = null;
        this.field = null;
      }
    }
    flushArgs();
    return out;
  }
}

/** Parses finished text as tool calls (null when it is not a complete call). */
export function parseToolCalls(text: string, tools: readonly ToolDefinition[], scanned?: ToolCallScanner): ToolCall[] | null {
  const t = text.trim();
  if (!t.startsWith('{') && !t.startsWith('[')) return null;
  let v: unknown;
  try {
    v = JSON.parse(t);
  } catch {
    return null;
  }
  const list = Array.isArray(v) ? v : [v];
  const names = new Set(tools.map((x) => x.function.name));
  let scanner = scanned;
  if (!scanner) {
    scanner = new ToolCallScanner();
    scanner.push(t);
  }
  if (list.length === 0 || scanner.calls.length !== list.length) return null;
  for (const c of list) {
    if (typeof c !== 'object' || c === null || !names.has((c as { name?: unknown }).name as string) || !('parameters' in c)) return null;
  }
  return scanner.calls;
}
