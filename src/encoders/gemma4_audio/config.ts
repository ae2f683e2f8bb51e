/**
 * Gemma 4's audio tower configuration (`audio_config`, model_type `gemma4_audio`)
 * [configuration_gemma4.py, Gemma4AudioConfig], config.json keys in camelCase.
 */
export interface Gemma4AudioConfig {
  hiddenSize: number;
  numHiddenLayers: number;
  numAttentionHeads: number;
  /** [128, C]: the first must equal the mel bins (the reference sizes input_proj_linear with it). */
  subsamplingConvChannels: [number, number];
  convKernelSize: number;
  attentionChunkSize: number;
  attentionContextLeft: number;
  attentionContextRight: number;
  attentionLogitCap: number;
  attentionInvalidLogitsValue: number;
  useClippedLinears: boolean;
  gradientClipping: number;
  outputProjDims: number;
  residualWeight: number;
  rmsNormEps: number;
}

export class Gemma4AudioConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'Gemma4AudioConfigError';
  }
}

export function parseGemma4AudioConfig(raw: unknown, where = 'config.json'): Gemma4AudioConfig {
  if (typeof raw !== 'object' || raw === null) throw new Gemma4AudioConfigError(`${where}: audio_config is missing or not an object`);
  const r = raw as Record<string, unknown>;
  if (r.model_type !== undefined && r.model_type !== 'gemma4_audio') throw new Gemma4AudioConfigError(`${where}: audio_config.model_type is '${String(r.model_type)}', expected 'gemma4_audio'`);
  const num = (k: string, def?: number, int = true, min = int ? 1 : -Infinity): number => {
    const v = r[k] ?? def;
    if (typeof v !== 'number' || !Number.isFinite(v) || (int && !Number.isInteger(v)) || v < min) throw new Gemma4AudioConfigError(`${where}: audio_config.${k} is ${JSON.stringify(v)}`);
    return v;
  };
  const ch = r.subsampling_conv_channels;
  if (!Array.isArray(ch) || ch.length !== 2 || !ch.every((c) => Number.isInteger(c) && c > 0)) throw new Gemma4AudioConfigError(`${where}: audio_config.subsampling_conv_channels must be two positive integers`);
  if (ch[0] !== 128) throw new Gemma4AudioConfigError(`${where}: audio_config.subsampling_conv_channels[0] must be 128 (the reference sizes input_proj_linear as (channels[0] // 4) · channels[1])`);
  const c: Gemma4AudioConfig = {
    hiddenSize: num('hidden_size'),
    numHiddenLayers: num('num_hidden_layers'),
    numAttentionHeads: num('num_attention_heads'),
    subsamplingConvChannels: [ch[0] as number, ch[1] as number],
    convKernelSize: num('conv_kernel_size', 5),
    attentionChunkSize: num('attention_chunk_size', 12),
    attentionContextLeft: num('attention_context_left', 13),
    attentionContextRight: num('attention_context_right', 0, true, 0),
    attentionLogitCap: num('attention_logit_cap', 50, false, 0),
    attentionInvalidLogitsValue: num('attention_invalid_logits_value', -1e9, false),
    useClippedLinears: r.use_clipped_linears === true,
    gradientClipping: num('gradient_clipping', 1e10, false, 0),
    outputProjDims: num('output_proj_dims', 1536),
    residualWeight: num('residual_weight', 0.5, false),
    rmsNormEps: num('rms_norm_eps', 1e-6, false, 0),
  };
  if (c.hiddenSize % c.numAttentionHeads !== 0) throw new Gemma4AudioConfigError(`${where}: audio_config.hidden_size must be a multiple of num_attention_heads`);
  if (c.attentionContextLeft < 2) throw new Gemma4AudioConfigError(`${where}: audio_config.attention_context_left must be at least 2`);
  return c;
}
