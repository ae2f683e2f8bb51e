/** `--model FILE.gguf`: a GGUF file opened as a model folder (src/checkpoint/gguf/folder.ts). */
import { existsSync, statSync } from 'node:fs';
import { GgufFolder } from '../checkpoint/gguf/folder.js';
import { NodeFileSource } from '../node/fs_folder.js';
import { UsageError } from './args.js';

export function isGgufPath(p: string | undefined): p is string {
  return p?.toLowerCase().endsWith('.gguf') ?? false;
}

export async function openGgufModel(path: string): Promise<GgufFolder> {
  if (!existsSync(path) || !statSync(path).isFile()) throw new UsageError(`--model: '${path}' is not a file`);
  return GgufFolder.open(await NodeFileSource.open(path));
}
