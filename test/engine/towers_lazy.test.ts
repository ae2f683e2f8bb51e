/**
 * Towers load only when a request needs them and can be released; an audio request through
 * the engine API (raw ids + input features) runs the audio tower and merges its soft tokens.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Gemma3n } from '../../src/engine/engine.js';
import { GOLDEN, goldenFolder, openSafetensors } from '../helpers.js';

describe('lazily loaded towers', () => {
  it('loads the audio tower on first audio request and releases it on demand', async () => {
    const g3n = await Gemma3n.load(goldenFolder('multimodal'));
    expect(g3n.supportsAudio).toBe(true);
    expect(g3n.supportsImages).toBe(false); // the golden folder ships no vision tower weights
    expect(g3n.towers!.loaded).toEqual({ vision: false, audio: false });

    // Text-only ids: no tower is touched.
    await g3n.generate({ ids: [2, 105, 300, 107] }, { maxTokens: 2, temperature: 0 });
    expect(g3n.towers!.loaded.audio).toBe(false);

    const golden = await openSafetensors(join(GOLDEN, 'multimodal', 'golden.safetensors'));
    const features = await golden.readF32('input_features');
    const mask = Uint8Array.from(await golden.readF32('input_features_mask'));
    // <boa> + 20 audio soft tokens + <eoa>, as the processor lays them out.
    const ids = [2, 105, 300, 107, 108, 511, ...Array(20).fill(529), 528, 108, 106, 107, 105, 4368 % 500, 107];
    const withAudio = await g3n.generate(
      { ids, media: [{ kind: 'audio', features: { features, mask, batch: 1, frames: mask.length, featureSize: 128 } }] },
      { maxTokens: 3, temperature: 0 },
    );
    expect(withAudio.ids.length).toBe(3);
    expect(g3n.towers!.loaded.audio).toBe(true);
    g3n.releaseTowers();
    expect(g3n.towers!.loaded.audio).toBe(false);
    await expect(g3n.generate({ ids: [2, 513, 3], media: [{ kind: 'image', pixelValues: new Float32Array(3) }] }, { maxTokens: 1 })).rejects.toThrow(
      /no vision tower/,
    );
    // Wrong number of audio tokens for the clip: a clear error, not a silent misplacement.
    await expect(
      g3n.generate(
        { ids: [2, 529, 529, 3], media: [{ kind: 'audio', features: { features, mask, batch: 1, frames: mask.length, featureSize: 128 } }] },
        { maxTokens: 1 },
      ),
    ).rejects.toThrow(/2 audio token\(s\) \(id 529\) in the ids but 20 audio soft embeddings/);
    await g3n.dispose();
  });
});
