/**
 * Gemma 4 (E2B/E4B) text configuration: `text_config` of a `model_type: gemma4` config.json
 * (or a bare `gemma4_text` one) [configuration_gemma4.py, Gemma4TextConfig]. Fields are the
 * config.json keys in camelCase, plus what they imply per layer (head size, MLP width, KV source).
 *
 * What differs from Gemma 3n: one residual stream (no AltUp, LAuReL or activation sparsity),
 * 256-wide heads on sliding layers and `global_head_dim` (512) on full ones, proportional
 * ("p-RoPE") rotation on full layers, a double-wide MLP in KV-shared layers, `layer_scalar`.
 */
import { CheckpointError } from './safetensors.js';

export type Gemma4LayerType = 'sliding_attention' | 'full_attention';

export interface Gemma4RopeParameters {
  ropeType: 'default' | 'proportional';
  ropeTheta: number;
  /** Proportional RoPE: the fraction of frequency pairs that rotate (p = 0.25). */
  partialRotaryFactor: number;
}

export interface Gemma4TextConfig {
  modelType: 'gemma4_text';
  hiddenSize: number;
  numHiddenLayers: number;
  numAttentionHeads: number;
  numKeyValueHeads: number;
  /** head_dim (sliding layers) and global_head_dim (full layers). */
  headDim: number;
  globalHeadDim: number;
  layerTypes: Gemma4LayerType[];
  slidingWindow: number;
  numKvSharedLayers: number;
  intermediateSize: number;
  useDoubleWideMlp: boolean;
  hiddenSizePerLayerInput: number;
  vocabSize: number;
  vocabSizePerLayerInput: number;
  ropeParameters: Record<Gemma4LayerType, Gemma4RopeParameters>;
  finalLogitSoftcapping: number | null;
  rmsNormEps: number;
  maxPositionEmbeddings: number;
  padTokenId: number;
  bosTokenId: number;
  eosTokenIds: number[];
  /** Derived per layer: head size, MLP width, and the layer whose K/V it reads. */
  layerHeadDims: number[];
  layerIntermediateSizes: number[];
  kvSources: number[];
}

export interface Gemma4Config {
  text: Gemma4TextConfig;
  /** The raw `vision_config` / `audio_config` objects (parsed by the towers), or null. */
  visionConfig: unknown;
  audioConfig: unknown;
  /** Media token ids of the multimodal wrapper (image_token_id, audio_token_id, ...). */
  tokenIds: Record<string, number>;
  raw: Record<string, unknown>;
}

function fail(where: string, msg: string): never {
  throw new CheckpointError(`${where}: ${msg}`);
}

/** Is this parsed config.json a Gemma 4 one? */
export function isGemma4Config(raw: unknown): boolean {
  const t = (raw as { model_type?: unknown } | null)?.model_type;
  return t === 'gemma4' || t === 'gemma4_text';
}

function rope(raw: unknown, type: Gemma4LayerType, where: string): Gemma4RopeParameters {
  const r = (raw as Record<string, unknown> | undefined)?.[type] as Record<string, unknown> | undefined;
  if (typeof r !== 'object' || r === null) fail(where, `field 'rope_parameters.${type}' is missing`);
  const ropeType = r.rope_type ?? 'default';
  if (ropeType !== 'default' && ropeType !== 'proportional')
    fail(where, `field 'rope_parameters.${type}.rope_type' is '${String(ropeType)}' (supported: default, proportional)`);
  const theta = r.rope_theta;
  if (typeof theta !== 'number' || !(theta > 0)) fail(where, `field 'rope_parameters.${type}.rope_theta' must be a positive number`);
  const p = r.partial_rotary_factor ?? 1;
  if (typeof p !== 'number' || !(p > 0 && p <= 1)) fail(where, `field 'rope_parameters.${type}.partial_rotary_factor' must be in (0, 1]`);
  return { ropeType, ropeTheta: theta, partialRotaryFactor: ropeType === 'proportional' ? p : 1 };
}

