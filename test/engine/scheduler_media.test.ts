/**
 * A media request does not stall the batch: the towers yield to the event loop between blocks
 * (src/engine/towers.ts), so the scheduler's decode steps for other requests run while an audio
 * clip is encoded, and both answers equal the same requests served alone.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Gemma3n } from '../../src/engine/engine.js';
import type { AudioFeatures } from '../../src/encoders/audio/index.js';
import { GOLDEN, goldenFolder, openSafetensors } from '../helpers.js';

describe('media requests under the scheduler', () => {
  it('a text stream keeps decoding while another request runs the audio tower; both answers equal running alone', async () => {
    const g3n = await Gemma3n.load(goldenFolder('multimodal'));
    const golden = await openSafetensors(join(GOLDEN, 'multimodal', 'golden.safetensors'));
    const mask = Uint8Array.from(await golden.readF32('input_features_mask'));
    const features: AudioFeatures = { features: await golden.readF32('input_features'), mask, batch: 1, frames: mask.length, featureSize: 128 };
    const audioIds = [2, 105, 300, 107, 108, 511, ...Array(20).fill(529), 528, 108, 106, 107, 105, 68, 107];
    const textIds = [2, 105, 300, 107, 108, 400, 401, 106, 107, 105];
    const opts = { temperature: 0 };
    const soloAudio = await g3n.generate({ ids: audioIds, media: [{ kind: 'audio', features }] }, { ...opts, maxTokens: 3 });
    const soloText = await g3n.generate({ ids: textIds }, { ...opts, maxTokens: 40 });

    // Time the tower's conformer blocks inside the batched run: first block's start to last block's end.
    const blocks = (await g3n.towers!.audio()).encoder.conformer;
    const window = { from: 0, to: 0 };
    const first = blocks[0].forward.bind(blocks[0]),
      last = blocks[blocks.length - 1].forward.bind(blocks[blocks.length - 1]);
    blocks[0].forward = (...a) => {
      window.from = performance.now();
      return first(...a);
    };
    blocks[blocks.length - 1].forward = (...a) => {
      const r = last(...a);
      window.to = performance.now();
      return r;
    };

    const sched = g3n.useScheduler({ parallel: 4 });
    // The text request at the token level (its pieces of text come irregularly).
    const textTimes: number[] = [],
      textOut: number[] = [];
    const text = (async () => {
      for await (const id of sched.generate(textIds, { ...opts, maxTokens: 40 })) {
        textOut.push(id);
        textTimes.push(performance.now());
      }
    })();
    // The text request is decoding before the audio one arrives.
    while (textTimes.length < 2) await new Promise((r) => setTimeout(r, 0));
    const withAudio = await g3n.generate({ ids: audioIds, media: [{ kind: 'audio', features }] }, { ...opts, maxTokens: 3 });
    await text;

    expect(withAudio.ids).toEqual(soloAudio.ids);
    expect(textOut).toEqual(soloText.ids);
    expect(textOut.length).toBe(40);
    expect(window.to).toBeGreaterThan(window.from);
    expect(blocks.length).toBeGreaterThanOrEqual(2);
    // Decode steps of the text stream ran between the tower's blocks (a tower run in one piece leaves none).
    const during = textTimes.filter((t) => t > window.from && t < window.to).length;
    expect(during).toBeGreaterThanOrEqual(1);
    await g3n.dispose();
  });
});
