/**
 * `--json-schema FILE`, `--json-object`, `--tools FILE`, `--tool-choice C`: structured output
 * for `gemma3n generate` (src/constrain/, src/engine/tools.ts).
 */
import { readFileSync } from 'node:fs';
import type { GenerateOptions } from '../engine/engine.js';
import type { ToolChoice, ToolDefinition } from '../engine/tools.js';
import { UsageError } from './args.js';
import { str, type Values } from './common.js';

export const structuredFlags = {
  'json-schema': { type: 'string' },
  'json-object': { type: 'boolean' },
  tools: { type: 'string' },
  'tool-choice': { type: 'string' },
} as const;

function readJson(file: string, flag: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new UsageError(`${flag}: cannot read ${file}: ${(e as Error).message}`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new UsageError(`${flag}: ${file} is not valid JSON: ${(e as Error).message}`);
  }
}

/** The structured-output options the flags ask for (empty when none). */
export function structuredOptions(v: Values): Pick<GenerateOptions, 'responseFormat' | 'tools' | 'toolChoice'> {
  const out: Pick<GenerateOptions, 'responseFormat' | 'tools' | 'toolChoice'> = {};
  const schemaFile = str(v, 'json-schema');
  if (schemaFile !== undefined && v['json-object']) throw new UsageError('give --json-schema FILE or --json-object, not both');
  if (schemaFile !== undefined) {
    const schema = readJson(schemaFile, '--json-schema');
    // An OpenAI response_format.json_schema object ({name, schema, strict}) is accepted as well.
    const inner = typeof schema === 'object' && schema !== null && 'schema' in schema && 'name' in schema ? (schema as { schema: unknown }).schema : schema;
    out.responseFormat = { type: 'json_schema', schema: inner };
  } else if (v['json-object']) out.responseFormat = { type: 'json_object' };
  const toolsFile = str(v, 'tools');
  if (toolsFile !== undefined) {
    const tools = readJson(toolsFile, '--tools');
    if (!Array.isArray(tools)) throw new UsageError(`--tools: ${toolsFile} must hold a JSON array of {"type": "function", "function": {...}}`);
    out.tools = tools as ToolDefinition[];
  }
  const choice = str(v, 'tool-choice');
  if (choice !== undefined) {
    if (out.tools === undefined) throw new UsageError('--tool-choice needs --tools FILE');
    out.toolChoice = (['auto', 'none', 'required'].includes(choice) ? choice : { type: 'function', function: { name: choice } }) as ToolChoice;
  }
  return out;
}
