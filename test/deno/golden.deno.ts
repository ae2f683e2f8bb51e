/**
 * The golden text tests under Deno (run by test/deno/deno.test.ts through `deno test`):
 * the compiled package (dist/, built by `npm test`) reads test/golden/text-tiny-{a,b} through
 * the Deno file adapter; logits, hidden states, embeddings within the golden README's
 * tolerances, greedy continuations token for token.
 */
import { DenoFolder, DenoFileSource } from '../../dist/src/deno/fs_folder.js';
import { TsKernels } from '../../dist/src/kernels/ts_kernels.js';
import { Gemma3nTextModel } from '../../dist/src/model/text_model.js';
import { greedyGenerate } from '../../dist/src/engine/greedy.js';
import { SafetensorsFile } from '../../dist/src/checkpoint/safetensors.js';
import { compareWithGolden, traceText } from '../../dist/src/trace/text.js';

declare const Deno: {
  test(name: string, fn: () => Promise<void>): void;
  readTextFile(path: string): Promise<string>;
};

const GOLDEN = new URL('../golden/', import.meta.url).pathname;

function assert(cond: unknown, msg: string): asserts cond {
  if (!cond) throw new Error(msg);
}

for (const name of ['text-tiny-a', 'text-tiny-b']) {
  Deno.test(`golden ${name}: every traced tensor within tolerance (both sequences)`, async () => {
    const { model, checkpoint } = await Gemma3nTextModel.load(new DenoFolder(GOLDEN + name), new TsKernels());
    await checkpoint.close();
    const golden = await SafetensorsFile.open(await DenoFileSource.open(`${GOLDEN}${name}/golden.safetensors`));
    try {
      for (const seq of [0, 1]) {
        const ids = Array.from(await golden.readF32(`input_ids.${seq}`));
        const rows = await compareWithGolden(await traceText(model, ids), golden);
        const names = rows
          .filter((r) => r.goldenName !== null)
          .map((r) => r.name)
          .sort();
        assert(names.join() === 'hidden_states,inputs_embeds,last_hidden_state,logits,per_layer_inputs', `seq ${seq}: compared ${names}`);
        for (const r of rows) assert(r.ok, `seq ${seq} ${r.name}: max abs diff ${r.maxAbsDiff} > ${r.tolerance}`);
      }
    } finally {
      await golden.source.close?.();
    }
  });

  Deno.test(`golden ${name}: greedy continuations token for token`, async () => {
    const { model, checkpoint } = await Gemma3nTextModel.load(new DenoFolder(GOLDEN + name), new TsKernels());
    await checkpoint.close();
    const gen = JSON.parse(await Deno.readTextFile(`${GOLDEN}${name}/generation.json`)) as { prompts: { prompt_ids: number[]; generated_ids: number[] }[] };
    for (const [p, prompt] of gen.prompts.entries()) {
      const out = await greedyGenerate(model, prompt.prompt_ids, prompt.generated_ids.length);
      assert(out.join() === prompt.generated_ids.join(), `prompt ${p}: got ${out} want ${prompt.generated_ids}`);
    }
  });
}
