/**
 * gemma3n-ts's packed int4 checkpoint: an ordinary safetensors checkpoint in which each
 * quantized linear `NAME` is replaced by a U8 tensor `NAME.q4` holding `Q4Matrix.toBytes()`
 * (src/kernels/q4.ts: header, packed nibbles, f32 group scales), and the tied LM head is
 * stored once more, packed, as `...lm_head.weight.q4`. Everything else (norms, embedding
 * tables, audio/vision towers) keeps its original name and dtype, so the loader reads the file
 * like any checkpoint and uploads packed weights without re-quantizing.
 */
import { Q4Matrix } from '../kernels/q4.js';
import type { TensorStore } from './checkpoint.js';
import { parseModelConfig } from './config.js';
import { numel, CheckpointError, type TensorToWrite } from './safetensors.js';
import { textPrefix } from './checkpoint.js';
import { decodeQ4 } from './packed_format.js';

export const Q4_SUFFIX = '.q4';

/** A `.q4` tensor of a v1 or v2 folder (packed_format.ts checks sizes and scales). */
export function readPackedQ4(bytes: Uint8Array, where: string): Q4Matrix {
  return decodeQ4(bytes, where);
}

/** Text-decoder linears (names without the text prefix) that the loader runs through kernels.linear. */
const LINEAR =
  /^(layers\.\d+\.(self_attn\.[qkvo]_proj|mlp\.(gate|up|down)_proj|laurel\.linear_(left|right)|per_layer_input_gate|per_layer_projection)|altup_(unembed_)?projections\.\d+|per_layer_model_projection)\.weight$/;

export function isTextLinear(name: string): boolean {
  return LINEAR.test(name);
}

/**
 * Yields the tensors of the packed checkpoint, one at a time (each linear quantized once).
 * `keepF32(name)` leaves chosen linears unquantized.
 */
export async function* packQ4(store: TensorStore, configText: string, keepF32: (name: string) => boolean = () => false): AsyncGenerator<TensorToWrite> {
  const config = parseModelConfig(configText);
  const prefix = textPrefix(store);
  for (const name of store.names()) {
    const info = await store.info(name);
    const local = name.startsWith(prefix) ? name.slice(prefix.length) : null;
    if (local !== null && isTextLinear(local) && !keepF32(local) && info.shape.length === 2) {
      const bytes = Q4Matrix.quantize(await store.readF32(name), info.shape[0], info.shape[1]).toBytes();
      yield { name: name + Q4_SUFFIX, dtype: 'U8', shape: [bytes.length], data: bytes };
    } else {
      yield { name, dtype: info.dtype, shape: info.shape, data: await store.readBytes(name) };
    }
  }
  // The tied LM head, packed once so loading needs no quantization at all.
  const embed = prefix + 'embed_tokens.weight';
  const e = await store.info(embed);
  if (numel(e.shape) !== config.text.vocabSize * config.text.hiddenSize) throw new CheckpointError(`${store.file}: '${embed}' does not match the config`);
  const head = Q4Matrix.quantize(await store.readF32(embed), e.shape[0], e.shape[1]).toBytes();
  yield { name: prefix + 'lm_head.weight' + Q4_SUFFIX, dtype: 'U8', shape: [head.length], data: head };
}
