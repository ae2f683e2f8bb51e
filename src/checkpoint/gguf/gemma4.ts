/**
 * Gemma 4 (E2B/E4B) in GGUF, as llama.cpp's converter writes it [convert_hf_to_gguf.py
 * Gemma4Model(Gemma3Model); gguf-py constants.py MODEL_ARCH.GEMMA4 / tensor_mapping.py;
 * src/models/gemma4.cpp, llama-model.cpp LLM_ARCH_GEMMA4]: architecture `gemma4`, metadata under
 * `gemma4.*`, the text decoder only (the towers go to a separate mmproj file), tensors renamed
 * as for Gemma 3n plus `blk.N.layer_output_scale.weight` (layer_scalar) and one generated
 * `rope_freqs.weight`, norms stored as is (x·w), dims innermost first.
 *
 * What the metadata says, and where it lands in the Hugging Face text config:
 *   attention.key_length / key_length_swa      global_head_dim / head_dim (full / sliding layers)
 *   feed_forward_length (per layer when double) intermediate_size, use_double_wide_mlp
 *   attention.sliding_window_pattern (bool[])   layer_types
 *   rope.freq_base / rope.freq_base_swa         rope_parameters.full_attention / sliding_attention θ
 *   attention.shared_kv_layers                  num_kv_shared_layers
 *   rope_freqs.weight [global_head_dim / 2]     1.0 for the pairs proportional RoPE rotates, 1e30
 *                                               for the rest: partial_rotary_factor = 2·n / hd
 */
import type { GgufFile } from './reader.js';
import { CheckpointError } from '../safetensors.js';

export const GGUF_ARCH_GEMMA4 = 'gemma4';

/** Per-layer tensors: Hugging Face name after `layers.N.` → GGUF name after `blk.N.`. */
export const GEMMA4_LAYER_NAMES: Readonly<Record<string, string>> = {
  'input_layernorm.weight': 'attn_norm.weight',
  'self_attn.q_proj.weight': 'attn_q.weight',
  'self_attn.k_proj.weight': 'attn_k.weight',
  'self_attn.v_proj.weight': 'attn_v.weight',
  'self_attn.o_proj.weight': 'attn_output.weight',
  'self_attn.q_norm.weight': 'attn_q_norm.weight',
  'self_attn.k_norm.weight': 'attn_k_norm.weight',
  'post_attention_layernorm.weight': 'post_attention_norm.weight',
  'pre_feedforward_layernorm.weight': 'ffn_norm.weight',
  'post_feedforward_layernorm.weight': 'post_ffw_norm.weight',
  'mlp.gate_proj.weight': 'ffn_gate.weight',
  'mlp.up_proj.weight': 'ffn_up.weight',
  'mlp.down_proj.weight': 'ffn_down.weight',
  'per_layer_input_gate.weight': 'inp_gate.weight',
  'per_layer_projection.weight': 'proj.weight',
  'post_per_layer_input_norm.weight': 'post_norm.weight',
  layer_scalar: 'layer_output_scale.weight', // filter_tensors renames it layer_scalar.weight first
};

export const GEMMA4_GLOBAL_NAMES: Readonly<Record<string, string>> = {
  'embed_tokens.weight': 'token_embd.weight',
  'embed_tokens_per_layer.weight': 'per_layer_token_embd.weight',
  'per_layer_model_projection.weight': 'per_layer_model_proj.weight',
  'per_layer_projection_norm.weight': 'per_layer_proj_norm.weight',
  'norm.weight': 'output_norm.weight',
};

export const ROPE_FREQS = 'rope_freqs.weight';

/** GGUF stores f32: the shortest decimal that rounds to the stored value (1e-6, not 9.99999997e-7). */
function f32Decimal(x: number): number {
  for (let p = 1; p <= 9; p++) {
    const d = Number(x.toPrecision(p));
    if (Math.fround(d) === Math.fround(x)) return d;
  }
  return x;
}

/**
 * A Hugging Face `gemma4_text` config (config.json) from the `gemma4.*` metadata, the tensor
 * shapes and the rope_freqs tensor (whose values are read: pass them in). Every missing or
 * inconsistent field is an error naming the metadata key or tensor.
 */
