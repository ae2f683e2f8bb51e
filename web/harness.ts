/**
 * Test and trace hooks for harness.html, driven by scripts/trace-browser.mjs and
 * test/browser/browser.test.ts through playwright-core. Model folders come from the serving
 * script over HTTP (HttpFolder); results that are bytes are POSTed back to it.
 */
import { Gemma3n } from '../src/engine/engine.js';
import { traceRun } from '../src/trace/run.js';
import { compareWithGolden, traceText } from '../src/trace/text.js';
import { TsKernels } from '../src/kernels/ts_kernels.js';
import { greedyGenerate } from '../src/engine/greedy.js';
import { SafetensorsFile } from '../src/checkpoint/safetensors.js';
import { Gemma3nTextModel } from '../src/model/text_model.js';
import { chooseKernels, type KernelChoice } from './browser_kernels.js';
import { listedFolder } from './folders.js';

async function post(url: string, bytes: Uint8Array): Promise<void> {
  const r = await fetch(url, { method: 'POST', body: bytes as Uint8Array<ArrayBuffer>, headers: { 'content-type': 'application/octet-stream' } });
  if (!r.ok) throw new Error(`POST ${url}: HTTP ${r.status}`);
}

const harness = {
  /** The work of `gemma3n trace` (TS kernels, as the CLI); the file's bytes go to `uploadUrl`. */
  async trace(
    base: string,
    ids: number[],
    weightsFile: string | undefined,
    uploadUrl: string,
    opts: { all?: boolean; steps?: number } = {},
  ): Promise<{ tensors: number; bytes: number; ms: number }> {
    const t0 = performance.now();
    const { tensors, bytes } = await traceRun(await listedFolder(base), { ids, weightsFile, all: opts.all, steps: opts.steps });
    await post(uploadUrl, bytes);
    return { tensors: tensors.length, bytes: bytes.byteLength, ms: performance.now() - t0 };
  },

  /** Golden comparison of a test/golden/text-tiny-* folder: every tensor of both sequences, greedy ids. */
  async golden(base: string, kernels: KernelChoice = 'ts') {
    const folder = await listedFolder(base);
    const k = await chooseKernels(kernels);
    const { model, checkpoint } = await Gemma3nTextModel.load(folder, k.kernels);
    await checkpoint.close();
    const golden = await SafetensorsFile.open(await folder.open('golden.safetensors'));
    const rows = [];
    for (const seq of [0, 1]) {
      const ids = Array.from(await golden.readF32(`input_ids.${seq}`));
      for (const r of await compareWithGolden(await traceText(model, ids), golden)) rows.push({ seq, ...r });
    }
    const gen = JSON.parse(await folder.readText('generation.json')) as { prompts: { prompt_ids: number[]; generated_ids: number[] }[] };
    const greedy = [];
    for (const p of gen.prompts) greedy.push({ got: await greedyGenerate(model, p.prompt_ids, p.generated_ids.length), want: p.generated_ids });
    return { kernels: k.description, crossOriginIsolated: globalThis.crossOriginIsolated, rows, greedy };
  },

  /** Seeded sampling with the chat template, streamed; compared by the test with Node's result. */
  async generate(base: string, content: string, opts: { maxTokens: number; temperature: number; topK: number; topP: number; seed: number }) {
    const g3n = await Gemma3n.load(await listedFolder(base), { kernels: new TsKernels() });
    const pieces: string[] = [];
    const r = await g3n.generate([{ role: 'user', content }], { ...opts, onText: (t) => pieces.push(t) });
    return { ids: r.ids, text: r.text, pieces: pieces.length };
  },
};

(globalThis as unknown as { gemma3nHarness: typeof harness }).gemma3nHarness = harness;
document.title = 'gemma3n harness ready';
