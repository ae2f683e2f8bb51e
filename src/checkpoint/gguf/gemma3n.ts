/**
 * Gemma 3n in GGUF, as llama.cpp's converter writes it [convert_hf_to_gguf.py Gemma3NModel;
 * gguf-py constants.py MODEL_ARCH.GEMMA3N / tensor_mapping.py; src/models/gemma3n-iswa.cpp]:
 * architecture `gemma3n`, metadata under `gemma3n.*`, tensors renamed (`blk.N.attn_q.weight`
 * ...), dims innermost first (a Hugging Face [out, in] weight is GGUF [in, out]), norms stored
 * as is (Gemma 3n's RMSNorm has no +1 shift), the three altup projections stacked into one
 * [H, H, 3] tensor, and the token tables padded with zero rows to the vocabulary size.
 */
import { firstKvSharedLayer, type TextConfig } from '../config.js';
import type { GgufKV } from './writer.js';
import type { GgufFile } from './reader.js';
import { CheckpointError } from '../safetensors.js';

export const GGUF_ARCH = 'gemma3n';

/** Per-layer tensors: Hugging Face name after `layers.N.` → GGUF name after `blk.N.`. */
export const LAYER_NAMES: Readonly<Record<string, string>> = {
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
  'altup.correction_coefs.weight': 'altup_correct_coef.weight',
  'altup.correct_output_scale': 'altup_correct_scale.weight',
  'altup.prediction_coefs.weight': 'altup_predict_coef.weight',
  'altup.modality_router.weight': 'altup_router.weight',
  'altup.router_norm.weight': 'altup_router_norm.weight',
  'laurel.linear_left.weight': 'laurel_l.weight',
  'laurel.linear_right.weight': 'laurel_r.weight',
  'laurel.post_laurel_norm.weight': 'laurel_post_norm.weight',
};

/** Model-level tensors (the altup stacks are handled apart). */
export const GLOBAL_NAMES: Readonly<Record<string, string>> = {
  'embed_tokens.weight': 'token_embd.weight',
  'embed_tokens_per_layer.weight': 'per_layer_token_embd.weight',
  'per_layer_model_projection.weight': 'per_layer_model_proj.weight',
  'per_layer_projection_norm.weight': 'per_layer_proj_norm.weight',
  'norm.weight': 'output_norm.weight',
};
export const ALTUP_PROJ = 'altup_proj.weight';
export const ALTUP_UNEMBD_PROJ = 'altup_unembd_proj.weight';

/** Hugging Face text-model name (without prefix) → GGUF name, or null for the altup stacks. */
export function ggufName(local: string): string | null {
  if (local in GLOBAL_NAMES) return GLOBAL_NAMES[local];
  const m = /^layers\.(\d+)\.(.+)$/.exec(local);
  if (m && m[2] in LAYER_NAMES) return `blk.${m[1]}.${LAYER_NAMES[m[2]]}`;
  return null;
}

/** Normal-distribution quantile Φ⁻¹(p) as the converter stores `activation_sparsity_scale`. */
function normalCdf(x: number): number {
  // Abramowitz-Stegun 7.1.26 is too coarse; use erf via its continued series (|x| small here).
  const t = x / Math.SQRT2;
  let sum = t,
    term = t;
  for (let n = 1; n < 200; n++) {
    term *= (-t * t) / n;
    const add = term / (2 * n + 1);
    sum += add;
    if (Math.abs(add) < 1e-17) break;
  }
  return 0.5 * (1 + (2 / Math.sqrt(Math.PI)) * sum);
}

/** Φ⁻¹ by bisection on normalCdf (only used when writing metadata). */
function normalQuantile(p: number): number {
  if (p <= 0) return -Infinity;
  let lo = -10,
    hi = 10;
  for (let i = 0; i < 200; i++) {
    const mid = (lo + hi) / 2;
    if (normalCdf(mid) < p) lo = mid;
    else hi = mid;
  }
  return (lo + hi) / 2;
}

