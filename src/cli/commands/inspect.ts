/**
 * `gemma3n inspect`: what a checkpoint holds. Parameters are split as Gemma 3n's model card
 * counts them: effective (the text decoder without the per-layer embedding table), PLE
 * (embed_tokens_per_layer, kept out of the working set), audio and vision towers.
 */
import { Checkpoint } from '../../checkpoint/checkpoint.js';
import { parseModelConfig } from '../../checkpoint/config.js';
import { isGemma4Config, parseGemma4Config, type Gemma4Config } from '../../checkpoint/gemma4_config.js';
import { numel } from '../../checkpoint/safetensors.js';
import { NodeFolder } from '../../node/fs_folder.js';
import { parse, resolveModelDir, str } from '../common.js';

export function parameterGroup(name: string): 'ple' | 'audio' | 'vision' | 'effective' {
  if (name.includes('embed_tokens_per_layer')) return 'ple';
  if (name.startsWith('model.audio_tower.') || name.startsWith('model.embed_audio.')) return 'audio';
  if (name.startsWith('model.vision_tower.') || name.startsWith('model.embed_vision.')) return 'vision';
  return 'effective';
}

export async function cmdInspect(argv: string[]): Promise<number> {
  const v = parse(argv, { model: { type: 'string' }, weights: { type: 'string' }, json: { type: 'boolean' } });
  const dir = await resolveModelDir(v);
  const folder = new NodeFolder(dir);
  const configText = await folder.readText('config.json');
  const gemma4 = isGemma4Config(JSON.parse(configText) as unknown) ? parseGemma4Config(configText, `${dir}/config.json`) : null;
  const config = gemma4 ? null : parseModelConfig(configText, `${dir}/config.json`);
  const ckpt = await Checkpoint.open(folder, str(v, 'weights'));
  const counts = { effective: 0, ple: 0, audio: 0, vision: 0 };
  const dtypes: Record<string, number> = {};
  for (const name of ckpt.names()) {
    const info = await ckpt.info(name);
    counts[parameterGroup(name)] += numel(info.shape);
    dtypes[info.dtype] = (dtypes[info.dtype] ?? 0) + 1;
  }
  await ckpt.close();
  if (gemma4) return reportGemma4(v.json === true, dir, gemma4, ckpt.names().length, new Set(ckpt.weightMap.values()).size, dtypes, counts);
  const t = config!.text;
  const report = {
    folder: dir,
    model_type: config!.modelType,
    tensors: ckpt.names().length,
    shards: new Set(ckpt.weightMap.values()).size,
    dtypes,
    parameters: { ...counts, total: counts.effective + counts.ple + counts.audio + counts.vision },
    text: {
      layers: t.numHiddenLayers,
      hidden: t.hiddenSize,
      heads: t.numAttentionHeads,
      kv_heads: t.numKeyValueHeads,
      head_dim: t.headDim,
      vocab: t.vocabSize,
      ple_width: t.hiddenSizePerLayerInput,
      ffn: t.intermediateSize,
      sliding_window: t.slidingWindow,
      layer_types: t.layerTypes.map((x) => (x === 'full_attention' ? 'F' : 's')).join(''),
      kv_shared_layers: t.numKvSharedLayers,
      altup_streams: t.altupNumInputs,
      laurel_rank: t.laurelRank,
      sparsity: t.activationSparsityPattern,
      softcap: t.finalLogitSoftcapping,
      rope_theta: { full: t.ropeThetaFull, sliding: t.ropeThetaSliding },
    },
    has_audio: config!.audioConfig !== null,
    has_vision: config!.visionConfig !== null,
  };
  if (v.json) {
    process.stdout.write(JSON.stringify(report) + '\n');
    return 0;
  }
  const fmt = (n: number) => (n >= 1e9 ? `${(n / 1e9).toFixed(2)} B` : n >= 1e6 ? `${(n / 1e6).toFixed(2)} M` : `${n}`);
  process.stdout.write(`${dir}\n  model_type ${report.model_type}, ${report.tensors} tensors in ${report.shards} file(s), dtypes ${JSON.stringify(dtypes)}\n`);
  process.stdout.write(
    `  parameters: effective ${fmt(counts.effective)}, PLE ${fmt(counts.ple)}, audio ${fmt(counts.audio)}, vision ${fmt(counts.vision)}, total ${fmt(report.parameters.total)}\n`,
  );
  process.stdout.write(
    `  text: ${t.numHiddenLayers} layers [${report.text.layer_types}], hidden ${t.hiddenSize}, ${t.numAttentionHeads}/${t.numKeyValueHeads} heads of ${t.headDim}, vocab ${t.vocabSize}, PLE ${t.hiddenSizePerLayerInput}/layer, window ${t.slidingWindow}, ${t.numKvSharedLayers} KV-shared layers\n`,
  );
  return 0;
}

