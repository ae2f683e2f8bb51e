/**
 * The packed int4 checkpoint, format v1 (what the first `gemma3n quantize` wrote; v2 is tested in
 * packed_v2.test.ts): v1 folders still load, uploading the packed weights as they are, and the
 * model equals the one quantized at load time, bit for bit; `quantize` converts a v1 folder to v2.
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
import { createNodeWasmKernels } from '../../src/node/wasm_host.js';
import { GOLDEN, goldenFolder } from '../helpers.js';
import { readFileSync } from 'node:fs';
import { packQ4 } from '../../src/checkpoint/packed_q4.js';
import { decodeQ4 } from '../../src/checkpoint/packed_format.js';
import { Q4Matrix } from '../../src/kernels/q4.js';
import { writeModelFolder } from '../../src/cli/write_checkpoint.js';

async function ckpt2bytes(dir: string, name: string): Promise<Uint8Array> {
  const c = await Checkpoint.open(new NodeFolder(dir));
  try {
    return await c.readBytes(name);
  } finally {
    await c.close();
  }
}

describe('packed int4 checkpoint', () => {
  it('a v1 folder loads and gives the same model as quantizing on load; quantize converts it to v2', async () => {
    const out = join(mkdtempSync(join(tmpdir(), 'g3n-q4-')), 'packed');
    const src = await Checkpoint.open(goldenFolder('text-tiny-b'));
    const configText = readFileSync(join(GOLDEN, 'text-tiny-b', 'config.json'), 'utf8');
    const v1config = { ...JSON.parse(configText), quantization_config: { quant_method: 'gemma3n-ts-q4', group_size: 32, bits: 4 } };
    await writeModelFolder(out, v1config, packQ4(src, configText), join(GOLDEN, 'text-tiny-b'));
    await src.close();
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

    const v2 = join(out, '..', 'v2');
    const r = await promisify(execFile)(process.execPath, [join(GOLDEN, '..', '..', 'bin', 'gemma3n.js'), 'quantize', '--model', out, '--out', v2]);
    expect(r.stderr).toMatch(/wrote the packed v2 model/);
    const conv = await Checkpoint.open(new NodeFolder(v2));
    expect(conv.has('model.language_model.lm_head.weight.q4')).toBe(false);
    expect(conv.has('model.language_model.embed_tokens.weight.q4')).toBe(true);
    const q1 = Q4Matrix.fromBytes(await ckpt2bytes(out, 'model.language_model.layers.0.mlp.gate_proj.weight.q4'));
    const q2 = decodeQ4(await conv.readBytes('model.language_model.layers.0.mlp.gate_proj.weight.q4'), 'v2');
    expect(Array.from(q2.nibbles)).toEqual(Array.from(q1.nibbles)); // same codes, log-coded scales (v2.1)
    for (let i = 0; i < q1.scales.length; i++) {
      expect(q2.scales[i]).toBeGreaterThanOrEqual(q1.scales[i]);
      expect(q2.scales[i]).toBeLessThanOrEqual(q1.scales[i] * 2 ** (1 / 32) * (1 + 1e-6));
    }
    await conv.close();
  });

  it('a corrupted packed tensor is a clear error naming the tensor', async () => {
    const { MemoryFolder } = await import('../../src/io/byte_source.js');
    const { readFileSync } = await import('node:fs');
    const { writeSafetensors } = await import('../../src/checkpoint/safetensors.js');
    const src = await Checkpoint.open(goldenFolder('text-tiny-a'));
    const tensors = [];
    for (const n of src.names()) {
      const info = await src.info(n);
      if (n === 'model.language_model.layers.1.mlp.up_proj.weight')
        tensors.push({ name: n + '.q4', dtype: 'U8' as const, shape: [40], data: new Uint8Array(40) });
      else tensors.push({ name: n, dtype: info.dtype, shape: info.shape, data: await src.readBytes(n) });
    }
    const folder = new MemoryFolder(
      new Map([
        ['config.json', readFileSync(join(GOLDEN, 'text-tiny-a', 'config.json'))],
        ['model.safetensors', writeSafetensors(tensors)],
      ]),
      'bad-packed',
    );
    const k = await createNodeWasmKernels({ threads: 1 });
    await expect(Gemma3nTextModel.load(folder, k)).rejects.toThrow(
      /tensor 'model\.language_model\.layers\.1\.mlp\.up_proj\.weight\.q4': not a packed int4 tensor \(magic 0x0/,
    );
  });
});
