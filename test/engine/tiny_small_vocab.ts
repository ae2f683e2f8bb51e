/** A tiny random model (no tokenizer) with every Gemma 3n mechanism and a small vocabulary, for fast step-level tests. */
import { MemoryFolder } from '../../src/io/byte_source.js';
import { writeSafetensors } from '../../src/checkpoint/safetensors.js';
import { syntheticTextTensors, tinyRandomConfig } from '../../src/checkpoint/synthetic.js';

/** Every Gemma 3n mechanism, tiny: sparse FFN, KV sharing, sliding window 8, a 4096-id vocabulary. */
export function tinyFolder(): MemoryFolder {
  const config = {
    ...tinyRandomConfig(),
    vocab_size: 4096, vocab_size_per_layer_input: 4096,
    hidden_size: 32, hidden_size_per_layer_input: 4, num_hidden_layers: 5, intermediate_size: 64,
    head_dim: 16, num_attention_heads: 2, num_key_value_heads: 1, laurel_rank: 4, num_kv_shared_layers: 2,
    layer_types: ['sliding_attention', 'sliding_attention', 'full_attention', 'sliding_attention', 'full_attention'],
    activation_sparsity_pattern: [0.95, 0, 0, 0, 0], sliding_window: 8, max_position_embeddings: 512,
  };
  return new MemoryFolder(new Map<string, Uint8Array>([
    ['config.json', new TextEncoder().encode(JSON.stringify(config))],
    ['model.safetensors', writeSafetensors(syntheticTextTensors(config, 7, 'F32'))],
  ]), '<tiny>');
}

