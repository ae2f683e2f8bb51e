/**
 * Constrained generation on a tiny random-weight model with the real Gemma vocabulary: its
 * free output is noise, so every answer that parses and validates is the constraint's doing.
 * Answers are checked with ajv (an independent JSON Schema validator), at temperature 1 over
 * several seeds. (top-k 40 keeps the sampler's sort small: on this flat random model nearly every
 * allowed token is a candidate; the constraint is applied before top-k either way.)
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { Gemma3n } from '../../src/engine/engine.js';
import { tinyRealVocabFolder } from '../helpers.js';

let g3n: Gemma3n;
beforeAll(async () => {
  g3n = await Gemma3n.load(tinyRealVocabFolder());
}, 120_000);

const ajv = new Ajv2020({ strict: false, allErrors: true });
addFormats.default(ajv);

const SCHEMAS: Record<string, object> = {
  person: {
    type: 'object',
    properties: { name: { type: 'string', maxLength: 8 }, age: { type: 'integer', minimum: 0, maximum: 120 }, member: { type: 'boolean' } },
    required: ['name', 'age', 'member'],
    additionalProperties: false,
  },
  enums_and_null: {
    type: 'object',
    properties: { color: { enum: ['red', 'green', 'blue'] }, note: { type: ['string', 'null'], maxLength: 4 }, level: { const: 3 } },
    required: ['color', 'note', 'level'],
    additionalProperties: false,
  },
  numbers: {
    type: 'array',
    minItems: 1,
    maxItems: 4,
    items: { type: 'number', exclusiveMinimum: -2.5, maximum: 7.25 },
  },
  nested_anyof: {
    type: 'object',
    properties: {
      id: {
        anyOf: [
          { type: 'integer', minimum: 10, maximum: 99 },
          { type: 'string', minLength: 2, maxLength: 3 },
        ],
      },
      point: {
        type: 'object',
        properties: { x: { type: 'integer', minimum: -5, maximum: 5 }, y: { type: 'integer', minimum: -5, maximum: 5 } },
        required: ['x', 'y'],
        additionalProperties: false,
      },
      tags: { type: 'array', items: { type: 'string', maxLength: 3 }, maxItems: 2 },
    },
    required: ['id', 'point'],
    additionalProperties: false,
  },
  recursive_ref: {
    $defs: {
      node: {
        type: 'object',
        properties: { v: { type: 'integer', minimum: 0, maximum: 9 }, next: { anyOf: [{ type: 'null' }, { $ref: '#/$defs/node' }] } },
        required: ['v', 'next'],
        additionalProperties: false,
      },
    },
    $ref: '#/$defs/node',
  },
  formats: {
    type: 'object',
    properties: {
      day: { type: 'string', format: 'date' },
      at: { type: 'string', format: 'date-time' },
      code: { type: 'string', pattern: '^[A-Z]{3}-\\d{2}$' },
    },
    required: ['day', 'at', 'code'],
    additionalProperties: false,
  },
};

/** Unbounded (free keys): an answer either finishes valid or runs into max tokens. */
const MAP_OF_BOOLS = {
  type: 'object',
  additionalProperties: { type: 'boolean' },
  properties: { fixed: { type: 'integer', minimum: 1, maximum: 1 } },
  required: ['fixed'],
};

describe('constrained generation (json_schema)', () => {
  for (const [name, schema] of Object.entries(SCHEMAS)) {
    it(`${name}: every seed at temperature 1 gives a valid answer`, async () => {
      const validate = ajv.compile(schema);
      for (const seed of [1, 2, 3]) {
        const r = await g3n.generate([{ role: 'user', content: 'Answer in JSON.' }], {
          temperature: 1,
          topK: 40,
          seed,
          maxTokens: 200,
          responseFormat: { type: 'json_schema', schema },
        });
        // A bounded-enough schema finishes: the model chose the end token, and it was allowed.
        if (r.metrics.stopReason !== 'stop_token') throw new Error(`${name} seed ${seed} did not finish: ${JSON.stringify(r.text)}`);
        const value = JSON.parse(r.text);
        if (!validate(value)) throw new Error(`${name} seed ${seed}: ${JSON.stringify(r.text)} fails ${ajv.errorsText(validate.errors)}`);
      }
    }, 120_000);
  }

  it('json_object mode and free keys: a valid object, or max tokens (never an invalid "stop")', async () => {
    const validate = ajv.compile(MAP_OF_BOOLS);
    let finished = 0;
    for (const seed of [1, 2, 3, 4]) {
      for (const fmt of [{ type: 'json_object' as const }, { type: 'json_schema' as const, schema: MAP_OF_BOOLS }]) {
        const r = await g3n.generate([{ role: 'user', content: 'JSON please.' }], { temperature: 1, topK: 40, seed, maxTokens: 48, responseFormat: fmt });
        expect(r.text.startsWith('{')).toBe(true);
        if (r.metrics.stopReason !== 'stop_token') {
          expect(r.metrics.stopReason).toBe('max_tokens');
          continue;
        }
        finished++;
        const v = JSON.parse(r.text);
        expect(typeof v === 'object' && v !== null && !Array.isArray(v)).toBe(true);
        if (fmt.type === 'json_schema') expect(validate(v)).toBe(true);
      }
    }
    expect(finished).toBeGreaterThan(0);
  }, 120_000);

  it('max tokens too small for the answer ends with max_tokens, never a stop', async () => {
    const r = await g3n.generate([{ role: 'user', content: 'x' }], {
      temperature: 1,
      seed: 5,
      maxTokens: 3,
      responseFormat: { type: 'json_schema', schema: SCHEMAS.person },
    });
    expect(r.metrics.stopReason).toBe('max_tokens');
    expect(r.ids.length).toBe(3);
    expect(() => JSON.parse(r.text)).toThrow();
  }, 60_000);

  it('greedy (temperature 0) constrained answers are valid too', async () => {
    const validate = ajv.compile(SCHEMAS.person);
    const r = await g3n.generate('Say hi', { temperature: 0, maxTokens: 200, responseFormat: { type: 'json_schema', schema: SCHEMAS.person } });
    expect(r.metrics.stopReason).toBe('stop_token');
    expect(validate(JSON.parse(r.text))).toBe(true);
  }, 60_000);

  it('an unsupported keyword is refused with its name, before generating', async () => {
    await expect(
      g3n.generate('x', { maxTokens: 5, responseFormat: { type: 'json_schema', schema: { type: 'string', contentEncoding: 'base64' } } }),
    ).rejects.toThrow(/'contentEncoding'/);
    await expect(g3n.generate('x', { maxTokens: 5, responseFormat: { type: 'json_schema', schema: { type: 'array', uniqueItems: true } } })).rejects.toThrow(
      /'uniqueItems'/,
    );
    await expect(g3n.generate('x', { maxTokens: 5, responseFormat: { type: 'json_schema', schema: { type: 'string', format: 'email' } } })).rejects.toThrow(
      /format "email"/,
    );
    // The engine stays usable.
    const r = await g3n.generate('x', { maxTokens: 40, temperature: 1, seed: 1, responseFormat: { type: 'json_schema', schema: { type: 'boolean' } } });
    expect([true, false]).toContain(JSON.parse(r.text));
  }, 60_000);
});
