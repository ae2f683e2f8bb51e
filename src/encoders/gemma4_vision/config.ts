/**
 * Gemma 4's vision tower configuration (`vision_config` of a Gemma4Config, model_type
 * `gemma4_vision`) [configuration_gemma4.py, Gemma4VisionConfig]. Field names follow the
 * config.json keys in camelCase.
 */
export interface Gemma4VisionConfig {
  hiddenSize: number;
  intermediateSize: number;
  numHiddenLayers: number;
  numAttentionHeads: number;
  numKeyValueHeads: number;
  headDim: number;
  patchSize: number;
  poolingKernelSize: number;
  /** Rows of each of the two learned 1-D position tables (x and y). */
  positionEmbeddingSize: number;
  rmsNormEps: number;
  /** rope_parameters.rope_theta of the 2-D ("axial") RoPE. */
  ropeTheta: number;
  /** clamp(x) → linear → clamp(y) with scalar bounds from the checkpoint (E2B/E4B: true). */
  useClippedLinears: boolean;
  /** (h − std_bias) · std_scale after pooling: only the 31B/26B towers. */
  standardize: boolean;
}

export class Gemma4VisionConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'Gemma4VisionConfigError';
  }
}

function int(raw: Record<string, unknown>, key: string, where: string, def?: number): number {
  const v = raw[key] ?? def;
  if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) throw new Gemma4VisionConfigError(`${where}: vision_config.${key} must be a positive integer, got ${JSON.stringify(v)}`);
  return v;
}

/** Reads `vision_config` (the object, not the whole config.json). */
export function parseGemma4VisionConfig(raw: unknown, where = 'config.json'): Gemma4VisionConfig {
  if (typeof raw !== 'object' || raw === null) throw new Gemma4VisionConfigError(`${where}: vision_config is missing or not an object`);
  const r = raw as Record<string, unknown>;
  if (r.model_type !== undefined && r.model_type !== 'gemma4_vision') throw new Gemma4VisionConfigError(`${where}: vision_config.model_type is '${String(r.model_type)}', expected 'gemma4_vision'`);
  const rope = (r.rope_parameters ?? {}) as Record<string, unknown>;
  const theta = rope.rope_theta ?? 100;
  if (typeof theta !== 'number' || !(theta > 0)) throw new Gemma4VisionConfigError(`${where}: vision_config.rope_parameters.rope_theta must be a positive number`);
  const c: Gemma4VisionConfig = {
    hiddenSize: int(r, 'hidden_size', where),
    intermediateSize: int(r, 'intermediate_size', where),
    numHiddenLayers: int(r, 'num_hidden_layers', where),
    numAttentionHeads: int(r, 'num_attention_heads', where),
    numKeyValueHeads: int(r, 'num_key_value_heads', where, r.num_attention_heads as number),
    headDim: int(r, 'head_dim', where),
    patchSize: int(r, 'patch_size', where, 16),
    poolingKernelSize: int(r, 'pooling_kernel_size', where, 3),
    positionEmbeddingSize: int(r, 'position_embedding_size', where),
    rmsNormEps: typeof r.rms_norm_eps === 'number' ? r.rms_norm_eps : 1e-6,
    ropeTheta: theta,
    useClippedLinears: r.use_clipped_linears === true,
    standardize: r.standardize === true,
  };
  if (c.headDim % 4 !== 0) throw new Gemma4VisionConfigError(`${where}: vision_config.head_dim ${c.headDim} must be a multiple of 4 (2-D RoPE rotates pairs in each half)`);
  if (c.numAttentionHeads % c.numKeyValueHeads !== 0) throw new Gemma4VisionConfigError(`${where}: vision_config.num_attention_heads must be a multiple of num_key_value_heads`);
  if (c.standardize) throw new Gemma4VisionConfigError(`${where}: vision_config.standardize (the 31B/26B towers) is not supported; E2B/E4B towers have it off`);
  return c;
}
