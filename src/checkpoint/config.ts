/**
 * Gemma 3n text configuration, parsed from a Hugging Face config.json.
 *
 * Two shapes are accepted: a bare `Gemma3nTextConfig` (model_type "gemma3n_text") and a full
 * `Gemma3nForConditionalGeneration` config (model_type "gemma3n") whose text part sits in
 * `text_config` next to `vision_config` and `audio_config`. Missing fields take the defaults
 * of transformers' configuration_gemma3n.py; present fields are type-checked, and a value the
 * engine does not implement is an error naming the field.
 */
import { CheckpointError } from './safetensors.js';

export type LayerType = 'sliding_attention' | 'full_attention';

/**
 * The text decoder's config. Every field is the camelCase of its config.json key (text_config
 * in a full gemma3n config), named in each comment; the RoPE bases (also read from
 * rope_parameters) and eosTokenIds are named for what they hold, as their comments say.
 */
export interface TextConfig {
  /** vocab_size */
  vocabSize: number;
  /** vocab_size_per_layer_input: rows of the per-layer embedding table; ids at or above it get row 0 (multimodal ids). */
  vocabSizePerLayerInput: number;
  /** hidden_size (H) */
  hiddenSize: number;
  /** hidden_size_per_layer_input (P): width of each layer's slice of the per-layer embedding. */
  hiddenSizePerLayerInput: number;
  /** intermediate_size: FFN width of each layer (a number in config.json is repeated; MatFormer models vary it per layer). */
  intermediateSize: number[];
  /** num_hidden_layers (L) */
  numHiddenLayers: number;
  /** num_attention_heads */
  numAttentionHeads: number;
  /** num_key_value_heads */
  numKeyValueHeads: number;
  /** head_dim */
  headDim: number;
  /** rms_norm_eps */
  rmsNormEps: number;
  /** rope_theta: RoPE base of full-attention layers (the name differs: which layers it serves). */
  ropeThetaFull: number;
  /** rope_local_base_freq: RoPE base of sliding-window layers (the name differs, as above). */
  ropeThetaSliding: number;
  /** sliding_window */
  slidingWindow: number;
  /** layer_types */
  layerTypes: LayerType[];
  /** final_logit_softcapping */
  finalLogitSoftcapping: number | null;
  /** altup_active_idx */
  altupActiveIdx: number;
  /** altup_coef_clip (used by the reference in training only) */
  altupCoefClip: number | null;
  /** altup_correct_scale */
  altupCorrectScale: boolean;
  /** altup_num_inputs (A) */
  altupNumInputs: number;
  /** num_kv_shared_layers */
  numKvSharedLayers: number;
  /** laurel_rank */
  laurelRank: number;
  /** activation_sparsity_pattern (per layer) */
  activationSparsityPattern: number[];
  /** max_position_embeddings */
  maxPositionEmbeddings: number;
  /** bos_token_id */
  bosTokenId: number;
  /** eos_token_id (a number or a list in config.json) */
  eosTokenIds: number[];
  /** pad_token_id */
  padTokenId: number;
}

export interface ModelConfig {
  /** "gemma3n" (full multimodal) or "gemma3n_text". */
  modelType: string;
  text: TextConfig;
  /** Raw sub-configs of the towers, parsed by src/encoders when needed. */
  visionConfig: Record<string, unknown> | null;
  audioConfig: Record<string, unknown> | null;
  /** Special multimodal token ids from the full config (undefined for a bare text config). */
  imageTokenId?: number;
  audioTokenId?: number;
  boiTokenId?: number;
  eoiTokenId?: number;
  boaTokenId?: number;
  eoaTokenId?: number;
  raw: Record<string, unknown>;
}

type Json = Record<string, unknown>;

/** Far above any real Gemma 3n (35 layers); a larger num_hidden_layers is a corrupt config. */
const MAX_LAYERS = 1000;

class FieldReader {
  constructor(
    private readonly obj: Json,
    private readonly where: string,
  ) {}