export function gemma4ConfigFromGguf(f: GgufFile, ropeFreqs: Float32Array): Record<string, unknown> {
  const arch = f.str('general.architecture');
  if (arch !== GGUF_ARCH_GEMMA4) throw new CheckpointError(`${f.name}: architecture '${arch}' is not '${GGUF_ARCH_GEMMA4}'`);
  const k = (s: string) => `${GGUF_ARCH_GEMMA4}.${s}`;
  const fail = (msg: string): never => {
    throw new CheckpointError(`${f.name}: ${msg}`);
  };
  const L = f.num(k('block_count'));
  const perLayer = (key: string): number[] => {
    const v = f.numbers(k(key)) ?? fail(`metadata '${k(key)}' is missing`);
    if (v.length === 1) return Array(L).fill(v[0]);
    if (v.length !== L) fail(`metadata '${k(key)}' has ${v.length} entries for ${L} layers`);
    return v;
  };
  const uniform = (key: string): number => {
    const v = perLayer(key);
    if (v.some((x) => x !== v[0]))
      fail(`metadata '${k(key)}' varies by layer (${v.join(', ')}): per-layer KV heads (num_global_key_value_heads, the 31B/26B models) are not supported`);
    return v[0];
  };
  const pattern = f.metadata.get(k('attention.sliding_window_pattern'));
  if (pattern === undefined || typeof pattern !== 'object') fail(`metadata '${k('attention.sliding_window_pattern')}' must be a per-layer bool array`);
  const swa = f.numbers(k('attention.sliding_window_pattern'))!;
  if (swa.length !== L) fail(`metadata '${k('attention.sliding_window_pattern')}' has ${swa.length} entries for ${L} layers`);
  const layerTypes = swa.map((s) => (s ? 'sliding_attention' : 'full_attention'));

  const shared = f.num(k('attention.shared_kv_layers'), 0);
  const first = L - shared;
  const ff = perLayer('feed_forward_length');
  const I = ff[0];
  const doubleWide = shared > 0 && ff[L - 1] === 2 * I;
  ff.forEach((n, l) => {
    if (n !== (doubleWide && l >= first ? 2 * I : I))
      fail(`metadata '${k('feed_forward_length')}' is ${n} at layer ${l}; Gemma 4 has one width, doubled only in the KV-shared layers`);
  });

  const headDim = f.num(k('attention.key_length_swa'));
  const globalHeadDim = f.num(k('attention.key_length'));
  if (f.num(k('attention.value_length_swa'), headDim) !== headDim || f.num(k('attention.value_length'), globalHeadDim) !== globalHeadDim)
    fail('value_length differs from key_length: Gemma 4 requires equal key and value head sizes');
  if (f.num(k('rope.dimension_count_swa'), headDim) !== headDim)
    fail(
      `metadata '${k('rope.dimension_count_swa')}' is ${f.num(k('rope.dimension_count_swa'))}: partial RoPE on sliding layers is not supported (head_dim ${headDim})`,
    );

  // Proportional RoPE on full layers: rope_freqs holds 1 for each rotated pair, 1e30 (frequency → 0) for the rest.
  if (ropeFreqs.length !== globalHeadDim / 2)
    fail(`tensor '${ROPE_FREQS}' has ${ropeFreqs.length} values, expected global_head_dim / 2 = ${globalHeadDim / 2}`);
  let rotated = 0;
  while (rotated < ropeFreqs.length && ropeFreqs[rotated] === 1) rotated++;
  for (let i = rotated; i < ropeFreqs.length; i++)
    if (!(ropeFreqs[i] >= 1e29))
      fail(`tensor '${ROPE_FREQS}' value ${i} is ${ropeFreqs[i]}: expected 1 for the ${rotated} rotated pairs, then 1e30 (proportional RoPE)`);
  if (rotated === 0) fail(`tensor '${ROPE_FREQS}' rotates no pair`);

  const tok = f.info('token_embd.weight');
  const ple = f.info('per_layer_token_embd.weight');
  const P = f.num(k('embedding_length_per_layer_input'));
  if (ple.dims[0] !== L * P)
    fail(`tensor 'per_layer_token_embd.weight' has ${ple.dims[0]} columns, expected block_count × embedding_length_per_layer_input = ${L * P}`);
  const eos = [f.num('tokenizer.ggml.eos_token_id', 1)];
  if (f.has('tokenizer.ggml.eot_token_id')) eos.push(f.num('tokenizer.ggml.eot_token_id'));
  const softcap = f.has(k('final_logit_softcapping')) ? f32Decimal(f.num(k('final_logit_softcapping'))) : null;
  return {
    model_type: 'gemma4_text',
    vocab_size: tok.dims[1],
    vocab_size_per_layer_input: ple.dims[1],
    hidden_size: f.num(k('embedding_length')),
    hidden_size_per_layer_input: P,
    intermediate_size: I,
    use_double_wide_mlp: doubleWide,
    num_hidden_layers: L,
    num_attention_heads: uniform('attention.head_count'),
    num_key_value_heads: uniform('attention.head_count_kv'),
    head_dim: headDim,
    global_head_dim: globalHeadDim,
    layer_types: layerTypes,
    sliding_window: f.num(k('attention.sliding_window')),
    num_kv_shared_layers: shared,
    rope_parameters: {
      sliding_attention: { rope_type: 'default', rope_theta: f32Decimal(f.num(k('rope.freq_base_swa'))) },
      full_attention: { rope_type: 'proportional', rope_theta: f32Decimal(f.num(k('rope.freq_base'))), partial_rotary_factor: (2 * rotated) / globalHeadDim },
    },
    rms_norm_eps: f32Decimal(f.num(k('attention.layer_norm_rms_epsilon'), 1e-6)),
    final_logit_softcapping: softcap,
    max_position_embeddings: f.num(k('context_length'), 131_072),
    bos_token_id: f.num('tokenizer.ggml.bos_token_id', 2),
    eos_token_id: eos,
    pad_token_id: f.num('tokenizer.ggml.padding_token_id', 0),
  };
}

/** The config of a gemma4 GGUF file, reading its rope_freqs tensor (F32, as the converter writes it). */
export async function gemma4ConfigFromGgufFile(f: GgufFile): Promise<Record<string, unknown>> {
  const t = f.info(ROPE_FREQS); // a missing tensor is an error naming it
  if (t.type.name !== 'F32' || t.dims.length !== 1)
    throw new CheckpointError(`${f.name}: tensor '${ROPE_FREQS}' must be a 1-D F32 tensor, got ${t.type.name} [${t.dims.join(', ')}]`);
  const b = await f.readBytes(ROPE_FREQS);
  return gemma4ConfigFromGguf(f, new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength)));
}
