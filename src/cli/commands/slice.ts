/**
 * `gemma3n slice --model DIR (--preset NAME | --layers-to-skip 20,21 --ffn 8192,...) --out DIR`:
 * writes a standalone MatFormer sub-model (config.json, shards + index, tokenizer files).
 */
import { Checkpoint } from '../../checkpoint/checkpoint.js';
import { parseModelConfig } from '../../checkpoint/config.js';
import { MATFORMER_PRESETS, SlicedStore, slicedConfig } from '../../checkpoint/matformer.js';
import { sliceSpecFromFlags } from '../slice_flags.js';
import type { TensorToWrite } from '../../checkpoint/safetensors.js';
import { writeModelFolder } from '../write_checkpoint.js';
import { NodeFolder } from '../../node/fs_folder.js';
import { UsageError } from '../args.js';
import { parse, resolveModelDir, str } from '../common.js';

export const sliceFlags = { preset: { type: 'string' }, 'layers-to-skip': { type: 'string' }, ffn: { type: 'string' } } as const;

export async function cmdSlice(argv: string[]): Promise<number> {
  const v = parse(argv, {
    model: { type: 'string' },
    weights: { type: 'string' },
    out: { type: 'string' },
    ...sliceFlags,
    'list-presets': { type: 'boolean' },
  });
  if (v['list-presets']) {
    for (const [name, p] of Object.entries(MATFORMER_PRESETS))
      process.stdout.write(
        `${name.padEnd(14)} ${p.effectiveParamsB.toFixed(2)} B effective, ${p.spec.ffnHiddenDims.length} layers, skip [${p.spec.layersToSkip.join(',')}]\n`,
      );
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
  async function* tensors(): AsyncGenerator<TensorToWrite> {
    for (const name of store.names()) {
      const info = await store.info(name);
      yield { name, dtype: info.dtype, shape: info.shape, data: await store.readBytes(name) };
    }
  }
  const written = await writeModelFolder(out, newConfig, tensors(), dir, { matformer_slice: spec });
  await store.close();
  process.stderr.write(
    `wrote a ${spec.ffnHiddenDims.length}-layer slice (${(written.parameters / 1e6).toFixed(2)} M parameters, ${written.shards} shard(s)) to ${out}\n`,
  );
  return 0;
}
