/**
 * Opens the tensors of a model folder: a GGUF file (`model.gguf`, as GgufFolder presents one,
 * or `--weights X.gguf`) through GgufStore, otherwise safetensors through Checkpoint.
 */
import type { FileProvider } from '../io/byte_source.js';
import { Checkpoint, type TensorStore } from './checkpoint.js';
import { GGUF_FILE } from './gguf/folder.js';
import { GgufFile } from './gguf/reader.js';
import { ggufTensorStore } from './gguf/arch.js';

export async function openTensorStore(folder: FileProvider, file?: string): Promise<TensorStore> {
  const gguf = file?.endsWith('.gguf')
    ? file
    : file === undefined &&
        (await folder.exists(GGUF_FILE)) &&
        !(await folder.exists('model.safetensors')) &&
        !(await folder.exists('model.safetensors.index.json'))
      ? GGUF_FILE
      : null;
  if (gguf === null) return Checkpoint.open(folder, file);
  return ggufTensorStore(await GgufFile.open(await folder.open(gguf)));
}
