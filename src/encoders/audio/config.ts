/**
 * The audio part of a full Gemma 3n `config.json`: `audio_config` (the USM conformer encoder and the
 * `embed_audio` embedder) plus the few top-level and `text_config` fields the audio path reads.
 *
 * Defaults are those of `Gemma3nAudioConfig` [configuration_gemma3n.py], which equal the
 * google/gemma-3n-E2B and -E4B checkpoints. A field present in the file always wins.
 */
import { CheckpointError } from '../../checkpoint/safetensors.js';

export interface AudioConfig {
  /** Mel bins of the input features (128). */
  inputFeatSize: number;
  /** Conformer width D (1536). */
  hiddenSize: number;
  rmsNormEps: number;
  /** Clamp bound used at every clipping site of the conformer (1e10 in the real model: a no-op). */
  gradientClipping: number;
  /** Query block size W of the chunked local attention (12). */
  confAttentionChunkSize: number;
  /** Left context including the current step (13, i.e. 12 past steps + self). */
  confAttentionContextLeft: number;
  /** Look-ahead steps (0). */
  confAttentionContextRight: number;
  /** Attention logit soft cap: tanh(x/cap)*cap (50). */
  confAttentionLogitCap: number;
  confNumAttentionHeads: number;
  confNumHiddenLayers: number;
  /** Depthwise causal conv kernel of the light conv module (5). */
  confConvKernelSize: number;
  /** Output stride: keep every n-th conformer step (4). */
  confReductionFactor: number;
  /** Scale of the feed-forward residual branch (0.5, the "half-step" FFN of Conformer). */
  confResidualWeight: number;
  /** Output channels of the two sub-sampling convs ([128, 32]). */
  sscpConvChannelSize: [number, number];
  sscpConvGroupNormEps: number;
  /** [time, freq] kernel of each conv ([[3,3],[3,3]]). */
  sscpConvKernelSize: [[number, number], [number, number]];
  /** [time, freq] stride of each conv ([[2,2],[2,2]]). */
  sscpConvStrideSize: [[number, number], [number, number]];
  /** Rows of embed_audio.embedding (128) and the token id of row 0 (262272). */
  vocabSize: number;
  vocabOffset: number;
}

/** What the audio path needs from a full gemma3n config. */
export interface AudioModelConfig {
  audio: AudioConfig;
  /** text_config.hidden_size: width of embed_audio's output (2048 for E2B). */
  textHiddenSize: number;
  /** text_config.vocab_size: id `textVocabSize - 1` is the audio padding token (262399). */
  textVocabSize: number;
  /** Soft tokens one clip occupies in the prompt (188 = 30 s). */
  audioSoftTokensPerImage: number;
}

export const DEFAULT_AUDIO_CONFIG: Readonly<AudioConfig> = Object.freeze({
  inputFeatSize: 128,
  hiddenSize: 1536,
  rmsNormEps: 1e-6,
  gradientClipping: 1e10,
  confAttentionChunkSize: 12,
  confAttentionContextLeft: 13,
  confAttentionContextRight: 0,
  confAttentionLogitCap: 50,
  confNumAttentionHeads: 8,
  confNumHiddenLayers: 12,
  confConvKernelSize: 5,
  confReductionFactor: 4,
  confResidualWeight: 0.5,
  sscpConvChannelSize: [128, 32],
  sscpConvGroupNormEps: 1e-3,
  sscpConvKernelSize: [[3, 3], [3, 3]],
  sscpConvStrideSize: [[2, 2], [2, 2]],
  vocabSize: 128,
  vocabOffset: 262_144 + 128,
}) as AudioConfig;

/** snake_case JSON key of each field. */
const KEYS: Record<keyof AudioConfig, string> = {
  inputFeatSize: 'input_feat_size',
  hiddenSize: 'hidden_size',
  rmsNormEps: 'rms_norm_eps',
  gradientClipping: 'gradient_clipping',
  confAttentionChunkSize: 'conf_attention_chunk_size',
  confAttentionContextLeft: 'conf_attention_context_left',
  confAttentionContextRight: 'conf_attention_context_right',
  confAttentionLogitCap: 'conf_attention_logit_cap',
  confNumAttentionHeads: 'conf_num_attention_heads',
  confNumHiddenLayers: 'conf_num_hidden_layers',
  confConvKernelSize: 'conf_conv_kernel_size',
  confReductionFactor: 'conf_reduction_factor',
  confResidualWeight: 'conf_residual_weight',
  sscpConvChannelSize: 'sscp_conv_channel_size',
  sscpConvGroupNormEps: 'sscp_conv_group_norm_eps',
  sscpConvKernelSize: 'sscp_conv_kernel_size',
  sscpConvStrideSize: 'sscp_conv_stride_size',
  vocabSize: 'vocab_size',
  vocabOffset: 'vocab_offset',
};

