import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { decodeImage } from '../../../src/encoders/vision/image_decode.js';
import { axisWeights, preprocessRgb, resizeToModelInput } from '../../../src/encoders/vision/preprocess.js';
import { GOLDEN, goldenBytes, openGolden } from './helpers.js';

interface ImageMeta { width: number; height: number; mode: string; stored_tensor?: string; resized_u8_sha256: string; resized_u8_sum: number; pixel_values_f64sum: number; pixel_values_sample_idx: number[]; pixel_values_sample16: number[] }
const meta = JSON.parse(readFileSync(join(GOLDEN, 'preprocess/meta.json'), 'utf8')) as { images: Record<string, ImageMeta> };

describe('vision preprocessing (torchvision native uint8 antialiased bilinear, bit-exact)', () => {
  for (const [name, m] of Object.entries(meta.images)) {
    it(`${name}: resized_u8 and pixel_values match the processor`, async () => {
      const img = decodeImage(goldenBytes(`preprocess/${name}.png`), {}, name);
      expect([img.width, img.height]).toEqual([m.width, m.height]);
      const u8 = resizeToModelInput(img);
      expect(u8.length).toBe(3 * 768 * 768);
      if (m.stored_tensor) {
        const st = await openGolden('preprocess/preprocess.safetensors');
        const want = await st.readBytes(m.stored_tensor);
        let diff = 0;
        for (let i = 0; i < want.length; i++) if (want[i] !== u8[i]) diff++;
        expect(diff).toBe(0);
      }
      expect(createHash('sha256').update(u8).digest('hex')).toBe(m.resized_u8_sha256);
      const pv = preprocessRgb(img);
      let sum = 0;
      for (let i = 0; i < pv.length; i++) sum += pv[i];
      expect(sum).toBeCloseTo(m.pixel_values_f64sum, 6);
      expect(m.pixel_values_sample_idx.map((i) => pv[i])).toEqual(m.pixel_values_sample16);
    });
  }

  it('full/image.png preprocesses to full/pixel_values.safetensors bit for bit', async () => {
    const pv = preprocessRgb(decodeImage(goldenBytes('full/image.png')));
    const want = await (await openGolden('full/pixel_values.safetensors')).readF32('pixel_values');
    expect(want.length).toBe(pv.length);
    let diff = 0;
    for (let i = 0; i < pv.length; i++) if (pv[i] !== want[i]) diff++;
    expect(diff).toBe(0);
  });

  it('axis weights: downscale quantised weights sum to 2^precision within rounding', () => {
    const w = axisWeights(1000, 768);
    for (let i = 0; i < 768; i++) {
      let s = 0;
      for (let j = 0; j < w.xsize[i]; j++) s += w.w16[i * w.ksize + j];
      expect(Math.abs(s - 2 ** w.precision)).toBeLessThanOrEqual(w.xsize[i]);
    }
  });
});
