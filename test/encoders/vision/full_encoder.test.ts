/**
 * The whole mobilenetv5_300m_enc at 768×768 with the golden README's formula weights, against
 * full/features.safetensors (atol 5e-5, README) and the per-block summaries.
 *
 * ~435 G multiply-adds: ≈ 40 s on the WASM kernels, minutes in plain TypeScript. So by default it
 * runs on WasmKernels when build/*.wasm exists (`npm test` builds it) and is skipped otherwise;
 * VISION_FULL=0 skips it, VISION_FULL=1 forces it, VISION_KERNELS=ts|wasm picks the kernels.
 * The default suite runs the stem at full size against the summaries, and the MSFA at full size
 * from the golden stage-2/3 maps (msfa_inputs.safetensors) against the golden features.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BlockedTsKernels } from '../../../src/encoders/vision/blocked_kernels.js';
import { MobileNetV5Encoder } from '../../../src/encoders/vision/encoder.js';
import { formulaTensor, formulaWeights } from '../../../src/encoders/vision/formula_weights.js';
import { MultiScaleFusionAdapter } from '../../../src/encoders/vision/msfa.js';
import { ConvNormAct } from '../../../src/encoders/vision/norm_act.js';
import { fromCHW, toCHW } from '../../../src/encoders/vision/tensor.js';
import { GOLDEN, openGolden } from './helpers.js';
import { maxAbsDiff } from '../../helpers.js';

const kernels = new BlockedTsKernels();
const ATOL = 5e-5; // README: full model atol 5e-5 (f32 vs f64 4.1e-6); never loosen past ~1e-4

interface Summary { shape: number[]; mean: number; std: number; first16: number[]; sample_idx: number[]; sample16: number[] }
const summaries = JSON.parse(readFileSync(join(GOLDEN, 'full/summaries.json'), 'utf8')) as {
  summaries: Record<string, Summary>;
  weight_selfcheck: Record<string, { shape: number[]; first8: number[]; sum: number }>;
};

/** Max abs error of an NCHW tensor against a golden summary's first16/sample16. */
function summaryError(chw: Float32Array, s: Summary): number {
  let m = 0;
  for (let k = 0; k < 16; k++) {
    m = Math.max(m, Math.abs(chw[k] - s.first16[k]), Math.abs(chw[s.sample_idx[k]] - s.sample16[k]));
  }
  let sum = 0;
  for (const v of chw) sum += v;
  return Math.max(m, Math.abs(sum / chw.length - s.mean));
}

async function pixels() {
  const pv = await (await openGolden('full/pixel_values.safetensors')).readF32('pixel_values');
  return fromCHW(pv, 3, 768, 768);
}

describe('vision: formula weights', () => {
  it('reproduce the README self-check values', () => {
    for (const [name, c] of Object.entries(summaries.weight_selfcheck)) {
      if (c.shape.reduce((a, b) => a * b, 1) > 1e6) continue; // the 7.4 M msfa weight: sum only checked when VISION_FULL
      const t = formulaTensor(name, c.shape);
      expect([...t.subarray(0, 8)], name).toEqual(c.first8);
      let sum = 0;
      for (const v of t) sum += v;
      expect(sum, name).toBeCloseTo(c.sum, 6);
    }
  });
});

describe('vision: full-size pieces (default suite)', () => {
  it('conv_stem on the golden pixel_values matches the stem summary', async () => {
    const stem = await ConvNormAct.load(formulaWeights(), 'conv_stem.', kernels, { kind: 'full', inChs: 3, outChs: 64, kernel: 3, stride: 2, act: true, bias: true });
    const y = stem.forward(await pixels());
    expect([y.c, y.h, y.w]).toEqual(summaries.summaries.stem.shape.slice(1));
    expect(summaryError(toCHW(y), summaries.summaries.stem)).toBeLessThan(ATOL);
  });

  it('msfa at full size: golden stage 2/3 maps → golden features', async () => {
    const st = await openGolden('full/msfa_inputs.safetensors');
    const s2 = fromCHW(await st.readF32('stage2'), 640, 48, 48);
    const s3 = fromCHW(await st.readF32('stage3'), 1280, 24, 24);
    const msfa = await MultiScaleFusionAdapter.load(formulaWeights(), 'msfa.', 1920, 2048, 16, 2, kernels);
    const y = toCHW(msfa.forward([s2, s3]));
    const want = await (await openGolden('full/features.safetensors')).readF32('features_nchw');
    const err = maxAbsDiff(y, want);
    if (process.env.VISION_REPORT) console.log(`msfa full-size max abs diff ${err.toExponential(2)}`);
    expect(err).toBeLessThan(ATOL);
  }, 300_000);
});

const HAVE_WASM = existsSync(join(GOLDEN, '../../../build/kernels_simd.wasm'));
const FULL_KERNELS = process.env.VISION_KERNELS ?? (HAVE_WASM ? 'wasm' : 'ts');
const RUN_FULL = process.env.VISION_FULL === '1' || (process.env.VISION_FULL !== '0' && FULL_KERNELS === 'wasm');

describe.runIf(RUN_FULL)(`vision: whole encoder at 768×768 (${FULL_KERNELS} kernels)`, () => {
  it('features and every traced intermediate match the golden', async () => {
    const k = FULL_KERNELS === 'wasm' ? await (await import('../../../src/node/wasm_host.js')).createNodeWasmKernels({}) : kernels;
    const enc = await MobileNetV5Encoder.load(formulaWeights(), k);
    const errors: string[] = [];
    let worst = 0;
    const y = await enc.forwardAsync(await pixels(), (name, data, [h, w, c]) => {
      const s = summaries.summaries[name];
      if (!s) return;
      const e = summaryError(toCHW({ h, w, c, data }), s);
      worst = Math.max(worst, e);
      if (process.env.VISION_REPORT) console.log(`${name}: summary max abs diff ${e.toExponential(2)}`);
      if (!(e < ATOL)) errors.push(`${name}: ${e}`);
    });
    const feats = await openGolden('full/features.safetensors');
    const got = toCHW(y);
    const err = maxAbsDiff(got, await feats.readF32('features_nchw'));
    const f64Path = join(GOLDEN, 'full/features_f64.safetensors');
    if (process.env.VISION_REPORT) console.log(`features max abs diff vs f32 golden ${err.toExponential(2)}`);
    if (existsSync(f64Path)) {
      const e64 = maxAbsDiff(got, await (await openGolden('full/features_f64.safetensors')).readF32('features_nchw'));
      if (process.env.VISION_REPORT) console.log(`features max abs diff vs f64 golden ${e64.toExponential(2)}`);
      expect(e64).toBeLessThan(ATOL);
    }
    expect(errors).toEqual([]);
    expect(err).toBeLessThan(ATOL);
  }, 3_600_000);
});