/** Fields that must be positive integers (the rest are positive numbers, or pairs). */
const INTS = new Set<keyof AudioConfig>([
  'inputFeatSize', 'hiddenSize', 'confAttentionChunkSize', 'confAttentionContextLeft', 'confNumAttentionHeads',
  'confNumHiddenLayers', 'confConvKernelSize', 'confReductionFactor', 'vocabSize',
]);

function isPosInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v > 0;
}

/**
 * Parses the audio part of a full gemma3n config (the parsed `config.json` object).
 * `where` names the file in error messages.
 */
export function parseAudioConfig(full: unknown, where = 'config.json'): AudioModelConfig {
  const fail = (msg: string): never => { throw new CheckpointError(`${where}: ${msg}`); };
  if (typeof full !== 'object' || full === null) fail('not a JSON object');
  const root = full as Record<string, unknown>;
  const raw = root.audio_config;
  if (typeof raw !== 'object' || raw === null) fail('no "audio_config" object (is this a full gemma3n config?)');
  const a = raw as Record<string, unknown>;
  const cfg: AudioConfig = structuredClone(DEFAULT_AUDIO_CONFIG);
  for (const [field, key] of Object.entries(KEYS) as [keyof AudioConfig, string][]) {
    const v = a[key];
    if (v === undefined || v === null) continue;
    const f = `audio_config.${key}`;
    if (field === 'sscpConvChannelSize') {
      if (!Array.isArray(v) || v.length !== 2 || !v.every(isPosInt)) fail(`${f} must be two positive integers, got ${JSON.stringify(v)}`);
      const c = v as number[];
      cfg.sscpConvChannelSize = [c[0], c[1]];
    } else if (field === 'sscpConvKernelSize' || field === 'sscpConvStrideSize') {
      const ok = Array.isArray(v) && v.length === 2 && v.every((p) => Array.isArray(p) && p.length === 2 && p.every(isPosInt));
      if (!ok) fail(`${f} must be [[t, f], [t, f]] positive integers, got ${JSON.stringify(v)}`);
      const p = v as number[][];
      cfg[field] = [[p[0][0], p[0][1]], [p[1][0], p[1][1]]];
    } else if (INTS.has(field)) {
      if (!isPosInt(v)) fail(`${f} must be a positive integer, got ${JSON.stringify(v)}`);
      (cfg[field] as number) = v as number;
    } else if (field === 'confAttentionContextRight' || field === 'vocabOffset') {
      if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) fail(`${f} must be a non-negative integer, got ${JSON.stringify(v)}`);
      (cfg[field] as number) = v as number;
    } else {
      if (typeof v !== 'number' || !(v > 0)) fail(`${f} must be a positive number, got ${JSON.stringify(v)}`);
      (cfg[field] as number) = v as number;
    }
  }
  if (cfg.hiddenSize % cfg.confNumAttentionHeads !== 0) fail(`audio_config.hidden_size ${cfg.hiddenSize} is not divisible by conf_num_attention_heads ${cfg.confNumAttentionHeads}`);
  const text = root.text_config as Record<string, unknown> | undefined;
  if (typeof text !== 'object' || text === null) fail('no "text_config" object (embed_audio needs text_config.hidden_size)');
  const textHiddenSize = text!.hidden_size;
  if (!isPosInt(textHiddenSize)) fail(`text_config.hidden_size must be a positive integer, got ${JSON.stringify(textHiddenSize)}`);
  const textVocabSize = text!.vocab_size ?? 262_400;
  if (!isPosInt(textVocabSize)) fail(`text_config.vocab_size must be a positive integer, got ${JSON.stringify(textVocabSize)}`);
  const soft = root.audio_soft_tokens_per_image ?? 188;
  if (!isPosInt(soft)) fail(`audio_soft_tokens_per_image must be a positive integer, got ${JSON.stringify(soft)}`);
  return { audio: cfg, textHiddenSize: textHiddenSize as number, textVocabSize: textVocabSize as number, audioSoftTokensPerImage: soft as number };
}
