/**
 * `gemma3n slice --model DIR (--preset NAME | --layers-to-skip 20,21 --ffn 8192,...) --out DIR`:
 * writes a standalone MatFormer sub-model (config.json, shards + index, tokenizer files).
 */
import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Checkpoint } from '../../model/checkpoint.js';
import { parseModelConfig } from '../../model/config.js';
import { MATFORMER_PRESETS, SlicedStore, slicedConfig, type SliceSpec } from '../../model/matformer.js';
import { numel, writeSafetensors, type TensorToWrite } from '../../model/safetensors.js';
import { NodeFolder } from '../../node/fs_folder.js';
import { UsageError } from '../args.js';
import { parse, resolveModelDir, str, type Values } from '../common.js';

/** Shards stay under this size so each fits comfortably in one buffer. */
const SHARD_BYTES = 1 << 30;

function parseList(text: string, flag: string): number[] {
  if (text.trim() === '') return [];
  return text.split(',').map((s) => {
    const t = s.trim();
    const m = /^(\d+)(?:\*(\d+))?$/.exec(t); // "8192" or "8192*30" (repeat)
    if (!m) throw new UsageError(`${flag}: '${t}' is not an integer (or N*count)`);
    return Array(m[2] ? Number(m[2]) : 1).fill(Number(m[1])) as number[];
  }).flat();
}

/** A slice from --preset or from --layers-to-skip / --ffn (shared with generate's --slice flags). */
export function sliceSpecFromFlags(v: Values, numLayers: () => number): SliceSpec | undefined {
  const preset = str(v, 'preset');
  if (preset !== undefined) {
    const p = MATFORMER_PRESETS[preset];
    if (!p) throw new UsageError(`--preset: unknown '${preset}' (known: ${Object.keys(MATFORMER_PRESETS).join(', ')})`);
    return p.spec;
  }
  if (v['layers-to-skip'] === undefined && v.ffn === undefined) return undefined;
  const layersToSkip = parseList(str(v, 'layers-to-skip') ?? '', '--layers-to-skip');
  const keptCount = numLayers() - new Set(layersToSkip).size;
  const ffn = v.ffn === undefined ? undefined : parseList(str(v, 'ffn')!, '--ffn');
  if (ffn === undefined) throw new UsageError('--ffn: give the FFN width of every kept layer (e.g. --ffn 8192*30)');
  const ffnHiddenDims = ffn.length === 1 ? Array(keptCount).fill(ffn[0]) as number[] : ffn;
  return { layersToSkip, ffnHiddenDims };
}

export const sliceFlags = { preset: { type: 'string' }, 'layers-to-skip': { type: 'string' }, ffn: { type: 'string' } } as const;

export async function cmdSlice(argv: string[]): Promise<number> {
  const v = parse(argv, { model: { type: 'string' }, weights: { type: 'string' }, out: { type: 'string' }, ...sliceFlags, 'list-presets': { type: 'boolean' } });
  if (v['list-presets']) {
    for (const [name, p] of Object.entries(MATFORMER_PRESETS)) process.stdout.write(`${name.padEnd(14)} ${p.effectiveParamsB.toFixed(2)} B effective, ${p.spec.ffnHiddenDims.length} layers, skip [${p.spec.layersToSkip.join(',')}]\n`);
    return 0;
  }
  const out = str(v, 'out');
  if (out === undefined) throw new UsageError('slice: --out DIR is required');
  const dir = await resolveModelDir(v);
  const folder = new NodeFolder(dir);
  const config = parseModelConfig(await folder.readText('config.json'), `${dir}/config.json`);
  const spec = sliceSpecFromFlags(v, () => config.text.numHiddenLayers);
  if (!spec) throw new UsageError('slice: give --preset NAME or --layers-to-skip ... --ffn ...');
  const newConfig = slicedConfig(config.raw, spec);
  const store = await SlicedStore.create(await Checkpoint.open(folder, str(v, 'weights')), config.raw, spec);
  await mkdir(out, { recursive: true });

  // Group tensors into shards, then write each shard and the index.
  const shards: string[][] = [[]];
  let size = 0;
  for (const name of store.names()) {
    const info = await store.info(name);
    if (size > 0 && size + info.byteLength > SHARD_BYTES) { shards.push([]); size = 0; }
    shards[shards.length - 1].push(name);
    size += info.byteLength;
  }
  const weightMap: Record<string, string> = {};
  let total = 0;
  for (const [i, names] of shards.entries()) {
    const file = `model-${String(i + 1).padStart(5, '0')}-of-${String(shards.length).padStart(5, '0')}.safetensors`;
    const tensors: TensorToWrite[] = [];
    for (const name of names) {
      const info = await store.info(name);
      tensors.push({ name, dtype: info.dtype, shape: info.shape, data: await store.readBytes(name) });
      weightMap[name] = file;
      total += numel(info.shape);
    }
    await writeFile(join(out, file), writeSafetensors(tensors));
  }
  await writeFile(join(out, 'model.safetensors.index.json'), JSON.stringify({ metadata: { total_parameters: total, matformer_slice: spec }, weight_map: weightMap }, null, 1));
  await writeFile(join(out, 'config.json'), JSON.stringify(newConfig, null, 2));
  for (const f of ['tokenizer.json', 'tokenizer.model', 'tokenizer_config.json', 'chat_template.jinja', 'special_tokens_map.json', 'preprocessor_config.json', 'processor_config.json', 'generation_config.json']) {
    if (existsSync(join(dir, f))) await copyFile(join(dir, f), join(out, f));
  }
  await store.close();
  process.stderr.write(`wrote a ${spec.ffnHiddenDims.length}-layer slice (${(total / 1e6).toFixed(2)} M parameters, ${shards.length} shard(s)) to ${out}\n`);
  return 0;
}