const fmtCount = (n: number): string => (n >= 1e9 ? `${(n / 1e9).toFixed(2)} B` : n >= 1e6 ? `${(n / 1e6).toFixed(2)} M` : `${n}`);

/** Gemma 4: the same counts, and the text fields that differ (two head sizes, per-layer MLP widths, p-RoPE, KV sources). */
function reportGemma4(
  json: boolean,
  dir: string,
  config: Gemma4Config,
  tensors: number,
  shards: number,
  dtypes: Record<string, number>,
  counts: Record<'effective' | 'ple' | 'audio' | 'vision', number>,
): number {
  const t = config.text,
    r = t.ropeParameters;
  const report = {
    folder: dir,
    model_type: config.raw.model_type as string,
    tensors,
    shards,
    dtypes,
    parameters: { ...counts, total: counts.effective + counts.ple + counts.audio + counts.vision },
    text: {
      layers: t.numHiddenLayers,
      hidden: t.hiddenSize,
      heads: t.numAttentionHeads,
      kv_heads: t.numKeyValueHeads,
      head_dim: t.headDim,
      global_head_dim: t.globalHeadDim,
      vocab: t.vocabSize,
      ple_width: t.hiddenSizePerLayerInput,
      ffn: t.layerIntermediateSizes,
      double_wide_mlp: t.useDoubleWideMlp,
      sliding_window: t.slidingWindow,
      layer_types: t.layerTypes.map((x) => (x === 'full_attention' ? 'F' : 's')).join(''),
      kv_shared_layers: t.numKvSharedLayers,
      kv_sources: t.kvSources,
      softcap: t.finalLogitSoftcapping,
      rope: {
        sliding: { type: r.sliding_attention.ropeType, theta: r.sliding_attention.ropeTheta },
        full: { type: r.full_attention.ropeType, theta: r.full_attention.ropeTheta, partial_rotary_factor: r.full_attention.partialRotaryFactor },
      },
    },
    has_audio: config.audioConfig !== null,
    has_vision: config.visionConfig !== null,
  };
  if (json) {
    process.stdout.write(JSON.stringify(report) + '\n');
    return 0;
  }
  process.stdout.write(`${dir}\n  model_type ${report.model_type} (Gemma 4), ${tensors} tensors in ${shards} file(s), dtypes ${JSON.stringify(dtypes)}\n`);
  process.stdout.write(
    `  parameters: effective ${fmtCount(counts.effective)}, PLE ${fmtCount(counts.ple)}, audio ${fmtCount(counts.audio)}, vision ${fmtCount(counts.vision)}, total ${fmtCount(report.parameters.total)}\n`,
  );
  process.stdout.write(
    `  text: ${t.numHiddenLayers} layers [${report.text.layer_types}], hidden ${t.hiddenSize}, ${t.numAttentionHeads}/${t.numKeyValueHeads} heads of ${t.headDim} (full layers ${t.globalHeadDim}), vocab ${t.vocabSize}, PLE ${t.hiddenSizePerLayerInput}/layer, window ${t.slidingWindow}, ${t.numKvSharedLayers} KV-shared layers, MLP ${t.intermediateSize}${t.useDoubleWideMlp ? ` (${2 * t.intermediateSize} in KV-shared layers)` : ''}\n`,
  );
  return 0;
}