  private fail(field: string, msg: string): never {
    throw new CheckpointError(`${this.where}: field '${field}' ${msg}`);
  }

  int(field: string, def: number, min = 0, max = Number.MAX_SAFE_INTEGER): number {
    const v = this.obj[field] ?? def;
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) {
      this.fail(field, `must be an integer >= ${min}${max < Number.MAX_SAFE_INTEGER ? ` and <= ${max}` : ''}, got ${JSON.stringify(v)}`);
    }
    return v as number;
  }

  num(field: string, def: number, positive = true): number {
    const v = this.obj[field] ?? def;
    if (typeof v !== 'number' || !Number.isFinite(v) || (positive && v <= 0))
      this.fail(field, `must be a ${positive ? 'positive ' : ''}number, got ${JSON.stringify(v)}`);
    return v as number;
  }

  numOrNull(field: string, def: number | null): number | null {
    const v = field in this.obj ? this.obj[field] : def;
    if (v === null) return null;
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) this.fail(field, `must be a positive number or null, got ${JSON.stringify(v)}`);
    return v as number;
  }

  bool(field: string, def: boolean): boolean {
    const v = this.obj[field] ?? def;
    if (typeof v !== 'boolean') this.fail(field, `must be true or false, got ${JSON.stringify(v)}`);
    return v as boolean;
  }

  str(field: string, def: string, allowed?: readonly string[]): string {
    const v = this.obj[field] ?? def;
    if (typeof v !== 'string') this.fail(field, `must be a string, got ${JSON.stringify(v)}`);
    if (allowed && !allowed.includes(v as string)) this.fail(field, `has unsupported value ${JSON.stringify(v)} (supported: ${allowed.join(', ')})`);
    return v as string;
  }

  /** A number or a per-layer list of numbers, expanded to `n` entries. */
  perLayer(field: string, def: number | number[], n: number, check: (x: number) => boolean, what: string): number[] {
    const v = this.obj[field] ?? def;
    const list = Array.isArray(v) ? v : Array.from({ length: n }, () => v);
    if (list.length !== n) this.fail(field, `has ${list.length} entries but num_hidden_layers is ${n}`);
    list.forEach((x, i) => {
      if (typeof x !== 'number' || !check(x)) this.fail(field, `entry ${i} must be ${what}, got ${JSON.stringify(x)}`);
    });
    return list as number[];
  }

  intList(field: string, def: number[]): number[] {
    const v = this.obj[field] ?? def;
    const list = Array.isArray(v) ? v : [v];
    if (!list.every((x) => Number.isSafeInteger(x))) this.fail(field, `must be an integer or a list of integers, got ${JSON.stringify(v)}`);
    return list as number[];
  }
}

/** RoPE bases: prefer the new `rope_parameters`, fall back to legacy rope_theta / rope_local_base_freq. */
function ropeBases(obj: Json, where: string, r: FieldReader): { full: number; sliding: number } {
  let full = r.num('rope_theta', 1_000_000);
  let sliding = r.num('rope_local_base_freq', 10_000);
  const rs = obj.rope_scaling;
  if (rs !== undefined && rs !== null) {
    const type = (rs as Json).rope_type ?? (rs as Json).type;
    if (type !== 'default') throw new CheckpointError(`${where}: field 'rope_scaling' has unsupported rope_type ${JSON.stringify(type)} (supported: default)`);
  }
  const rp = obj.rope_parameters;
  if (rp !== undefined && rp !== null) {
    if (typeof rp !== 'object') throw new CheckpointError(`${where}: field 'rope_parameters' must be an object`);
    for (const [key, value] of Object.entries(rp as Json)) {
      if (key !== 'full_attention' && key !== 'sliding_attention') continue;
      if (typeof value !== 'object' || value === null || Array.isArray(value))
        throw new CheckpointError(`${where}: field 'rope_parameters.${key}' must be an object`);
      const sub = new FieldReader(value as Json, `${where} rope_parameters.${key}`);
      sub.str('rope_type', 'default', ['default']);
      const theta = sub.num('rope_theta', key === 'full_attention' ? full : sliding);
      if (key === 'full_attention') full = theta;
      else sliding = theta;
    }
  }
  return { full, sliding };
}

