/**
 * `npm run bench:gemma4 [-- --json] [--threads N] [--models gemma3n-e2b,gemma4-e2b,gemma4-e4b]`: Gemma 4 E2B and E4B next to Gemma 3n E2B on
 * the same engine and kernels: synthetic real-size weights (int4 decoder and LM head, per-layer
 * table streamed), prefill of 64 tokens and decode at a ~64-token context, timed with the
 * `benchmark` package. The Gemma 4 models are the synthetic checkpoints quantized to packed v2
 * (bench/gemma4_synthetic.ts, written once into .cache/) and loaded in the default low-memory
 * mode, so the run also proves they load, quantize and decode at real shape. The last stdout
 * line with --json is one JSON object.
 */
import Benchmark from 'benchmark';
import { cpus } from 'node:os';
import { loadTextWeights } from '../src/checkpoint/weights.js';
import type { CausalLM } from '../src/model/causal_lm.js';
import { Gemma4TextModel } from '../src/model/gemma4_text_model.js';
import { Gemma3nTextModel } from '../src/model/text_model.js';
import { createNodeWasmKernels } from '../src/node/wasm_host.js';
import { packedE2B } from './e2b_synthetic.js';
import { NodeFolder } from '../src/node/fs_folder.js';
import { packedGemma4, type Gemma4Size } from './gemma4_synthetic.js';

/** Prompt length of the prefill measurement (64 keeps the E4B run within minutes on 2 cores). */
const PREFILL = 64;

const args = process.argv.slice(2);
const json = args.includes('--json');
const threadsArg = args.indexOf('--threads');
const threads = threadsArg >= 0 ? Number(args[threadsArg + 1]) : undefined;
const log = (s: string) => process.stderr.write(s + '\n');
const modelsArg = args.indexOf('--models');
/** Which models to run: gemma3n-e2b, gemma4-e2b, gemma4-e4b (default all). */
const models = new Set(modelsArg >= 0 ? args[modelsArg + 1].split(',') : ['gemma3n-e2b', 'gemma4-e2b', 'gemma4-e4b']);

function timeAsync(name: string, fn: () => Promise<void>): Promise<number> {
  return new Promise((resolve, reject) => {
    const b = new Benchmark(name, {
      defer: true,
      fn: (d: { resolve(): void }) => {
        fn().then(() => d.resolve(), reject);
      },
      minSamples: 3,
      maxTime: 4,
      initCount: 1,
      onComplete: () => {
        const s = [...b.stats.sample].sort((x, y) => x - y);
        resolve(s[s.length >> 1]); // median seconds
      },
      onError: (e: unknown) => reject(e),
    });
    b.run({ async: true });
  });
}

async function measure(label: string, model: CausalLM, vocab: number): Promise<{ prefill_tok_s: number; decode_tok_s: number }> {
  const prompt = Array.from({ length: PREFILL }, (_, i) => 2 + ((i * 7919) % (vocab - 10)));
  const prefill = await timeAsync(`${label} prefill ${PREFILL}`, async () => {
    const cache = model.newCache();
    await model.forward(prompt, cache, { logits: 'last' });
    cache.release();
  });
  const cache = model.newCache();
  await model.forward(prompt, cache, { logits: 'none' });
  const start = cache.position;
  const decode = await timeAsync(`${label} decode`, async () => {
    if (cache.position >= start + 32) cache.rewind(start);
    await model.forward([5 + (cache.position % 100)], cache);
  });
  cache.release();
  const r = { prefill_tok_s: PREFILL / prefill, decode_tok_s: 1 / decode };
  log(`${label}: prefill ${PREFILL} ${r.prefill_tok_s.toFixed(1)} tok/s, decode ${r.decode_tok_s.toFixed(2)} tok/s`);
  return r;
}

async function main(): Promise<void> {
  const kernels = await createNodeWasmKernels({ threads });
  const cpu = cpus()[0]?.model ?? 'unknown CPU';
  log(`CPU: ${cpu}, ${kernels.name}`);
  const out: Record<string, number | string> = { cpu, kernels: kernels.name, prefill_tokens: PREFILL };

  if (models.has('gemma3n-e2b')) {
    const { store, config } = await packedE2B(log);
    const t0 = performance.now();
    const model = new Gemma3nTextModel(config, await loadTextWeights(store, config, kernels, { format: 'q4', ple: 'stream' }), kernels);
    log(`Gemma 3n E2B loaded in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    const r = await measure('Gemma 3n E2B', model, config.vocabSize);
    out.gemma3n_e2b_prefill_tok_s = r.prefill_tok_s;
    out.gemma3n_e2b_decode_tok_s = r.decode_tok_s;
    for (const l of model.weights.layers)
      for (const w of [l.self_attn.q_proj, l.self_attn.k_proj, l.self_attn.v_proj, l.self_attn.o_proj, l.mlp.gate_proj, l.mlp.up_proj, l.mlp.down_proj])
        if (w) kernels.release(w);
    kernels.release(model.weights.lm_head);
  }
  for (const size of ['e2b', 'e4b'] as Gemma4Size[]) {
    if (!models.has(`gemma4-${size}`)) continue;
    const dir = await packedGemma4(size, log);
    const t0 = performance.now();
    const { model, checkpoint } = await Gemma4TextModel.load(new NodeFolder(dir), kernels);
    const config = model.config,
      weights = model.weights;
    log(`Gemma 4 ${size.toUpperCase()} (packed v2, PLE and embedding rows from disk) loaded in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    const r = await measure(`Gemma 4 ${size.toUpperCase()}`, model, config.vocabSize);
    out[`gemma4_${size}_prefill_tok_s`] = r.prefill_tok_s;
    out[`gemma4_${size}_decode_tok_s`] = r.decode_tok_s;
    for (const l of weights.layers)
      for (const w of [
        l.self_attn.q_proj,
        l.self_attn.k_proj,
        l.self_attn.v_proj,
        l.self_attn.o_proj,
        l.mlp.gate_proj,
        l.mlp.up_proj,
        l.mlp.down_proj,
        l.per_layer_input_gate,
        l.per_layer_projection,
      ])
        if (w) kernels.release(w);
    kernels.release(weights.lm_head);
    kernels.release(weights.per_layer_model_projection);
    await checkpoint.close();
  }
  if (json) console.log(JSON.stringify(out));
  kernels.dispose();
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
