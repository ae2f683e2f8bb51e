/**
 * `trace --all` on Gemma 4: the decoder layer's intermediates under the reference module paths
 * (Gemma4TextDecoderLayer's submodules, as forward hooks see them), each meaning what its name
 * says; and a multimodal trace (image + audio merged at their placeholders) against the golden.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { TensorToWrite } from '../../src/checkpoint/safetensors.js';
import { traceRun } from '../../src/trace/run.js';
import { compareWithGolden } from '../../src/trace/text.js';
import { GOLDEN, goldenFolder, maxAbsDiff, openSafetensors } from '../helpers.js';

const get = (tensors: TensorToWrite[], name: string): Float32Array => {
  const t = tensors.find((x) => x.name === name);
  if (!t) throw new Error(`no tensor ${name}`);
  return t.data as Float32Array;
};

describe('trace --all, Gemma 4', () => {
  it('text-tiny-a: every layer traces the reference submodule outputs, and they compose into the layer output', async () => {
    const golden = await openSafetensors(join(GOLDEN, 'gemma4', 'text-tiny-a', 'golden.safetensors'));
    const ids = Array.from(await golden.readF32('input_ids.1'));
    const { tensors } = await traceRun(goldenFolder('gemma4/text-tiny-a'), { ids, all: true });
    const T = ids.length,
      H = 48,
      P = 16;
    const names = tensors.map((t) => t.name);
    const perLayer = [
      'input_layernorm',
      'self_attn',
      'post_attention_layernorm',
      'pre_feedforward_layernorm.input',
      'pre_feedforward_layernorm',
      'mlp',
      'post_feedforward_layernorm',
      'per_layer_input_gate.input',
      'per_layer_input',
      'per_layer_input_gate',
      'per_layer_projection',
      'post_per_layer_input_norm',
    ];
    for (let l = 0; l < 10; l++) for (const n of perLayer) expect(names, `layers.${l}.${n}`).toContain(`layers.${l}.${n}`);
    expect(names.some((n) => /residual/.test(n))).toBe(false);
    expect(tensors.find((t) => t.name === 'layers.3.per_layer_input_gate')!.shape).toEqual([1, T, P]);
    expect(tensors.find((t) => t.name === 'layers.3.mlp')!.shape).toEqual([1, T, H]);

    // The sums compose: x + post_attention_layernorm = pre_feedforward_layernorm.input, ... , · layer_scalar = layer_outputs.
    const hs = get(tensors, 'hidden_states'),
      lo = get(tensors, 'layer_outputs');
    const golo = await golden.readF32('layer_outputs.1');
    for (const l of [0, 6, 9]) {
      const x = l === 0 ? hs.subarray(0, T * H) : lo.subarray((l - 1) * T * H, l * T * H);
      const attnIn = get(tensors, `layers.${l}.pre_feedforward_layernorm.input`),
        ffIn = get(tensors, `layers.${l}.per_layer_input_gate.input`);
      expect(
        maxAbsDiff(
          attnIn,
          x.map((v, i) => v + get(tensors, `layers.${l}.post_attention_layernorm`)[i]),
        ),
      ).toBeLessThan(1e-5);
      expect(
        maxAbsDiff(
          ffIn,
          attnIn.map((v, i) => v + get(tensors, `layers.${l}.post_feedforward_layernorm`)[i]),
        ),
      ).toBeLessThan(1e-5);
      const out = lo.subarray(l * T * H, (l + 1) * T * H);
      const sum = ffIn.map((v, i) => v + get(tensors, `layers.${l}.post_per_layer_input_norm`)[i]);
      // layer_scalar: out / sum is one number per layer.
      const ratio = out[5] / sum[5];
      expect(
        maxAbsDiff(
          out,
          sum.map((v) => v * ratio),
        ),
      ).toBeLessThan(1e-4);
      expect(maxAbsDiff(out, golo.subarray(l * T * H, (l + 1) * T * H))).toBeLessThan(2e-3);
    }
    // The per-layer input slice equals per_layer_inputs[:, :, l].
    const pli = get(tensors, 'per_layer_inputs');
    const l7 = get(tensors, 'layers.7.per_layer_input');
    for (let t = 0; t < T; t++) expect(Array.from(l7.subarray(t * P, (t + 1) * P))).toEqual(Array.from(pli.subarray((t * 10 + 7) * P, (t * 10 + 8) * P)));
  });

  it('multimodal: trace with an image and an audio clip merges them as the golden (inputs_embeds, logits)', async () => {
    const dir = join(GOLDEN, 'gemma4', 'multimodal');
    const golden = await openSafetensors(join(dir, 'golden.safetensors'));
    const gen = JSON.parse(readFileSync(join(dir, 'generation.json'), 'utf8')) as { prompt_ids: number[] };
    const waveform = await (await openSafetensors(join(dir, 'waveform.safetensors'))).readF32('waveform');
    const media = [
      { kind: 'image' as const, image: new Uint8Array(readFileSync(join(dir, 'image.png'))) },
      { kind: 'audio' as const, audio: waveform },
    ];
    const { tensors } = await traceRun(goldenFolder('gemma4/multimodal'), { ids: gen.prompt_ids, media, imageSoftTokens: 70 });
    expect(maxAbsDiff(get(tensors, 'inputs_embeds'), await golden.readF32('inputs_embeds_merged'))).toBeLessThan(1e-4);
    const rows = await compareWithGolden(tensors, golden, 3e-3);
    const byName = new Map(rows.map((r) => [r.name, r]));
    for (const name of ['logits', 'hidden_states', 'layer_outputs', 'last_hidden_state', 'per_layer_inputs']) {
      expect(byName.get(name)?.goldenName, name).toBe(name);
      expect(byName.get(name)!.ok, `${name}: ${byName.get(name)!.maxAbsDiff}`).toBe(true);
    }
    // A Gemma 4 folder refuses the Gemma 3n tower-only faces with a pointer to the --ids form.
    const { traceVisionRun } = await import('../../src/trace/run.js');
    await expect(traceVisionRun(goldenFolder('gemma4/multimodal'), { image: media[0].image! })).rejects.toThrow(
      /Gemma 3n's face; for Gemma 4 give --ids holding the <\|image\|> placeholders/,
    );
  });
});
