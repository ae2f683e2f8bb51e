/**
 * The packed int4 checkpoint: `gemma3n quantize` writes it, the loader uploads the packed
 * weights as they are, and the model equals the one quantized at load time, bit for bit.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { Checkpoint } from '../../src/checkpoint/checkpoint.js';
import { Gemma3nTextModel } from '../../src/model/text_model.js';
import { NodeFolder } from '../../src/node/fs_folder.js';
import { createNodeWasmKernels } from '../../src/node/wasm_loader.js';
import { GOLDEN, goldenFolder } from '../helpers.js';

describe('packed int4 checkpoint', () => {
  it('quantize → save → load gives the same model as quantizing on load', async () => {
    const out = join(mkdtempSync(join(tmpdir(), 'g3n-q4-')), 'packed');
    const r = await promisify(execFile)(process.execPath, [join(GOLDEN, '..', '..', 'bin', 'gemma3n.js'), 'quantize', '--model', join(GOLDEN, 'text-tiny-b'), '--out', out]);
    expect(r.stderr).toMatch(/wrote the packed int4 model/);
    const ckpt = await Checkpoint.open(new NodeFolder(out));
    expect(ckpt.has('model.language_model.layers.0.mlp.gate_proj.weight.q4')).toBe(true);
    expect(ckpt.has('model.language_model.layers.0.mlp.gate_proj.weight')).toBe(false);
    expect(ckpt.has('model.language_model.lm_head.weight.q4')).toBe(true);
    expect((await ckpt.info('model.language_model.layers.0.input_layernorm.weight')).dtype).toBe('F32');
    await ckpt.close();

    const k = await createNodeWasmKernels({ threads: 1 });
    const { model: packed } = await Gemma3nTextModel.load(new NodeFolder(out), k); // no format given: packed tensors are int4 already
    const { model: onLoad } = await Gemma3nTextModel.load(goldenFolder('text-tiny-b'), k, { format: 'q4' });
    const ids = [5, 9, 300, 17, 42, 8, 8, 100];
    const a = await packed.forward(ids, packed.newCache(), { logits: 'all' });
    const b = await onLoad.forward(ids, onLoad.newCache(), { logits: 'all' });
    expect(Array.from(a.logits)).toEqual(Array.from(b.logits));
  });

  it('a corrupted packed tensor is a clear error naming the tensor', async () => {
    const { MemoryFolder } = await import('../../src/io/byte_source.js');
    const { readFileSync } = await import('node:fs');
    const { writeSafetensors } = await import('../../src/checkpoint/safetensors.js');
    const src = await Checkpoint.open(goldenFolder('text-tiny-a'));
    const tensors = [];
    for (const n of src.names()) {
      const info = await src.info(n);
      if (n === 'model.language_model.layers.1.mlp.up_proj.weight') tensors.push({ name: n + '.q4', dtype: 'U8' as const, shape: [40], data: new Uint8Array(40) });
      else tensors.push({ name: n, dtype: info.dtype, shape: info.shape, data: await src.readBytes(n) });
    }
    const folder = new MemoryFolder(new Map([
      ['config.json', readFileSync(join(GOLDEN, 'text-tiny-a', 'config.json'))],
      ['model.safetensors', writeSafetensors(tensors)],
    ]), 'bad-packed');
    const k = await createNodeWasmKernels({ threads: 1 });
    await expect(Gemma3nTextModel.load(folder, k)).rejects.toThrow(/tensor 'model\.language_model\.layers\.1\.mlp\.up_proj\.weight\.q4': not a valid packed int4 tensor/);
  });
});
