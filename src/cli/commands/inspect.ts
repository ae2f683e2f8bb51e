/**
 * `gemma3n inspect`: what a checkpoint holds. Parameters are split as Gemma 3n's model card
 * counts them: effective (the text decoder without the per-layer embedding table), PLE
 * (embed_tokens_per_layer, kept out of the working set), audio and vision towers.
 */
import { Checkpoint } from '../../checkpoint/checkpoint.js';
import { parseModelConfig } from '../../checkpoint/config.js';
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
  const config = parseModelConfig(await folder.readText('config.json'), `${dir}/config.json`);
  const ckpt = await Checkpoint.open(folder, str(v, 'weights'));
  const counts = { effective: 0, ple: 0, audio: 0, vision: 0 };
  const dtypes: Record<string, number> = {};
  for (const name of ckpt.names()) {
    const info = await ckpt.info(name);
    counts[parameterGroup(name)] += numel(info.shape);
    dtypes[info.dtype] = (dtypes[info.dtype] ?? 0) + 1;
  }
  await ckpt.close();
  const t = config.text;
  const report = {
    folder: dir,
    model_type: config.modelType,
    tensors: ckpt.names().length,
    shards: new Set(ckpt.weightMap.values()).size,
    dtypes,
    parameters: { ...counts, total: counts.effective + counts.ple + counts.audio + counts.vision },
    text: {
      layers: t.numHiddenLayers, hidden: t.hiddenSize, heads: t.numAttentionHeads, kv_heads: t.numKeyValueHeads, head_dim: t.headDim,
      vocab: t.vocabSize, ple_width: t.hiddenSizePerLayerInput, ffn: t.intermediateSize, sliding_window: t.slidingWindow,
      layer_types: t.layerTypes.map((x) => (x === 'full_attention' ? 'F' : 's')).join(''), kv_shared_layers: t.numKvSharedLayers,
      altup_streams: t.altupNumInputs, laurel_rank: t.laurelRank, sparsity: t.activationSparsityPattern, softcap: t.finalLogitSoftcapping,
      rope_theta: { full: t.ropeThetaFull, sliding: t.ropeThetaSliding },
    },
    has_audio: config.audioConfig !== null,
    has_vision: config.visionConfig !== null,
  };
  if (v.json) {
    process.stdout.write(JSON.stringify(report) + '\n');
    return 0;
  }
  const fmt = (n: number) => (n >= 1e9 ? `${(n / 1e9).toFixed(2)} B` : n >= 1e6 ? `${(n / 1e6).toFixed(2)} M` : `${n}`);
  process.stdout.write(`${dir}\n  model_type ${report.model_type}, ${report.tensors} tensors in ${report.shards} file(s), dtypes ${JSON.stringify(dtypes)}\n`);
  process.stdout.write(`  parameters: effective ${fmt(counts.effective)}, PLE ${fmt(counts.ple)}, audio ${fmt(counts.audio)}, vision ${fmt(counts.vision)}, total ${fmt(report.parameters.total)}\n`);
  process.stdout.write(`  text: ${t.numHiddenLayers} layers [${report.text.layer_types}], hidden ${t.hiddenSize}, ${t.numAttentionHeads}/${t.numKeyValueHeads} heads of ${t.headDim}, vocab ${t.vocabSize}, PLE ${t.hiddenSizePerLayerInput}/layer, window ${t.slidingWindow}, ${t.numKvSharedLayers} KV-shared layers\n`);
  return 0;
}
