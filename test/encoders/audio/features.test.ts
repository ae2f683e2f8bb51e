import { describe, it, expect } from 'vitest';
import { FeatureExtractor, hannWindow } from '../../../src/encoders/audio/feature_extractor.js';
import { Fft } from '../../../src/encoders/audio/fft.js';
import { loadGolden, get } from './golden.js';
import { maxAbsDiff } from '../../helpers.js';

const g = await loadGolden('features/features.safetensors');
const fe = new FeatureExtractor();
const NAMES = ['chirp_1p0s', 'twotone_2p37s', 'int16range_0p73s'];
const f32 = (t: { data: Float64Array }) => Float32Array.from(t.data);

describe('FFT', () => {
  it('matches a direct DFT', () => {
    const n = 64, fft = new Fft(n);
    const x = Array.from({ length: n }, (_, i) => Math.sin(i * 0.7) + 0.3 * Math.cos(i * 2.1) + (i % 5) * 0.01);
    const re = Float64Array.from(x), im = new Float64Array(n);
    fft.transform(re, im);
    for (let k = 0; k < n; k++) {
      let sr = 0, si = 0;
      for (let j = 0; j < n; j++) { sr += x[j] * Math.cos((2 * Math.PI * j * k) / n); si -= x[j] * Math.sin((2 * Math.PI * j * k) / n); }
      expect(Math.abs(re[k] - sr)).toBeLessThan(1e-12);
      expect(Math.abs(im[k] - si)).toBeLessThan(1e-12);
    }
  });
  it('rejects sizes that are not powers of two', () => {
    expect(() => new Fft(1000)).toThrow(/power of two/);
  });
});

describe('feature extractor vs golden', () => {
  it('window and mel bank match aux tensors', () => {
    expect(maxAbsDiff(hannWindow(512), get(g, 'aux.window').data)).toBeLessThan(1e-7);
    const mel = get(g, 'aux.mel_filters');
    expect(mel.shape).toEqual([513, 128]);
    expect(maxAbsDiff(fe.melFilters, mel.data)).toBeLessThan(1e-12);
  });

  for (const name of NAMES) {
    it(`single clip ${name}`, () => {
      const out = fe.extract([f32(get(g, `${name}.waveform`))]);
      const want = get(g, `${name}.input_features`);
      expect([out.batch, out.frames, out.featureSize]).toEqual(want.shape);
      const err = maxAbsDiff(out.features, want.data);
      expect(err).toBeLessThan(1e-3); // README: atol 1e-3 with the float32 window
      expect(Array.from(out.mask)).toEqual(Array.from(get(g, `${name}.input_features_mask`).data));
    });
  }

  it('int16 samples widen to the same waveform', () => {
    const a = get(g, 'int16range_0p73s.waveform_int16').data, b = get(g, 'int16range_0p73s.waveform').data;
    expect(maxAbsDiff(a, b)).toBe(0);
  });

  it('batch of three pads to the longest and masks by sub-sampled sample mask', () => {
    const out = fe.extract(NAMES.map((n) => f32(get(g, `${n}.waveform`))));
    const want = get(g, 'batch.input_features');
    expect([out.batch, out.frames, out.featureSize]).toEqual(want.shape);
    expect(maxAbsDiff(out.features, want.data)).toBeLessThan(1e-3);
    const mask = get(g, 'batch.input_features_mask');
    expect(Array.from(out.mask)).toEqual(Array.from(mask.data));
    const valid = [0, 1, 2].map((b) => out.mask.subarray(b * out.frames, (b + 1) * out.frames).reduce((s, v) => s + v, 0));
    expect(valid).toEqual([100, 235, 73]);
  });

  it('digital silence hits the log floor exactly', () => {
    const out = fe.extract([new Float32Array(4000)]);
    for (const v of out.features) expect(v).toBe(Math.fround(Math.log(1e-5)));
  });
});