/** GGUF stores f32: 1e-6 comes back as 9.99999997e-7; the shortest decimal that rounds to it is the config's value. */
function f32Decimal(x: number): number {
  for (let p = 1; p <= 9; p++) {
    const d = Number(x.toPrecision(p));
    if (Math.fround(d) === Math.fround(x)) return d;
  }
  return x;
}

/** A Hugging Face-style text config (config.json) from the `gemma3n.*` metadata and tensor shapes. */
export function textConfigFromGguf(f: GgufFile): Record<string, unknown> {
  const arch = f.str('general.architecture');
  if (arch !== GGUF_ARCH) throw new CheckpointError(`${f.name}: architecture '${arch}' is not '${GGUF_ARCH}' (only Gemma 3n GGUF files load here)`);
  const k = (s: string) => `${GGUF_ARCH}.${s}`;
  const L = f.num(k('block_count'));
  const perLayer = (key: string, def?: number): number[] => {
    const v = f.numbers(k(key));
    if (v === undefined) {
      if (def === undefined) throw new CheckpointError(`${f.name}: metadata '${k(key)}' is missing`);
      return Array(L).fill(def);
    }
    if (v.length === 1) return Array(L).fill(v[0]);
    if (v.length !== L) throw new CheckpointError(`${f.name}: metadata '${k(key)}' has ${v.length} entries for ${L} layers`);
    return v;
  };
  const scalar = (key: string, def?: number): number => {
    const v = perLayer(key, def);
    if (v.some((x) => x !== v[0])) throw new CheckpointError(`${f.name}: metadata '${k(key)}' varies by layer, which Gemma 3n does not do`);
    return v[0];
  };
  // Sliding-window layers: a bool per layer (current converter), or a period (every Nth layer is full).
  let layerTypes: string[];
  const pat = f.metadata.get(k('attention.sliding_window_pattern'));
  if (pat !== undefined && typeof pat === 'object') {
    const v = f.numbers(k('attention.sliding_window_pattern'))!;
    if (v.length !== L) throw new CheckpointError(`${f.name}: metadata '${k('attention.sliding_window_pattern')}' has ${v.length} entries for ${L} layers`);
    layerTypes = v.map((s) => (s ? 'sliding_attention' : 'full_attention'));
  } else {
    const period = typeof pat === 'number' ? pat : 5;
    layerTypes = Array.from({ length: L }, (_, i) => ((i + 1) % period === 0 ? 'full_attention' : 'sliding_attention'));
  }
  const tok = f.info('token_embd.weight');
  const ple = f.info('per_layer_token_embd.weight');
  // The converter pads the per-layer table with zero rows for the 256 multimodal ids; the
  // reference gives ids past vocab_size_per_layer_input (262,144) row 0 instead, so those rows are not used.
  const pleRows = ple.dims[1] === 262_400 ? 262_144 : ple.dims[1];
  const sparsity = f.numbers(k('activation_sparsity_scale'))?.map((s) => (s === -Infinity || Number.isNaN(s) ? 0 : Math.round(normalCdf(s) * 1e6) / 1e6));
  const eos = [f.num('tokenizer.ggml.eos_token_id', 1)];
  if (f.has('tokenizer.ggml.eot_token_id')) eos.push(f.num('tokenizer.ggml.eot_token_id'));
  const laurel = f.info('blk.0.laurel_l.weight');
  return {
    model_type: 'gemma3n_text',
    vocab_size: tok.dims[1],
    vocab_size_per_layer_input: pleRows,
    hidden_size: f.num(k('embedding_length')),
    hidden_size_per_layer_input: f.num(k('embedding_length_per_layer_input')),
    intermediate_size: perLayer('feed_forward_length'),
    num_hidden_layers: L,
    num_attention_heads: scalar('attention.head_count'),
    num_key_value_heads: scalar('attention.head_count_kv'),
    head_dim: f.num(k('attention.key_length')),
    rms_norm_eps: f32Decimal(f.num(k('attention.layer_norm_rms_epsilon'), 1e-6)),
    rope_theta: f.num(k('rope.freq_base'), 1_000_000),
    rope_local_base_freq: f.num(k('rope.freq_base_swa'), 10_000),
    sliding_window: f.num(k('attention.sliding_window')),
    layer_types: layerTypes,
    final_logit_softcapping: f.has(k('final_logit_softcapping')) ? f.num(k('final_logit_softcapping')) : null,
    altup_active_idx: f.num(k('altup.active_idx'), 0),
    altup_num_inputs: f.num(k('altup.num_inputs'), 4),
    num_kv_shared_layers: f.num(k('attention.shared_kv_layers'), 0),
    laurel_rank: laurel.dims[1],
    ...(sparsity ? { activation_sparsity_pattern: sparsity } : {}),
    max_position_embeddings: f.num(k('context_length'), 32_768),
    bos_token_id: f.num('tokenizer.ggml.bos_token_id', 2),
    eos_token_id: eos,
    pad_token_id: f.num('tokenizer.ggml.padding_token_id', 0),
  };
}