export function parseTextConfig(obj: Json, where = 'config.json'): TextConfig {
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) throw new CheckpointError(`${where}: text config is not a JSON object`);
  const r = new FieldReader(obj, where);
  // Bounded so a corrupt value fails here rather than in building per-layer lists of that length.
  const L = r.int('num_hidden_layers', 35, 1, MAX_LAYERS);
  const hiddenSize = r.int('hidden_size', 2048, 1);
  const numAttentionHeads = r.int('num_attention_heads', 8, 1);
  const numKeyValueHeads = r.int('num_key_value_heads', 2, 1);
  if (numAttentionHeads % numKeyValueHeads !== 0)
    throw new CheckpointError(`${where}: field 'num_key_value_heads' (${numKeyValueHeads}) must divide num_attention_heads (${numAttentionHeads})`);
  r.str('hidden_activation', 'gelu_pytorch_tanh', ['gelu_pytorch_tanh']);
  if (obj.attention_bias === true) throw new CheckpointError(`${where}: field 'attention_bias' = true is not supported (Gemma 3n has no attention bias)`);
  if (obj.tie_word_embeddings === false)
    throw new CheckpointError(`${where}: field 'tie_word_embeddings' = false is not supported (Gemma 3n ties the LM head to embed_tokens)`);
  // Default layer pattern of transformers: four sliding layers, then one full.
  const defaultTypes = Array.from({ length: L }, (_, i) => ((i + 1) % 5 === 0 ? 'full_attention' : 'sliding_attention'));
  const lt = obj.layer_types ?? defaultTypes;
  if (!Array.isArray(lt) || lt.length !== L) throw new CheckpointError(`${where}: field 'layer_types' must be a list of ${L} entries`);
  lt.forEach((t, i) => {
    if (t !== 'sliding_attention' && t !== 'full_attention')
      throw new CheckpointError(
        `${where}: field 'layer_types' entry ${i} has unsupported value ${JSON.stringify(t)} (supported: sliding_attention, full_attention)`,
      );
  });
  const rope = ropeBases(obj, where, r);
  const altupNumInputs = r.int('altup_num_inputs', 4, 1);
  const altupActiveIdx = r.int('altup_active_idx', 0);
  if (altupActiveIdx >= altupNumInputs)
    throw new CheckpointError(`${where}: field 'altup_active_idx' (${altupActiveIdx}) must be < altup_num_inputs (${altupNumInputs})`);
  const numKvSharedLayers = r.int('num_kv_shared_layers', 15);
  if (numKvSharedLayers >= L) throw new CheckpointError(`${where}: field 'num_kv_shared_layers' (${numKvSharedLayers}) must be < num_hidden_layers (${L})`);
  const eos = r.intList('eos_token_id', [1, 106]);
  const cfg: TextConfig = {
    vocabSize: r.int('vocab_size', 262_400, 1),
    vocabSizePerLayerInput: r.int('vocab_size_per_layer_input', 262_144, 1),
    hiddenSize,
    hiddenSizePerLayerInput: r.int('hidden_size_per_layer_input', 256, 1),
    intermediateSize: r.perLayer('intermediate_size', 16_384, L, (x) => Number.isSafeInteger(x) && x > 0, 'a positive integer'),
    numHiddenLayers: L,
    numAttentionHeads,
    numKeyValueHeads,
    headDim: r.int('head_dim', 256, 1),
    rmsNormEps: r.num('rms_norm_eps', 1e-6),
    ropeThetaFull: rope.full,
    ropeThetaSliding: rope.sliding,
    slidingWindow: r.int('sliding_window', 512, 1),
    layerTypes: lt as LayerType[],
    finalLogitSoftcapping: r.numOrNull('final_logit_softcapping', 30),
    altupActiveIdx,
    altupCoefClip: r.numOrNull('altup_coef_clip', 120),
    altupCorrectScale: r.bool('altup_correct_scale', true),
    altupNumInputs,
    numKvSharedLayers,
    laurelRank: r.int('laurel_rank', 64, 1),
    activationSparsityPattern: r.perLayer(
      'activation_sparsity_pattern',
      [...Array(10).fill(0.95), ...Array(Math.max(0, L - 10)).fill(0)].slice(0, L),
      L,
      (x) => x === 0 || (Math.fround(x) > 0 && Math.fround(x) < 1),
      '0 or in (0, 1) at float32 precision',
    ),
    maxPositionEmbeddings: r.int('max_position_embeddings', 32_768, 1),
    bosTokenId: r.int('bos_token_id', 2),
    eosTokenIds: eos,
    padTokenId: r.int('pad_token_id', 0),
  };
  kvSourceLayers(cfg, where); // every KV-shared layer needs an earlier layer of its type
  return cfg;
}

