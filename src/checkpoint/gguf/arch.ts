/**
 * Which model a GGUF file holds, by its `general.architecture`: the Hugging Face config it
 * implies and its tensors under the names that model's loader reads. gemma3n (gemma3n.ts) and
 * gemma4 (gemma4.ts) load; anything else is refused naming the architecture.
 */
import { CheckpointError } from '../safetensors.js';
import { GGUF_ARCH, textConfigFromGguf } from './gemma3n.js';
import { GEMMA4_GLOBAL_NAMES, GEMMA4_LAYER_NAMES, GGUF_ARCH_GEMMA4, gemma4ConfigFromGgufFile } from './gemma4.js';
import type { GgufFile } from './reader.js';
import { GgufStore } from './store.js';

export async function ggufTextConfig(f: GgufFile): Promise<Record<string, unknown>> {
  const arch = f.str('general.architecture');
  if (arch === GGUF_ARCH) return textConfigFromGguf(f);
  if (arch === GGUF_ARCH_GEMMA4) return gemma4ConfigFromGgufFile(f);
  throw new CheckpointError(`${f.name}: architecture '${arch}' is not supported (${GGUF_ARCH}, ${GGUF_ARCH_GEMMA4})`);
}

export async function ggufTensorStore(f: GgufFile): Promise<GgufStore> {
  const c = await ggufTextConfig(f);
  const names = f.str('general.architecture') === GGUF_ARCH_GEMMA4 ? { global: GEMMA4_GLOBAL_NAMES, layer: GEMMA4_LAYER_NAMES } : undefined;
  return new GgufStore(f, { vocab_size_per_layer_input: c.vocab_size_per_layer_input as number }, names);
}
