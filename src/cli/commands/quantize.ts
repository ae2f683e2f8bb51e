/**
 * `gemma3n quantize --model DIR --out DIR`: writes the packed int4 checkpoint (packed_q4.ts) so
 * later loads upload int4 weights directly, without re-quantizing.
 */
import { Checkpoint } from '../../checkpoint/checkpoint.js';
import { packQ4 } from '../../checkpoint/packed_q4.js';
import { NodeFolder } from '../../node/fs_folder.js';
import { UsageError } from '../args.js';
import { parse, resolveModelDir, str } from '../common.js';
import { writeModelFolder } from '../write_checkpoint.js';

export async function cmdQuantize(argv: string[]): Promise<number> {
  const v = parse(argv, { model: { type: 'string' }, weights: { type: 'string' }, out: { type: 'string' }, 'keep-f32': { type: 'string' } });
  const out = str(v, 'out');
  if (out === undefined) throw new UsageError('quantize: --out DIR is required');
  let keep: RegExp | null = null;
  if (v['keep-f32'] !== undefined) {
    try {
      keep = new RegExp(str(v, 'keep-f32')!);
    } catch (e) {
      throw new UsageError(`--keep-f32: not a valid regular expression (${(e as Error).message})`);
    }
  }
  const dir = await resolveModelDir(v);
  const folder = new NodeFolder(dir);
  const configText = await folder.readText('config.json');
  const store = await Checkpoint.open(folder, str(v, 'weights'));
  const config = { ...(JSON.parse(configText) as object), quantization_config: { quant_method: 'gemma3n-ts-q4', group_size: 32, bits: 4 } };
  const written = await writeModelFolder(out, config, packQ4(store, configText, (n) => keep?.test(n) ?? false), dir, { format: 'gemma3n-ts packed int4 (Q4G1)' });
  await store.close();
  process.stderr.write(`wrote the packed int4 model (${(written.bytes / 2 ** 20).toFixed(1)} MB in ${written.shards} shard(s)) to ${out}\n`);
  return 0;
}
