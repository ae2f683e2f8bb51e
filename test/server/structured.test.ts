/**
 * Structured output over HTTP (OpenAI chat completions) on the tiny random-weight model with the
 * real vocabulary: response_format json_schema / json_object, 400s naming unsupported schema
 * keywords, tools with tool_choice, tool_calls in the answer and as streamed deltas, tool results
 * in the next request, finish_reason "length" when max_tokens cuts the value.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { Gemma3n } from '../../src/engine/engine.js';
import { createServer, type GemmaServer } from '../../src/server/server.js';
import { tinyRealVocabFolder } from '../helpers.js';
import { parseSse, postJson } from './helpers.js';

let g3n: Gemma3n;
let server: GemmaServer;
let url: string;
beforeAll(async () => {
  g3n = await Gemma3n.load(tinyRealVocabFolder());
  server = createServer(g3n, { modelId: 'tiny' });
  ({ url } = await server.listen(0, '127.0.0.1'));
}, 120_000);
afterAll(async () => {
  await server?.shutdown(2000);
});

const ajv = new Ajv2020({ strict: false });
const SCHEMA = {
  type: 'object',
  properties: { answer: { enum: ['yes', 'no'] }, confidence: { type: 'integer', minimum: 0, maximum: 100 }, reason: { type: 'string', maxLength: 10 } },
  required: ['answer', 'confidence', 'reason'],
  additionalProperties: false,
};
const TOOLS = [
  {
    type: 'function',
    function: {
      name: 'lookup',
      description: 'Looks a word up',
      parameters: { type: 'object', properties: { word: { type: 'string', maxLength: 5 } }, required: ['word'], additionalProperties: false },
    },
  },
];
const base = { model: 'tiny', temperature: 1, top_k: 40, messages: [{ role: 'user', content: 'Is the sky blue?' }] };
const completions = (body: object) => postJson(`${url}/v1/chat/completions`, { ...base, ...body }, 120_000);

describe('server: structured output', () => {
  it('response_format json_schema (strict): the content parses and validates', async () => {
    const validate = ajv.compile(SCHEMA);
    for (const seed of [1, 2]) {
      const r = await completions({
        seed,
        max_tokens: 120,
        response_format: { type: 'json_schema', json_schema: { name: 'verdict', strict: true, schema: SCHEMA } },
      });
      expect(r.status).toBe(200);
      const choice = r.json.choices[0];
      expect(choice.finish_reason).toBe('stop');
      expect(validate(JSON.parse(choice.message.content))).toBe(true);
    }
  }, 120_000);

  it('response_format json_object: a JSON object or finish_reason "length"', async () => {
    const r = await completions({ seed: 1, max_tokens: 40, response_format: { type: 'json_object' } });
    expect(r.status).toBe(200);
    const choice = r.json.choices[0];
    if (choice.finish_reason === 'stop') expect(typeof JSON.parse(choice.message.content)).toBe('object');
    else expect(choice.finish_reason).toBe('length');
  }, 60_000);

  it('max_tokens too small: finish_reason "length", never "stop" with invalid JSON', async () => {
    const r = await completions({ seed: 1, max_tokens: 3, response_format: { type: 'json_schema', json_schema: { name: 'v', schema: SCHEMA } } });
    expect(r.json.choices[0].finish_reason).toBe('length');
  }, 60_000);

  it('a keyword the engine cannot enforce is a 400 naming it', async () => {
    const r = await completions({
      response_format: {
        type: 'json_schema',
        json_schema: { name: 'v', schema: { type: 'object', properties: { a: { type: 'string' } }, patternProperties: { x: {} } } },
      },
    });
    expect(r.status).toBe(400);
    expect(r.json.error.param).toBe('response_format.json_schema.schema');
    expect(r.json.error.code).toBe('unsupported_schema_keyword');
    expect(r.json.error.message).toContain("'patternProperties'");
    const deep = { type: 'object', properties: {} as Record<string, unknown> };
    let cur = deep;
    for (let i = 0; i < 100; i++) {
      const next = { type: 'object', properties: {} as Record<string, unknown> };
      cur.properties.a = next;
      cur = next;
    }
    const r2 = await completions({ response_format: { type: 'json_schema', json_schema: { name: 'v', schema: deep } } });
    expect(r2.status).toBe(400);
    expect(r2.json.error.message).toMatch(/deeper than 64/);
    const r3 = await completions({
      response_format: {
        type: 'json_schema',
        json_schema: { name: 'v', schema: { $defs: { a: { type: 'object', properties: { x: { $ref: '#/$defs/a' } }, required: ['x'] } }, $ref: '#/$defs/a' } },
      },
    });
    expect(r3.status).toBe(400);
    expect(r3.json.error.message).toMatch(/no finite value/);
  });

  it('tools with tool_choice "required": message.tool_calls and finish_reason "tool_calls"; the result goes back in', async () => {
    const r = await completions({ seed: 2, max_tokens: 60, tools: TOOLS, tool_choice: 'required', parallel_tool_calls: false });
    expect(r.status).toBe(200);
    const choice = r.json.choices[0];
    expect(choice.finish_reason).toBe('tool_calls');
    expect(choice.message.content).toBeNull();
    const [call] = choice.message.tool_calls;
    expect(call.type).toBe('function');
    expect(call.function.name).toBe('lookup');
    expect(ajv.validate(TOOLS[0].function.parameters, JSON.parse(call.function.arguments))).toBe(true);
    const next = await completions({
      seed: 2,
      max_tokens: 5,
      tools: TOOLS,
      messages: [...base.messages, { role: 'assistant', content: null, tool_calls: [call] }, { role: 'tool', tool_call_id: call.id, content: 'sky: blue' }],
    });
    expect(next.status).toBe(200);
    const bad = await completions({ tools: TOOLS, messages: [...base.messages, { role: 'tool', tool_call_id: 'call_x', content: 'x' }] });
    expect(bad.status).toBe(400);
    expect(bad.json.error.param).toBe('messages[1].tool_call_id');
  }, 120_000);

  it('streaming a tool call: delta.tool_calls (id and name, then argument pieces), no content, finish "tool_calls"', async () => {
    const r = await completions({
      seed: 4,
      max_tokens: 80,
      stream: true,
      parallel_tool_calls: false,
      tools: TOOLS,
      tool_choice: { type: 'function', function: { name: 'lookup' } },
    });
    expect(r.status).toBe(200);
    const events = parseSse(r.text).filter((e) => e !== '[DONE]') as any[];
    const calls: { id: string; args: string }[] = [];
    let finish = null;
    for (const e of events) {
      const ch = e.choices[0];
      if (ch.finish_reason) finish = ch.finish_reason;
      if (ch.delta.content) throw new Error(`unexpected content ${JSON.stringify(ch.delta.content)}`);
      for (const tc of ch.delta.tool_calls ?? []) {
        if (tc.id) {
          expect(tc.index).toBe(calls.length);
          expect(tc.function.name).toBe('lookup');
          calls.push({ id: tc.id, args: '' });
        }
        calls[tc.index].args += tc.function.arguments;
      }
    }
    expect(finish).toBe('tool_calls');
    expect(calls.length).toBeGreaterThan(0);
    for (const c of calls) {
      expect(c.id).toMatch(/^call_/);
      expect(ajv.validate(TOOLS[0].function.parameters, JSON.parse(c.args))).toBe(true);
    }
  }, 60_000);

  it('bad tools and tool_choice are 400s naming the field', async () => {
    const r = await completions({ tools: [{ type: 'function', function: { name: 'x y' } }] });
    expect(r.status).toBe(400);
    expect(r.json.error.param).toBe('tools[0].function.name');
    const r2 = await completions({ tools: TOOLS, tool_choice: { type: 'function', function: { name: 'other' } } });
    expect(r2.status).toBe(400);
    expect(r2.json.error.param).toBe('tool_choice');
  });
});
