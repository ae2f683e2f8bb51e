/**
 * `gemma3n quantize --model DIR --out DIR [--text-only] [--keep-f32 REGEX]`: writes a packed v2
 * folder (docs/packed-format.md) from a published checkpoint or a v1/v2 packed folder. Tensor by
 * tensor, the big tables in row chunks: memory stays a few hundred MB whatever the model size.
 */
import { existsSync } from 'node:fs';
import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { openTensorStore } from '../../checkpoint/open_store.js';
import type { FileProvider } from '../../io/byte_source.js';
import { isGgufPath, openGgufModel } from '../gguf.js';
import { packedManifest, packedVersionOf } from '../../checkpoint/packed_format.js';
import { planPackedV2 } from '../../checkpoint/pack_v2.js';
import { planTowerTensor } from '../../encoders/tower_weights.js';
import { NodeFolder } from '../../node/fs_folder.js';
import { UsageError } from '../args.js';
import { parse, resolveModelDir, str } from '../common.js';
import { writeSharded } from '../stream_writer.js';
import { AUX_FILES } from '../write_checkpoint.js';
import { writeCompactTokenizerFile } from '../../node/compact_tokenizer_file.js';

export async function cmdQuantize(argv: string[]): Promise<number> {
  const v = parse(argv, {
    model: { type: 'string' },
    weights: { type: 'string' },
    out: { type: 'string' },
    'keep-f32': { type: 'string' },
    'text-only': { type: 'boolean' },
  });
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
  const m = str(v, 'model');
  const dir = isGgufPath(m) ? m : await resolveModelDir(v); // a gemma3n GGUF file works too
  if (resolve(dir) === resolve(out)) throw new UsageError('quantize: --out must differ from --model');
  const textOnly = v['text-only'] === true;
  const folder = isGgufPath(m) ? await openGgufModel(m) : new NodeFolder(dir);
  const configText = await folder.readText('config.json');
  const raw = JSON.parse(configText) as Record<string, unknown>;
  packedVersionOf(raw, `${dir}/config.json`); // refuses an unknown packed version
  const store = await openTensorStore(folder, str(v, 'weights'));
  const t0 = performance.now();
  try {
    const plan = await planPackedV2(store, configText, { textOnly, keepF32: (n) => keep?.test(n) ?? false, towerTensor: planTowerTensor });
    await mkdir(out, { recursive: true });
    const format = 'gemma3n-ts packed v2';
    let last = 0;
    const written = await writeSharded(out, plan.tensors, {
      shardBytes: 2 ** 30,
      metadata: { format },
      onTensor: (name, done, total) => {
        const now = performance.now();
        if (now - last > 2000 || done === total) {
          last = now;
          process.stderr.write(`\r  ${done}/${total} tensors (${name.slice(0, 60)})`.padEnd(90));
        }
      },
    });
    process.stderr.write('\n');
    const config = { ...raw, quantization_config: packedManifest(textOnly, textOnly ? 'none' : 'int8 / int4 per family (docs/packed-format.md)') };
    await writeFile(join(out, 'config.json'), JSON.stringify(config, null, 2));
    for (const f of AUX_FILES) if (existsSync(join(dir, f))) await copyFile(join(dir, f), join(out, f));
    if (isGgufPath(m)) await copyTokenizerFiles(folder, out); // tokenizer.model etc. rebuilt from the GGUF metadata
    if (existsSync(join(out, 'tokenizer.json'))) await writeCompactTokenizerFile(out);
    process.stderr.write(
      `wrote the packed v2 model (${(written.bytes / 2 ** 20).toFixed(1)} MB in ${written.files.length} shard(s); ${plan.dropped.length} unused tensor(s) left out) to ${out} in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`,
    );
  } finally {
    await store.close();
  }
  return 0;
}

async function copyTokenizerFiles(folder: FileProvider, out: string): Promise<void> {
  for (const f of ['tokenizer.model', 'tokenizer_config.json', 'chat_template.jinja']) {
    if (!(await folder.exists(f))) continue;
    const src = await folder.open(f);
    await writeFile(join(out, f), await src.read(0, src.size));
  }
}
