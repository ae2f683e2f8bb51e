/** A multimodal prompt whose placeholders do not match its media is refused before any tower runs. */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Gemma3n } from '../../src/engine/engine.js';
import { checkPlaceholders } from '../../src/engine/placeholders.js';
import { GOLDEN, goldenFolder, openSafetensors } from '../helpers.js';

const SPEC = { imageTokenId: 262_145, audioTokenId: 262_273, imageTokens: 256, audioTokens: 188 };
const image = { kind: 'image' as const, pixelValues: new Float32Array(3) };
const audio = { kind: 'audio' as const, audio: new Float32Array(16) };

describe('placeholders vs media', () => {
  it('counts each kind against media × tokens per item', () => {
    const ids = [2, 255_999, ...Array(256).fill(262_145), 262_144, 256_000, ...Array(188).fill(262_273), 262_272];
    expect(() => checkPlaceholders(ids, [image, audio], SPEC)).not.toThrow();
    expect(() => checkPlaceholders([2, 3], [], SPEC)).not.toThrow();
    // The case: the tokenizer lacked <image_soft_token>, so no placeholder id is there.
    expect(() => checkPlaceholders([2, 255_999, 4, 5, 262_144], [image], SPEC)).toThrow(
      /0 image token\(s\) \(id 262145\) in the ids but 256 image soft embeddings are needed for 1 image\(s\).*does the tokenizer know.*no tower was run/,
    );
    expect(() => checkPlaceholders(ids, [image, image, audio], SPEC)).toThrow(/256 image token\(s\) .* but 512 image soft embeddings/);
    expect(() => checkPlaceholders(ids, [image], SPEC)).toThrow(/188 audio token\(s\) \(id 262273\) in the ids but 0 audio soft embeddings/);
  });

  it('the engine refuses the prompt without loading or running the tower', async () => {
    const g3n = await Gemma3n.load(goldenFolder('multimodal'));
    const golden = await openSafetensors(join(GOLDEN, 'multimodal', 'golden.safetensors'));
    const features = await golden.readF32('input_features');
    const mask = Uint8Array.from(await golden.readF32('input_features_mask'));
    const clip = { kind: 'audio' as const, features: { features, mask, batch: 1, frames: mask.length, featureSize: 128 } };
    await expect(g3n.generate({ ids: [2, 511, 529, 529, 528], media: [clip] }, { maxTokens: 1 })).rejects.toThrow(
      /2 audio token\(s\) \(id 529\) in the ids but 20 audio soft embeddings.*no tower was run/,
    );
    expect(g3n.towers!.loaded.audio).toBe(false);
    await g3n.dispose();
  });
});
