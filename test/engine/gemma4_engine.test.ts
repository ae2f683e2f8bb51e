/**
 * The engine on Gemma 4 folders (model_type gemma4 picks Gemma4TextModel behind CausalLM):
 * greedy continuations through the public API equal the goldens' (alone, through the batching
 * scheduler, and with image + audio from the multimodal golden); chat uses Gemma 4's turn
 * tokens, stops on <turn|> and keeps its KV cache between turns.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Gemma3n } from '../../src/engine/engine.js';
import { greedyGenerate } from '../../src/engine/greedy.js';
import { Gemma4TextModel } from '../../src/model/gemma4_text_model.js';
import type { StepExplain } from '../../src/model/explain.js';
import { TsKernels } from '../../src/kernels/ts_kernels.js';
import { GOLDEN, goldenFolder, openSafetensors } from '../helpers.js';
import { G4, gemma4ChatFolder } from './tiny_gemma4_tokenizer.js';

interface Gen {
  prompts: { prompt_ids: number[]; generated_ids: number[] }[];
}
const generation = (name: string): Gen => JSON.parse(readFileSync(join(GOLDEN, 'gemma4', name, 'generation.json'), 'utf8')) as Gen;

describe('engine on Gemma 4', () => {
  for (const name of ['text-tiny-a', 'text-tiny-b']) {
    it(`${name}: generate() and stream() from raw ids give the golden greedy continuations, alone and batched`, async () => {
      const g = await Gemma3n.load(goldenFolder(`gemma4/${name}`));
      expect(g.family).toBe('gemma4');
      expect(g.model).toBeInstanceOf(Gemma4TextModel);
      const gen = generation(name);
      for (const p of gen.prompts) {
        const r = await g.generate({ ids: p.prompt_ids }, { maxTokens: 16, temperature: 0 });
        expect(r.ids).toEqual(p.generated_ids);
        expect(r.metrics.stopReason).toBe('max_tokens');
      }
      // The scheduler: both prompts decode together in batched steps (forwardBatch), prompts in chunks of 5.
      g.useScheduler({ parallel: 2, prefillChunk: 5 });
      const both = await Promise.all(gen.prompts.map((p) => g.generate({ ids: p.prompt_ids }, { maxTokens: 16, temperature: 0 })));
      expect(both.map((r) => r.ids)).toEqual(gen.prompts.map((p) => p.generated_ids));
      expect(g.scheduler!.stats.steps).toBeLessThan(2 * 16 + 10); // shared steps, not one run per prompt
      await g.dispose();
    });
  }

  it('PLE streamed from the file (--stream-ple): same greedy ids; explain reports the rows read, head sizes and MLP widths', async () => {
    const g = await Gemma3n.load(goldenFolder('gemma4/text-tiny-a'), { ple: 'stream', pleCacheRows: 4 });
    expect(g.model.readsCheckpoint).toBe(true);
    const p = generation('text-tiny-a').prompts[0];
    const steps: StepExplain[] = [];
    const r = await g.generate({ ids: p.prompt_ids }, { maxTokens: 16, temperature: 0, onExplain: (e) => steps.push(e) });
    expect(r.ids).toEqual(p.generated_ids);
    expect(steps).toHaveLength(16);
    expect(steps[0].pleRowsLookedUp).toEqual(p.prompt_ids);
    expect(steps[0].pleRowsFetched!.length).toBeGreaterThan(0);
    const layers = steps[1].layers!;
    expect(layers.map((l) => l.headDim)).toEqual([16, 16, 16, 16, 32, 16, 16, 16, 16, 32]);
    expect(layers.map((l) => l.ffnWidth)).toEqual([192, 192, 192, 192, 192, 192, 384, 384, 384, 384]);
    expect(layers.map((l) => l.kvSource)).toEqual([0, 1, 2, 3, 4, 5, 5, 5, 5, 4]);
    // Sliding layers see at most the window (8) once the sequence is longer.
    expect(steps[15].layers![0].keysAttended).toBe(8);
    expect(steps[15].layers![4].keysAttended).toBe(p.prompt_ids.length + 15);
    await g.dispose();
  });

  it('forwardBatch rows equal forward alone, bit for bit (text-tiny-b: GQA, window 6)', async () => {
    const { model } = await Gemma4TextModel.load(goldenFolder('gemma4/text-tiny-b'), new TsKernels());
    const golden = await openSafetensors(join(GOLDEN, 'gemma4', 'text-tiny-b', 'golden.safetensors'));
    const a = Array.from(await golden.readF32('input_ids.1')),
      b = Array.from(await golden.readF32('input_ids.2'));
    const alone = async (ids: number[]) => (await model.forward(ids, model.newCache())).logits;
    const ca = model.newCache(),
      cb = model.newCache();
    const [la, lb] = await model.forwardBatch([
      { ids: a, cache: ca },
      { ids: b, cache: cb },
    ]);
    expect(Array.from(la)).toEqual(Array.from(await alone(a)));
    expect(Array.from(lb)).toEqual(Array.from(await alone(b)));
    // One decode step each, batched, after different prompt lengths.
    const [da, db] = await model.forwardBatch([
      { ids: [7], cache: ca },
      { ids: [9], cache: cb },
    ]);
    const ra = model.newCache();
    await model.forward(a, ra);
    const rb = model.newCache();
    await model.forward(b, rb);
    expect(Array.from(da)).toEqual(Array.from((await model.forward([7], ra)).logits));
    expect(Array.from(db)).toEqual(Array.from((await model.forward([9], rb)).logits));
  });

  it('multimodal golden: image (PNG) + audio (waveform) through generate() give the golden 8-token continuation', async () => {
    const dir = join(GOLDEN, 'gemma4', 'multimodal');
    const g = await Gemma3n.load(goldenFolder('gemma4/multimodal'), { imageSoftTokens: 70 });
    expect(g.supportsImages && g.supportsAudio).toBe(true);
    expect(g.media!.loaded).toEqual({ vision: false, audio: false });
    const gen = JSON.parse(readFileSync(join(dir, 'generation.json'), 'utf8')) as { prompt_ids: number[]; generated_ids: number[] };
    const waveform = await (await openSafetensors(join(dir, 'waveform.safetensors'))).readF32('waveform');
    const media = [
      { kind: 'image' as const, image: new Uint8Array(readFileSync(join(dir, 'image.png'))) },
      { kind: 'audio' as const, audio: waveform },
    ];
    const r = await g.generate({ ids: gen.prompt_ids, media }, { maxTokens: 8, temperature: 0 });
    expect(r.ids).toEqual(gen.generated_ids);
    expect(g.media!.loaded).toEqual({ vision: true, audio: true });
    // Placeholders that do not match the media are refused (counts named).
    await expect(g.generate({ ids: [2, 250, 500, 500, 502], media: media.slice(0, 1) }, { maxTokens: 1 })).rejects.toThrow(
      /2 image token\(s\) but the 1 image\(s\) give 63 soft tokens/,
    );
    g.releaseTowers();
    expect(g.media!.loaded).toEqual({ vision: false, audio: false });
    await g.dispose();
  });

  it('chat: Gemma 4 turn tokens, media expanded to <|image> + N x <|image|> + <image|>, stop on <turn|>, KV cache kept between turns', async () => {
    const g = await Gemma3n.load(gemma4ChatFolder('multimodal'), { imageSoftTokens: 70 });
    const tok = g.tokenizer!;
    expect(g.defaultStopTokens().sort((x, y) => x - y)).toEqual([G4.eos, G4.endTurn]);
    const enc = (s: string) => tok.encode(s);
    // The template (no chat_template.jinja in the folder: the Gemma 4 default).
    const ids = g.encodePrompt([
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'Hi' },
    ]);
    expect(ids).toEqual([
      G4.bos,
      G4.turn,
      ...enc('system'),
      G4.nl,
      ...enc('Be brief.'),
      G4.endTurn,
      G4.nl,
      G4.turn,
      ...enc('user'),
      G4.nl,
      ...enc('Hi'),
      G4.endTurn,
      G4.nl,
      G4.turn,
      ...enc('model'),
      G4.nl,
    ]);

    // An image part: "\n\n<|image|>\n\n" expanded by the processor rule, 63 soft tokens for this 520×390 PNG at budget 70.
    const png = new Uint8Array(readFileSync(join(GOLDEN, 'gemma4', 'multimodal', 'image.png')));
    const chat = g.chat();
    const r1 = await chat.send(
      [
        { type: 'image', image: png },
        { type: 'text', text: 'What is it?' },
      ],
      { maxTokens: 4, temperature: 0 },
    );
    const mm = g.encodePrompt(
      [{ role: 'user', content: [{ type: 'image' }, { type: 'text', text: 'What is it?' }] }],
      await g.media!.prepare([{ kind: 'image', image: png }]),
    );
    const boi = mm.indexOf(G4.boi);
    expect(mm.slice(boi, boi + 65)).toEqual([G4.boi, ...Array(63).fill(G4.image), G4.eoi]);
    expect(tok.decode(mm.slice(0, boi), { skipSpecial: false })).toBe('<bos><|turn>user\n\n\n');
    expect(tok.decode(mm.slice(boi + 65), { skipSpecial: false })).toBe('\n\nWhat is it?<turn|>\n<|turn>model\n');
    // The reply is the decoder's own greedy continuation of that prompt (the merge is golden-tested).
    expect(r1.metrics.promptTokens).toBe(mm.length);
    expect(r1.ids.length).toBeGreaterThan(0);

    // A text-only second chat: the second turn reuses the first turn's cache.
    const text = g.chat('Be brief.');
    const a = await text.send('Hi', { maxTokens: 6, temperature: 0 });
    const b = await text.send('More', { maxTokens: 6, temperature: 0 });
    expect(b.metrics.prefillTokens).toBeLessThan(b.metrics.promptTokens);
    const full = g.encodePrompt(text.messages.slice(0, 4));
    expect(b.metrics.promptTokens).toBe(full.length);
    const fresh = await greedyGenerate(g.model, full, b.ids.length);
    expect(b.ids).toEqual(fresh.slice(0, b.ids.length));
    // Generation stops at <turn|> (kept in ids, not in the text), or runs to maxTokens.
    for (const r of [a, b]) {
      if (r.metrics.stopReason === 'stop_token') expect([G4.eos, G4.endTurn]).toContain(r.ids[r.ids.length - 1]);
      else expect(r.ids).toHaveLength(6);
    }
    await g.dispose();
  });
});