/** The `general.*` and `gemma3n.*` metadata for a text config (what llama.cpp's loader reads). */
export function metadataForConfig(c: TextConfig, name: string, fileType: number): GgufKV[] {
  const k = (s: string) => `${GGUF_ARCH}.${s}`;
  const uniformFf = c.intermediateSize.every((x) => x === c.intermediateSize[0]);
  const md: GgufKV[] = [
    { key: 'general.architecture', type: 'string', value: GGUF_ARCH },
    { key: 'general.name', type: 'string', value: name },
    { key: 'general.file_type', type: 'u32', value: fileType },
    { key: 'general.quantization_version', type: 'u32', value: 2 },
    { key: k('context_length'), type: 'u32', value: c.maxPositionEmbeddings },
    { key: k('embedding_length'), type: 'u32', value: c.hiddenSize },
    { key: k('block_count'), type: 'u32', value: c.numHiddenLayers },
    uniformFf
      ? { key: k('feed_forward_length'), type: 'u32', value: c.intermediateSize[0] }
      : { key: k('feed_forward_length'), type: 'i32[]', value: c.intermediateSize },
    { key: k('attention.head_count'), type: 'u32', value: c.numAttentionHeads },
    { key: k('attention.head_count_kv'), type: 'u32', value: c.numKeyValueHeads },
    { key: k('attention.layer_norm_rms_epsilon'), type: 'f32', value: c.rmsNormEps },
    { key: k('attention.key_length'), type: 'u32', value: c.headDim },
    { key: k('attention.value_length'), type: 'u32', value: c.headDim },
    { key: k('rope.freq_base'), type: 'f32', value: c.ropeThetaFull },
    { key: k('rope.freq_base_swa'), type: 'f32', value: c.ropeThetaSliding },
    { key: k('attention.sliding_window'), type: 'u32', value: c.slidingWindow },
    { key: k('altup.active_idx'), type: 'u32', value: c.altupActiveIdx },
    { key: k('altup.num_inputs'), type: 'u32', value: c.altupNumInputs },
    { key: k('embedding_length_per_layer_input'), type: 'u32', value: c.hiddenSizePerLayerInput },
    { key: k('attention.shared_kv_layers'), type: 'u32', value: c.numKvSharedLayers },
    { key: k('activation_sparsity_scale'), type: 'f32[]', value: c.activationSparsityPattern.map(normalQuantile) },
    { key: k('attention.sliding_window_pattern'), type: 'bool[]', value: c.layerTypes.map((t) => t === 'sliding_attention') },
  ];
  if (c.finalLogitSoftcapping !== null) md.push({ key: k('final_logit_softcapping'), type: 'f32', value: c.finalLogitSoftcapping });
  return md;
}

/** Layers whose K/V llama.cpp still expects as tensors although they reuse another layer's cache. */
export function isKvSharedLayer(c: TextConfig, l: number): boolean {
  return l >= firstKvSharedLayer(c);
}
