/**
 * Seeded random checkpoints with the real Gemma 3n tensor names and any shapes: the embedded
 * default model, E2B-shaped benchmark models, and tests. Deterministic for a given seed, on
 * every runtime. These weights are random: the model's text is gibberish, by design.
 */
import { firstKvSharedLayer, parseTextConfig, type TextConfig } from './config.js';
import { f32ToBf16, type DType } from './dtype.js';
import type { TensorToWrite } from './safetensors.js';
import { Rng } from '../util/rng.js';

export { Rng };

/** A small Gemma 3n text config in the Hugging Face format, shaped like E2B but tiny. */
export function tinyRandomConfig(): Record<string, unknown> {
  const L = 10;
  return {
    architectures: ['Gemma3nForCausalLM'],
    model_type: 'gemma3n_text',
    vocab_size: 262_400,
    vocab_size_per_layer_input: 262_144,
    hidden_size: 256,
    hidden_size_per_layer_input: 16,
    intermediate_size: Array(L).fill(1024),
    num_hidden_layers: L,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    head_dim: 64,
    hidden_activation: 'gelu_pytorch_tanh',
    max_position_embeddings: 32_768,
    rms_norm_eps: 1e-6,
    rope_theta: 1_000_000,
    rope_local_base_freq: 10_000,
    sliding_window: 64,
    layer_types: Array.from({ length: L }, (_, i) => ((i + 1) % 5 === 0 ? 'full_attention' : 'sliding_attention')),
    final_logit_softcapping: 30,
    altup_active_idx: 0,
    altup_coef_clip: 120,
    altup_correct_scale: true,
    altup_num_inputs: 4,
    num_kv_shared_layers: 4,
    laurel_rank: 16,
    activation_sparsity_pattern: Array.from({ length: L }, (_, i) => (i < 3 ? 0.95 : 0)),
    pad_token_id: 0,
    eos_token_id: [1, 106],
    bos_token_id: 2,
    tie_word_embeddings: true,
    note: 'gemma3n-ts embedded default model: RANDOM WEIGHTS (seeded), for smoke tests and demos only',
  };
}

/** Every text-decoder tensor name and shape a config implies (KV-shared layers omit k/v). */
export function textTensorShapes(c: TextConfig, prefix = 'model.language_model.'): [string, number[]][] {
  const H = c.hiddenSize,
    P = c.hiddenSizePerLayerInput,
    L = c.numHiddenLayers,
    A = c.altupNumInputs;
  const nQ = c.numAttentionHeads * c.headDim,
    nKV = c.numKeyValueHeads * c.headDim;
  const out: [string, number[]][] = [
    ['embed_tokens.weight', [c.vocabSize, H]],
    ['embed_tokens_per_layer.weight', [c.vocabSizePerLayerInput, L * P]],
    ['per_layer_model_projection.weight', [L * P, H]],
    ['per_layer_projection_norm.weight', [P]],
    ['norm.weight', [H]],
  ];
  for (let i = 0; i < A - 1; i++) out.push([`altup_projections.${i}.weight`, [H, H]], [`altup_unembed_projections.${i}.weight`, [H, H]]);
  const first = firstKvSharedLayer(c);
  for (let l = 0; l < L; l++) {
    const p = `layers.${l}.`,
      I = c.intermediateSize[l];
    for (const n of ['input_layernorm', 'post_attention_layernorm', 'pre_feedforward_layernorm', 'post_feedforward_layernorm'])
      out.push([`${p}${n}.weight`, [H]]);
    out.push([`${p}self_attn.q_proj.weight`, [nQ, H]], [`${p}self_attn.o_proj.weight`, [H, nQ]], [`${p}self_attn.q_norm.weight`, [c.headDim]]);
    if (l < first) out.push([`${p}self_attn.k_proj.weight`, [nKV, H]], [`${p}self_attn.v_proj.weight`, [nKV, H]], [`${p}self_attn.k_norm.weight`, [c.headDim]]);
    out.push([`${p}mlp.gate_proj.weight`, [I, H]], [`${p}mlp.up_proj.weight`, [I, H]], [`${p}mlp.down_proj.weight`, [H, I]]);
    out.push([`${p}altup.correct_output_scale`, [H]], [`${p}altup.correction_coefs.weight`, [A, A]], [`${p}altup.prediction_coefs.weight`, [A * A, A]]);
    out.push([`${p}altup.modality_router.weight`, [A, H]], [`${p}altup.router_norm.weight`, [H]]);
    out.push(
      [`${p}laurel.linear_left.weight`, [c.laurelRank, H]],
      [`${p}laurel.linear_right.weight`, [H, c.laurelRank]],
      [`${p}laurel.post_laurel_norm.weight`, [H]],
    );
    out.push([`${p}per_layer_input_gate.weight`, [P, H]], [`${p}per_layer_projection.weight`, [H, P]], [`${p}post_per_layer_input_norm.weight`, [H]]);
  }
  return out.map(([n, s]) => [prefix + n, s]);
}

/**
 * Random tensors for a config, initialised like the golden models: linears N(0, 1/fan_in),
 * embeddings N(0, 0.3²), norms U[0.5, 1.5], AltUp coefficients small.
 */
export function syntheticTextTensors(configJson: Record<string, unknown>, seed = 3, dtype: DType = 'BF16'): TensorToWrite[] {
  const c = parseTextConfig(configJson, 'synthetic config');
  const rng = new Rng(seed);
  return textTensorShapes(c).map(([name, shape]) => {
    const n = shape.reduce((a, b) => a * b, 1);
    const f = new Float32Array(n);
    const base = name.slice(name.lastIndexOf('.', name.length - 8) + 1);
    if (name.includes('embed_tokens')) rng.fillNormal(f, 0.3);
    else if (base.includes('norm') || name.endsWith('router_norm.weight')) rng.fillUniform(f, 0.5, 1.5);
    else if (name.endsWith('correct_output_scale')) rng.fillNormal(f, 0.7);
    else if (name.includes('coefs')) rng.fillNormal(f, 0.2);
    else if (name.endsWith('modality_router.weight'))
      rng.fillNormal(f, Math.sqrt(c.hiddenSize)); // router tanh inputs O(1)
    else rng.fillNormal(f, 1 / Math.sqrt(shape[1]));
    if (dtype === 'F32') return { name, dtype, shape, data: f };
    if (dtype !== 'BF16') throw new Error(`syntheticTextTensors: dtype ${dtype} not supported`);
    const b = new Uint16Array(n);
    f32ToBf16(f, b);
    return { name, dtype, shape, data: b };
  });
}