/** Parses a config.json text (full multimodal or bare text config). */
export function parseModelConfig(text: string, where = 'config.json'): ModelConfig {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new CheckpointError(`${where}: not valid JSON (${(e as Error).message})`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new CheckpointError(`${where}: not a JSON object`);
  const obj = raw as Json;
  const modelType = obj.model_type;
  if (modelType === 'gemma3n_text') return { modelType, text: parseTextConfig(obj, where), visionConfig: null, audioConfig: null, raw: obj };
  if (modelType === 'gemma3n') {
    const tc = obj.text_config;
    if (typeof tc !== 'object' || tc === null) throw new CheckpointError(`${where}: field 'text_config' is missing or not an object`);
    const optInt = (f: string): number | undefined => {
      const v = obj[f];
      if (v === undefined) return undefined;
      if (!Number.isSafeInteger(v)) throw new CheckpointError(`${where}: field '${f}' must be an integer, got ${JSON.stringify(v)}`);
      return v as number;
    };
    return {
      modelType,
      text: parseTextConfig(tc as Json, `${where} text_config`),
      visionConfig: (obj.vision_config as Json | undefined) ?? null,
      audioConfig: (obj.audio_config as Json | undefined) ?? null,
      imageTokenId: optInt('image_token_id'),
      audioTokenId: optInt('audio_token_id'),
      boiTokenId: optInt('boi_token_id'),
      eoiTokenId: optInt('eoi_token_id'),
      boaTokenId: optInt('boa_token_id'),
      eoaTokenId: optInt('eoa_token_id'),
      raw: obj,
    };
  }
  throw new CheckpointError(`${where}: field 'model_type' has unsupported value ${JSON.stringify(modelType)} (supported: gemma3n, gemma3n_text)`);
}

/** Index of the first KV-shared layer: layers at or after it reuse earlier K/V. */
export function firstKvSharedLayer(c: Pick<TextConfig, 'numHiddenLayers' | 'numKvSharedLayers'>): number {
  return c.numHiddenLayers - c.numKvSharedLayers;
}

/**
 * For each layer, the layer whose K/V it reads: itself for ordinary layers; for a shared layer,
 * the last non-shared layer of the same attention type [modeling_gemma3n.py, kv_shared_layer_index].
 */
export function kvSourceLayers(c: Pick<TextConfig, 'numHiddenLayers' | 'numKvSharedLayers' | 'layerTypes'>, where = 'config'): number[] {
  const first = firstKvSharedLayer(c);
  return c.layerTypes.map((type, i) => {
    if (i < first) return i;
    const src = c.layerTypes.lastIndexOf(type, first - 1);
    if (src < 0)
      throw new CheckpointError(
        `${where}: field 'num_kv_shared_layers' (${c.numKvSharedLayers}): KV-shared layer ${i} (${type}) has no earlier ${type} layer to share from`,
      );
    return src;
  });
}