export function parseGemma4TextConfig(raw: Record<string, unknown>, where = 'config.json'): Gemma4TextConfig {
  const int = (k: string, min = 1, def?: number): number => {
    const v = raw[k] ?? def;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min) fail(where, `field '${k}' must be an integer >= ${min}, got ${JSON.stringify(v)}`);
    return v;
  };
  for (const [k, bad] of [
    ['attention_k_eq_v', true],
    ['enable_moe_block', true],
  ] as const) {
    if (raw[k] === bad) fail(where, `field '${k}' is ${String(bad)}: that is a 31B/26B feature this engine does not implement (E2B/E4B have it off)`);
  }
  if (raw.use_bidirectional_attention != null)
    fail(where, `field 'use_bidirectional_attention' (${JSON.stringify(raw.use_bidirectional_attention)}) is not supported (E2B/E4B have it null)`);
  const L = int('num_hidden_layers');
  const layerTypes = raw.layer_types;
  if (!Array.isArray(layerTypes) || layerTypes.length !== L || !layerTypes.every((t) => t === 'sliding_attention' || t === 'full_attention'))
    fail(where, `field 'layer_types' must list ${L} of 'sliding_attention' / 'full_attention'`);
  const headDim = int('head_dim'),
    globalHeadDim = int('global_head_dim', 1, headDim);
  const layerHeadDims = (layerTypes as Gemma4LayerType[]).map((t) => (t === 'full_attention' ? globalHeadDim : headDim));
  const plc = raw.per_layer_config;
  if (plc !== undefined && plc !== null) {
    if (typeof plc !== 'object') fail(where, `field 'per_layer_config' must be an object`);
    for (const [key, v] of Object.entries(plc as Record<string, unknown>)) {
      const i = Number(key);
      if (!Number.isInteger(i) || i < 0 || i >= L) fail(where, `field 'per_layer_config' has key '${key}', not a layer index < ${L}`);
      const hd = (v as { head_dim?: unknown } | null)?.head_dim;
      if (hd !== undefined) {
        if (typeof hd !== 'number' || !Number.isInteger(hd) || hd <= 0) fail(where, `field 'per_layer_config.${key}.head_dim' must be a positive integer`);
        layerHeadDims[i] = hd;
      }
    }
  }
  for (const hd of layerHeadDims) if (hd % 2 !== 0) fail(where, `head sizes must be even (RoPE pairs), got ${hd}`);
  const numKvShared = int('num_kv_shared_layers', 0, 0);
  if (numKvShared >= L) fail(where, `field 'num_kv_shared_layers' (${numKvShared}) must be below num_hidden_layers (${L})`);
  const first = L - numKvShared;
  const kvSources = (layerTypes as Gemma4LayerType[]).map((t, i) => {
    if (i < first) return i;
    const src = (layerTypes as string[]).lastIndexOf(t, first - 1);
    if (src < 0) fail(where, `KV-shared layer ${i} (${t}) has no earlier ${t} layer to share from`);
    if (layerHeadDims[src] !== layerHeadDims[i])
      fail(where, `KV-shared layer ${i} has head_dim ${layerHeadDims[i]} but its source ${src} has ${layerHeadDims[src]}`);
    return src;
  });
  if (typeof raw.intermediate_size !== 'number') fail(where, `field 'intermediate_size' must be one integer (Gemma 4 E2B/E4B)`);
  const I = int('intermediate_size');
  const useDoubleWideMlp = raw.use_double_wide_mlp === true;
  const P = int('hidden_size_per_layer_input', 0, 0);
  if (P === 0) fail(where, `field 'hidden_size_per_layer_input' is 0: models without per-layer embeddings (31B/26B) are not supported`);
  const eos = raw.eos_token_id;
  const eosTokenIds = Array.isArray(eos) ? eos.filter((x): x is number => Number.isInteger(x)) : Number.isInteger(eos) ? [eos as number] : [1];
  const cap = raw.final_logit_softcapping;
  return {
    modelType: 'gemma4_text',
    hiddenSize: int('hidden_size'),
    numHiddenLayers: L,
    numAttentionHeads: int('num_attention_heads'),
    numKeyValueHeads: int('num_key_value_heads'),
    headDim,
    globalHeadDim,
    layerTypes: layerTypes as Gemma4LayerType[],
    slidingWindow: int('sliding_window'),
    numKvSharedLayers: numKvShared,
    intermediateSize: I,
    useDoubleWideMlp,
    hiddenSizePerLayerInput: P,
    vocabSize: int('vocab_size'),
    vocabSizePerLayerInput: int('vocab_size_per_layer_input', 1, raw.vocab_size as number),
    ropeParameters: {
      sliding_attention: rope(raw.rope_parameters, 'sliding_attention', where),
      full_attention: rope(raw.rope_parameters, 'full_attention', where),
    },
    finalLogitSoftcapping: typeof cap === 'number' ? cap : null,
    rmsNormEps: typeof raw.rms_norm_eps === 'number' ? raw.rms_norm_eps : 1e-6,
    maxPositionEmbeddings: int('max_position_embeddings', 1, 131072),
    padTokenId: int('pad_token_id', 0, 0),
    bosTokenId: int('bos_token_id', 0, 2),
    eosTokenIds,
    layerHeadDims,
    layerIntermediateSizes: layerHeadDims.map((_, i) => (useDoubleWideMlp && i >= first ? 2 * I : I)),
    kvSources,
  };
}

/** Parses a Gemma 4 config.json (model_type gemma4 with text_config, or gemma4_text). */
export function parseGemma4Config(text: string, where = 'config.json'): Gemma4Config {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    fail(where, `not valid JSON (${(e as Error).message})`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) fail(where, 'not a JSON object');
  const r = raw as Record<string, unknown>;
  if (!isGemma4Config(r)) fail(where, `model_type is '${String(r.model_type)}', expected 'gemma4' or 'gemma4_text'`);
  const textRaw = r.model_type === 'gemma4' ? r.text_config : r;
  if (typeof textRaw !== 'object' || textRaw === null) fail(where, `field 'text_config' is missing`);
  const tokenIds: Record<string, number> = {};
  for (const k of ['image_token_id', 'audio_token_id', 'video_token_id', 'boi_token_id', 'eoi_token_id', 'boa_token_id', 'eoa_token_index']) {
    if (Number.isInteger(r[k])) tokenIds[k] = r[k] as number;
  }
  return {
    text: parseGemma4TextConfig(textRaw as Record<string, unknown>, where),
    visionConfig: r.vision_config ?? null,
    audioConfig: r.audio_config ?? null,
    tokenIds,
    raw: r,
  };
}
