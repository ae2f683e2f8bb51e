/**
 * The Gemma 4 text decoder against test/golden/gemma4/text-tiny-{a,b} (tolerances from
 * test/golden/gemma4/README.md: logits 1e-3, hidden_states / layer_outputs 2e-3,
 * last_hidden_state 5e-4, inputs_embeds 1e-6, per_layer_inputs 1e-5, step logits 1e-3, ids exact).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseGemma4Config } from '../../src/checkpoint/gemma4_config.js';
import type { SafetensorsFile } from '../../src/checkpoint/safetensors.js';
import { greedyGenerate } from '../../src/engine/greedy.js';
import { TsKernels } from '../../src/kernels/ts_kernels.js';
import { Gemma4TextModel } from '../../src/model/gemma4_text_model.js';
import { createNodeWasmKernels } from '../../src/node/wasm_host.js';
import { GOLDEN, goldenFolder, maxAbsDiff, openSafetensors } from '../helpers.js';

interface Generation { prompts: { prompt_ids: number[]; generated_ids: number[] }[] }

for (const name of ['text-tiny-a', 'text-tiny-b']) {
  describe(`Gemma 4 golden ${name}`, () => {
    let model: Gemma4TextModel;
    let golden: SafetensorsFile;
    beforeAll(async () => {
      ({ model } = await Gemma4TextModel.load(goldenFolder(`gemma4/${name}`), new TsKernels()));
      golden = await openSafetensors(join(GOLDEN, 'gemma4', name, 'golden.safetensors'));
    });

    it('RoPE inverse frequencies (default on sliding, proportional on full layers) equal aux.*', async () => {
      const c = model.config;
      const s = c.layerTypes.indexOf('sliding_attention'), f = c.layerTypes.indexOf('full_attention');
      const ropes = (model as unknown as { ropes: { invFreq: Float32Array }[] }).ropes;
      expect(maxAbsDiff(ropes[s].invFreq, await golden.readF32('aux.inv_freq.sliding_attention'))).toBe(0);
      expect(maxAbsDiff(ropes[f].invFreq, await golden.readF32('aux.inv_freq.full_attention'))).toBe(0);
    });

    for (const seq of [0, 1, 2]) {
      it(`sequence ${seq}: logits, hidden states, layer outputs, last hidden state, embeddings`, async () => {
        const ids = Array.from(await golden.readF32(`input_ids.${seq}`));
        const got = new Map<string, Float32Array>();
        const res = await model.forward(ids, model.newCache(), { logits: 'all', trace: (n, d) => got.set(n, new Float32Array(d)) });
        const L = model.config.numHiddenLayers;
        expect(maxAbsDiff(got.get('inputs_embeds')!, await golden.readF32(`inputs_embeds.${seq}`))).toBeLessThan(1e-6);
        expect(maxAbsDiff(got.get('per_layer_inputs')!, await golden.readF32(`per_layer_inputs.${seq}`))).toBeLessThan(1e-5);
        const hs = await golden.readF32(`hidden_states.${seq}`), lo = await golden.readF32(`layer_outputs.${seq}`);
        const per = hs.length / (L + 1);
        for (let l = 0; l <= L; l++) expect(maxAbsDiff(got.get(`hidden_states.${l}`)!, hs.subarray(l * per, (l + 1) * per)), `hidden_states[${l}]`).toBeLessThan(2e-3);
        for (let l = 0; l < L; l++) expect(maxAbsDiff(got.get(`layer_outputs.${l}`)!, lo.subarray(l * per, (l + 1) * per)), `layer_outputs[${l}]`).toBeLessThan(2e-3);
        expect(maxAbsDiff(got.get('last_hidden_state')!, await golden.readF32(`last_hidden_state.${seq}`))).toBeLessThan(5e-4);
        expect(maxAbsDiff(res.logits, await golden.readF32(`logits.${seq}`))).toBeLessThan(1e-3);
      });
    }

    it('greedy continuations through the KV cache match token for token, step logits within 1e-3', async () => {
      const gen = JSON.parse(readFileSync(join(GOLDEN, 'gemma4', name, 'generation.json'), 'utf8')) as Generation;
      for (const [p, prompt] of gen.prompts.entries()) {
        const stepLogits: Float32Array[] = [];
        const out = await greedyGenerate(model, prompt.prompt_ids, 16, { onLogits: (l) => stepLogits.push(new Float32Array(l)) });
        expect(out).toEqual(prompt.generated_ids);
        const ref = await golden.readF32(`gen.${p}.step_logits`);
        const V = model.config.vocabSize;
        for (let s = 0; s < 16; s++) expect(maxAbsDiff(stepLogits[s], ref.subarray(s * V, (s + 1) * V)), `step ${s}`).toBeLessThan(1e-3);
      }
    });
  });
}

describe('Gemma 4 text on the WASM kernels', () => {
  for (const threads of [1, 2]) {
    it(`${threads} thread(s): golden greedy continuations and logits within 1e-3 (256/512-wide heads, proportional RoPE, shared KV)`, async () => {
      const k = await createNodeWasmKernels({ threads });
      try {
        for (const name of ['text-tiny-a', 'text-tiny-b']) {
          const { model } = await Gemma4TextModel.load(goldenFolder(`gemma4/${name}`), k);
          const golden = await openSafetensors(join(GOLDEN, 'gemma4', name, 'golden.safetensors'));
          const ids = Array.from(await golden.readF32('input_ids.2'));
          const res = await model.forward(ids, model.newCache(), { logits: 'all' });
          expect(maxAbsDiff(res.logits, await golden.readF32('logits.2'))).toBeLessThan(1e-3);
          const gen = JSON.parse(readFileSync(join(GOLDEN, 'gemma4', name, 'generation.json'), 'utf8')) as Generation;
          for (const p of gen.prompts) expect(await greedyGenerate(model, p.prompt_ids, 16)).toEqual(p.generated_ids);
        }
      } finally {
        k.dispose();
      }
    });
  }
});

describe('Gemma 4 text with the per-layer table streamed from the file', () => {
  it('gives the same logits as the table in memory, reading only the rows the tokens need', async () => {
    const golden = await openSafetensors(join(GOLDEN, 'gemma4', 'text-tiny-b', 'golden.safetensors'));
    const ids = Array.from(await golden.readF32('input_ids.1'));
    const { model: resident } = await Gemma4TextModel.load(goldenFolder('gemma4/text-tiny-b'), new TsKernels());
    const { model: streamed, checkpoint } = await Gemma4TextModel.load(goldenFolder('gemma4/text-tiny-b'), new TsKernels(), { ple: 'stream', pleCacheRows: 4 });
    try {
      expect(streamed.weights.embed_tokens_per_layer.constructor.name).toBe('StreamedTable');
      const a = await resident.forward(ids, resident.newCache(), { logits: 'all' });
      const b = await streamed.forward(ids, streamed.newCache(), { logits: 'all' });
      expect(maxAbsDiff(a.logits, b.logits)).toBe(0);
    } finally {
      await checkpoint.close();
    }
  });
});

describe('Gemma 4 text, bf16 weights (text-tiny-a)', () => {
  it('logits equal logits_f32compute within the f32 tolerance', async () => {
    const { model } = await Gemma4TextModel.load(goldenFolder('gemma4/text-tiny-a'), new TsKernels(), { weightsFile: 'model.bf16.safetensors' });
    const g = await openSafetensors(join(GOLDEN, 'gemma4', 'text-tiny-a', 'golden.bf16.safetensors'));
    for (const seq of [0, 1, 2]) {
      const ids = Array.from(await g.readF32(`input_ids.${seq}`));
      const res = await model.forward(ids, model.newCache(), { logits: 'all' });
      expect(maxAbsDiff(res.logits, await g.readF32(`logits_f32compute.${seq}`)), `seq ${seq}`).toBeLessThan(1e-3);
    }
  });
});

describe('Gemma 4 config', () => {
  const base = JSON.parse(readFileSync(join(GOLDEN, 'gemma4', 'text-tiny-a', 'config.json'), 'utf8')) as { text_config: Record<string, unknown> };
  const withText = (patch: Record<string, unknown>) => JSON.stringify({ ...base, text_config: { ...base.text_config, ...patch } });

  it('derives per-layer head sizes, MLP widths and KV sources as the README tables say', () => {
    const a = parseGemma4Config(readFileSync(join(GOLDEN, 'gemma4', 'text-tiny-a', 'config.json'), 'utf8')).text;
    expect(a.layerHeadDims).toEqual([16, 16, 16, 16, 32, 16, 16, 16, 16, 32]);
    expect(a.layerIntermediateSizes).toEqual([192, 192, 192, 192, 192, 192, 384, 384, 384, 384]);
    expect(a.kvSources).toEqual([0, 1, 2, 3, 4, 5, 5, 5, 5, 4]);
    const b = parseGemma4Config(readFileSync(join(GOLDEN, 'gemma4', 'text-tiny-b', 'config.json'), 'utf8')).text;
    expect(b.kvSources).toEqual([0, 1, 2, 3, 4, 5, 4, 4, 4, 4, 4, 5]);
    expect(b.layerIntermediateSizes.every((i) => i === 160)).toBe(true);
    for (const size of ['e2b', 'e4b']) {
      const full = parseGemma4Config(readFileSync(join(GOLDEN, 'gemma4', 'full-size', size, 'config.json'), 'utf8')).text;
      const plan = JSON.parse(readFileSync(join(GOLDEN, 'gemma4', 'full-size', size, 'layer_plan.json'), 'utf8')) as unknown;
      const layers = (plan as { layers: { type: string; head_dim: number; kv_source: number | null; mlp_intermediate: number }[] }).layers;
      expect(layers.length).toBe(full.numHiddenLayers);
      layers.forEach((row, l) => {
        expect(full.layerHeadDims[l], `${size} layer ${l} head_dim`).toBe(row.head_dim);
        expect(full.kvSources[l], `${size} layer ${l} kv source`).toBe(row.kv_source === null ? l : row.kv_source);
        expect(full.layerIntermediateSizes[l], `${size} layer ${l} mlp`).toBe(row.mlp_intermediate);
        expect(full.layerTypes[l]).toBe(row.type);
      });
    }
  });

  it('refuses what E2B/E4B do not have, naming the field', () => {
    expect(() => parseGemma4Config(withText({ attention_k_eq_v: true }))).toThrow(/attention_k_eq_v/);
    expect(() => parseGemma4Config(withText({ enable_moe_block: true }))).toThrow(/enable_moe_block/);
    expect(() => parseGemma4Config(withText({ hidden_size_per_layer_input: 0 }))).toThrow(/hidden_size_per_layer_input/);
    expect(() => parseGemma4Config(withText({ layer_types: ['sliding_attention'] }))).toThrow(/layer_types/);
    expect(() => parseGemma4Config(withText({ num_kv_shared_layers: 10 }))).toThrow(/num_kv_shared_layers/);
    expect(() => parseGemma4Config(withText({ rope_parameters: { sliding_attention: { rope_theta: 1e4 }, full_attention: { rope_type: 'yarn', rope_theta: 1e6 } } }))).toThrow(/rope_type/);
    expect(() => parseGemma4Config(JSON.stringify({ model_type: 'gemma3n' }))).toThrow(/model_type/);
  });
});
