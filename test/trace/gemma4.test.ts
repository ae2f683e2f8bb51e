/** `gemma3n trace` on a Gemma 4 folder: the golden tensors within the Gemma 4 README's tolerances, and decode steps. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { traceRun } from '../../src/trace/run.js';
import { compareWithGolden } from '../../src/trace/text.js';
import { GOLDEN, goldenFolder, openSafetensors } from '../helpers.js';

describe('trace, Gemma 4', () => {
  it('text-tiny-a sequence 2: every golden tensor matched and within tolerance; greedy steps equal the golden continuation', async () => {
    const golden = await openSafetensors(join(GOLDEN, 'gemma4', 'text-tiny-a', 'golden.safetensors'));
    const ids = Array.from(await golden.readF32('input_ids.2'));
    const { tensors, tolerances } = await traceRun(goldenFolder('gemma4/text-tiny-a'), { ids });
    const rows = await compareWithGolden(tensors, golden, undefined, tolerances);
    const byName = new Map(rows.map((r) => [r.name, r]));
    for (const name of ['logits', 'last_hidden_state', 'inputs_embeds', 'per_layer_inputs', 'hidden_states', 'layer_outputs']) {
      const r = byName.get(name);
      expect(r?.goldenName, name).toBe(`${name}.2`);
      expect(r!.ok, `${name}: ${r!.maxAbsDiff} > ${r!.tolerance}`).toBe(true);
    }
    expect(tensors.find((t) => t.name === 'hidden_states')!.shape).toEqual([11, 1, ids.length, 48]);

    const gen = JSON.parse(readFileSync(join(GOLDEN, 'gemma4', 'text-tiny-a', 'generation.json'), 'utf8')) as {
      prompts: { prompt_ids: number[]; generated_ids: number[] }[];
    };
    const p = gen.prompts[1];
    const steps = await traceRun(goldenFolder('gemma4/text-tiny-a'), { ids: p.prompt_ids, steps: 5 });
    expect(Array.from(steps.tensors.find((t) => t.name === 'generated_ids')!.data as Int32Array)).toEqual(p.generated_ids.slice(0, 5));
  });
});
