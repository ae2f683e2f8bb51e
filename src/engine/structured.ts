/**
 * Structured output for one generation: turns `responseFormat` / `tools` / `toolChoice` into
 * the prompt the model sees (tool declarations rendered Gemma-style) and the grammar its
 * tokens are held to.
 */
import { grammarFor, grammarForFormat, type Grammar, type ResponseFormat } from '../constrain/index.js';
import type { ChatMessage } from '../tokenizer/chat_template.js';
import { renderToolMessages, toolCallSchema, validateTools, type ToolChatMessage, type ToolChoice, type ToolDefinition } from './tools.js';

export interface StructuredOptions {
  /** Hold the answer to a JSON Schema (`json_schema`) or to any JSON object (`json_object`). */
  responseFormat?: ResponseFormat;
  /** Functions the model may call (OpenAI shape). */
  tools?: ToolDefinition[];
  /** Default "auto" when tools are given. */
  toolChoice?: ToolChoice;
  /** Allow several calls in one answer (a JSON array of calls). Default true. */
  parallelToolCalls?: boolean;
}

export interface StructuredPlan {
  /** Messages to render (tools folded in), or null to keep the input as it is. */
  messages: ChatMessage[] | null;
  grammar: Grammar | null;
  /** The tools whose calls the answer may hold (null: none). */
  callTools: ToolDefinition[] | null;
}

/** Validates the options and plans prompt and grammar. Throws RangeError / SchemaError for bad requests. */
export function planStructured(messages: readonly ChatMessage[] | null, o: StructuredOptions): StructuredPlan {
  const tools = o.tools && o.tools.length > 0 ? o.tools : null;
  if (o.toolChoice !== undefined && !tools && o.toolChoice !== 'none' && o.toolChoice !== 'auto') throw new RangeError('toolChoice needs tools');
  if (tools) validateTools(tools, o.toolChoice);
  const hasToolTurns = messages?.some((m) => m.role === 'tool' || (m as ToolChatMessage).toolCalls !== undefined) ?? false;
  const rendered = messages && (tools || hasToolTurns) ? renderToolMessages(messages as ToolChatMessage[], tools ?? undefined, o.toolChoice) : null;
  const choice = o.toolChoice ?? 'auto';
  const format = o.responseFormat && o.responseFormat.type !== 'text' ? o.responseFormat : null;
  if (!tools || choice === 'none') return { messages: rendered, grammar: format ? grammarForFormat(format) : null, callTools: null };
  if (!messages) throw new RangeError('tools need a chat prompt (messages), not raw text or ids');
  const parallel = o.parallelToolCalls ?? true;
  const { schema, orderedPaths } = toolCallSchema(tools, choice, parallel);
  if (choice === 'auto' && format) {
    // Either a call or an answer in the response format: both branches under one anyOf.
    const answer = format.type === 'json_object' ? { type: 'object' } : format.schema;
    const defs = typeof answer === 'object' && answer !== null ? (answer as Record<string, unknown>).$defs : undefined;
    const combined = { anyOf: [...(schema as { anyOf: object[] }).anyOf, answer], ...(defs ? { $defs: defs } : {}) };
    return { messages: rendered, grammar: grammarFor(combined, { orderedPaths }), callTools: tools };
  }
  return { messages: rendered, grammar: grammarFor(schema, { orderedPaths, allowText: choice === 'auto' }), callTools: tools };
}
