/**
 * Tool calling in the library API on the tiny random-weight model (real Gemma vocabulary): the
 * calls it makes are the constraint's doing, so each must name a declared tool and carry
 * arguments valid for that tool's parameters (checked with ajv), and stream as deltas that add
 * up to the final calls.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { Gemma3n } from '../../src/engine/engine.js';
import { renderToolMessages, type ToolCallDelta, type ToolChatMessage, type ToolDefinition } from '../../src/engine/tools.js';
import { tinyRealVocabFolder } from '../helpers.js';

let g3n: Gemma3n;
beforeAll(async () => {
  g3n = await Gemma3n.load(tinyRealVocabFolder());
}, 120_000);

const ajv = new Ajv2020({ strict: false });

const TOOLS: ToolDefinition[] = [
  {
    type: 'function',
    function: {
      name: 'get_weather',
      description: 'Current weather in a city',
      parameters: {
        type: 'object',
        properties: { city: { type: 'string', maxLength: 6 }, unit: { enum: ['c', 'f'] } },
        required: ['city', 'unit'],
        additionalProperties: false,
      },
    },
  },
  {
    type: 'function',
    function: {
      name: 'add',
      description: 'Adds two small integers',
      parameters: {
        type: 'object',
        properties: { a: { type: 'integer', minimum: 0, maximum: 9 }, b: { type: 'integer', minimum: 0, maximum: 9 } },
        required: ['a', 'b'],
        additionalProperties: false,
      },
    },
  },
  { type: 'function', function: { name: 'ping' } },
];
const validators = new Map(TOOLS.map((t) => [t.function.name, ajv.compile(t.function.parameters ?? { type: 'object', additionalProperties: false })]));
const ask = [{ role: 'user', content: 'What is the weather in Paris?' }];

function checkCalls(calls: { function: { name: string; arguments: string } }[] | undefined, allowed: string[]): void {
  expect(calls?.length).toBeGreaterThan(0);
  for (const c of calls!) {
    expect(allowed).toContain(c.function.name);
    const validate = validators.get(c.function.name)!;
    const args = JSON.parse(c.function.arguments);
    if (!validate(args)) throw new Error(`${c.function.name}(${c.function.arguments}): ${ajv.errorsText(validate.errors)}`);
  }
}

describe('tool calling', () => {
  it('tool_choice "required": every seed calls a declared tool with valid arguments', async () => {
    for (const seed of [1, 2, 3, 4]) {
      // (The declarations take ~420 of the tiny model's 512 positions: one call per answer here.)
      const r = await g3n.generate(ask, { tools: TOOLS, toolChoice: 'required', parallelToolCalls: false, temperature: 1, topK: 40, seed, maxTokens: 88 });
      expect(r.metrics.stopReason).toBe('stop_token');
      checkCalls(r.toolCalls, ['get_weather', 'add', 'ping']);
      for (const c of r.toolCalls!) expect(c.id).toMatch(/^call_[0-9a-f]{24}$/);
    }
  }, 120_000);

  it('a named function: only that one, single call when parallel calls are off', async () => {
    for (const seed of [1, 2]) {
      const r = await g3n.generate(ask, {
        tools: TOOLS,
        toolChoice: { type: 'function', function: { name: 'add' } },
        parallelToolCalls: false,
        temperature: 1,
        topK: 40,
        seed,
        maxTokens: 80,
      });
      checkCalls(r.toolCalls, ['add']);
      expect(r.toolCalls).toHaveLength(1);
      expect(r.text.trim().startsWith('{')).toBe(true);
    }
  }, 120_000);

  it('streamed deltas add up to the final calls', async () => {
    const deltas: ToolCallDelta[] = [];
    const r = await g3n.generate(ask, {
      tools: TOOLS,
      toolChoice: 'required',
      temperature: 1,
      topK: 40,
      seed: 7,
      maxTokens: 88,
      onToolCall: (d) => deltas.push(d),
    });
    expect(r.metrics.stopReason).toBe('stop_token');
    checkCalls(r.toolCalls, ['get_weather', 'add', 'ping']);
    const rebuilt: { id: string; name: string; args: string }[] = [];
    for (const d of deltas) {
      if (d.id) {
        expect(d.index).toBe(rebuilt.length);
        rebuilt.push({ id: d.id, name: d.function.name!, args: '' });
      }
      rebuilt[d.index].args += d.function.arguments;
    }
    expect(rebuilt.map((c) => ({ id: c.id, type: 'function', function: { name: c.name, arguments: c.args } }))).toEqual(r.toolCalls);
  }, 60_000);

  it('"auto": prose, or a valid call', async () => {
    for (const seed of [1, 2, 3]) {
      const r = await g3n.generate(ask, { tools: TOOLS, temperature: 1, topK: 40, seed, maxTokens: 40 });
      if (r.toolCalls) checkCalls(r.toolCalls, ['get_weather', 'add', 'ping']);
      else expect(r.text.trimStart().startsWith('{') && r.metrics.stopReason === 'stop_token').toBe(false);
    }
  }, 60_000);

  it('"none": plain text, no constraint, no calls', async () => {
    const r = await g3n.generate(ask, { tools: TOOLS, toolChoice: 'none', temperature: 1, topK: 40, seed: 1, maxTokens: 8 });
    expect(r.toolCalls).toBeUndefined();
    expect(r.metrics.maskMs).toBeUndefined();
  }, 60_000);

  it('too few tokens for the call: no tool_calls, stop reason max_tokens', async () => {
    const r = await g3n.generate(ask, { tools: TOOLS, toolChoice: 'required', temperature: 1, topK: 40, seed: 1, maxTokens: 2 });
    expect(r.metrics.stopReason).toBe('max_tokens');
    expect(r.toolCalls).toBeUndefined();
  }, 60_000);

  it('tool results come back as a user turn of ```tool_output blocks, and the next request runs', async () => {
    const first = await g3n.generate(ask, {
      tools: TOOLS,
      toolChoice: { type: 'function', function: { name: 'get_weather' } },
      parallelToolCalls: false,
      temperature: 1,
      topK: 40,
      seed: 3,
      maxTokens: 80,
    });
    const call = first.toolCalls![0];
    const history: ToolChatMessage[] = [
      ...ask,
      { role: 'assistant', content: '', toolCalls: [call] },
      { role: 'tool', toolCallId: call.id, content: '{"temp": 21}' },
    ];
    const rendered = renderToolMessages(history, TOOLS, 'auto');
    expect(rendered.map((m) => m.role)).toEqual(['system', 'user', 'assistant', 'user']);
    expect(rendered[0].content).toContain('You have access to functions.');
    expect(rendered[0].content).toContain('"name": "get_weather"');
    expect(rendered[2].content).toBe(`{"name": "get_weather", "parameters": ${call.function.arguments}}`);
    expect(rendered[3].content).toBe('```tool_output\n{"temp": 21}\n```');
    const second = await g3n.generate(history, { tools: TOOLS, toolChoice: 'none', temperature: 1, topK: 40, seed: 3, maxTokens: 6 });
    expect(second.metrics.generatedTokens).toBeGreaterThan(0);
  }, 60_000);

  it('bad tool declarations are refused with the field named', async () => {
    await expect(g3n.generate(ask, { tools: [{ type: 'function', function: { name: 'bad name' } }], maxTokens: 4 })).rejects.toThrow(
      /tools\[0\]\.function\.name/,
    );
    await expect(g3n.generate(ask, { tools: TOOLS, toolChoice: { type: 'function', function: { name: 'nope' } }, maxTokens: 4 })).rejects.toThrow(/"nope"/);
    await expect(
      g3n.generate(ask, {
        tools: [{ type: 'function', function: { name: 'f', parameters: { type: 'object', properties: { x: { type: 'string', pattern: '(?=x)' } } } } }],
        maxTokens: 4,
      }),
    ).rejects.toThrow(/lookaround/);
  });
});
