/** --image / --audio / --pixel-values / --input-features flags → media inputs of a prompt. */
import { readFile } from 'node:fs/promises';
import type { MediaInput } from '../engine/towers.js';
import { MemorySource } from '../io/byte_source.js';
import { SafetensorsFile } from '../checkpoint/safetensors.js';
import { UsageError } from './args.js';
import type { Values } from './common.js';

export const mediaFlags = {
  image: { type: 'string', multiple: true },
  audio: { type: 'string', multiple: true },
  'pixel-values': { type: 'string', multiple: true },
  'input-features': { type: 'string', multiple: true },
} as const;

async function tensorFile(path: string, flag: string): Promise<SafetensorsFile> {
  try {
    return await SafetensorsFile.open(new MemorySource(await readFile(path), path));
  } catch (e) {
    throw new UsageError(`${flag}: ${(e as Error).message}`);
  }
}

async function bytes(path: string, flag: string): Promise<Uint8Array> {
  try {
    return new Uint8Array(await readFile(path));
  } catch (e) {
    throw new UsageError(`${flag}: cannot read '${path}' (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
}

export async function readMedia(v: Values): Promise<MediaInput[]> {
  const list = (k: string) => (v[k] as string[] | undefined) ?? [];
  const media: MediaInput[] = [];
  for (const p of list('image')) media.push({ kind: 'image', image: await bytes(p, '--image') });
  for (const p of list('pixel-values')) {
    const st = await tensorFile(p, '--pixel-values');
    if (!st.tensors.has('pixel_values')) throw new UsageError(`--pixel-values: ${p} has no 'pixel_values' tensor`);
    media.push({ kind: 'image', pixelValues: await st.readF32('pixel_values') });
  }
  for (const p of list('audio')) media.push({ kind: 'audio', audio: await bytes(p, '--audio') });
  for (const p of list('input-features')) {
    const st = await tensorFile(p, '--input-features');
    for (const n of ['input_features', 'input_features_mask']) if (!st.tensors.has(n)) throw new UsageError(`--input-features: ${p} has no '${n}' tensor`);
    const shape = st.info('input_features').shape;
    if (shape.length !== 3 || shape[0] !== 1) throw new UsageError(`--input-features: input_features must be [1, T, 128], got [${shape.join(', ')}]`);
    const mask = Uint8Array.from(await st.readF32('input_features_mask'));
    media.push({ kind: 'audio', features: { features: await st.readF32('input_features'), mask, batch: 1, frames: shape[1], featureSize: shape[2] } });
  }
  return media;
}
