/**
 * Every block case of the vision golden (timm modules with seeded weights, run in float32 and
 * float64 by the reference): our float32 output must be within atol 1e-5 of both.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { decodeBlock, type EncoderConfig } from '../../../src/encoders/vision/arch.js';
import { EdgeResidual } from '../../../src/encoders/vision/edge_residual.js';
import { MobileNetV5Encoder } from '../../../src/encoders/vision/encoder.js';
import { MobileAttention } from '../../../src/encoders/vision/mobile_attention.js';
import { MultiScaleFusionAdapter } from '../../../src/encoders/vision/msfa.js';
import { ConvNormAct } from '../../../src/encoders/vision/norm_act.js';
import { fromCHW, toCHW, type FeatureMap } from '../../../src/encoders/vision/tensor.js';
import { UniversalInvertedResidual } from '../../../src/encoders/vision/universal_inverted_residual.js';
import { TsKernels } from '../../../src/kernels/ts_kernels.js';
import { GOLDEN, openGolden, stReader } from './helpers.js';
import { maxAbsDiff } from '../../helpers.js';

const kernels = new TsKernels();
const ATOL = 1e-5; // golden README: blocks atol 1e-5 (f32 vs f64 observed ≤ 2e-6)

interface Meta { constructor_args: Record<string, unknown>; input_shapes: number[][]; output_shape: number[] }
const meta = (c: string): Meta => JSON.parse(readFileSync(join(GOLDEN, 'blocks', c, 'meta.json'), 'utf8')) as Meta;

async function io(c: string) {
  const st = await openGolden(`blocks/${c}/io.safetensors`);
  const m = meta(c);
  const inputs: FeatureMap[] = [];
  for (const [i, shape] of m.input_shapes.entries()) {
    const name = m.input_shapes.length === 1 ? 'input' : `input.${i}`;
    const [, C, H, W] = shape;
    inputs.push(fromCHW(await st.readF32(name), C, H, W));
  }
  return { st, inputs, m, output: await st.readF32('output'), outputF64: await st.readF32('output_f64') };
}

function expectClose(got: FeatureMap, want: Float32Array, wantF64: Float32Array, shape: number[]): void {
  expect([1, got.c, got.h, got.w]).toEqual(shape);
  const g = toCHW(got);
  if (process.env.VISION_REPORT) console.log(`max abs diff vs f32 ${maxAbsDiff(g, want).toExponential(2)}, vs f64 ${maxAbsDiff(g, wantF64).toExponential(2)}`);
  expect(maxAbsDiff(g, want)).toBeLessThan(ATOL);
  expect(maxAbsDiff(g, wantF64)).toBeLessThan(ATOL);
}

const uirCase = (c: string, dwStart: number, dwMid: number, stride: number, e: number) => it(c, async () => {
  const { st, inputs, m, output, outputF64 } = await io(c);
  const x = inputs[0];
  const block = await UniversalInvertedResidual.load(stReader(await openGolden(`blocks/${c}/weights.safetensors`)), '', x.c,
    { type: 'uir', dwStart, dwMid, stride, expRatio: e, outChs: m.output_shape[1] }, kernels);
  expectClose(block.forward(x), output, outputF64, m.output_shape);
  void st;
});

describe('vision blocks vs timm goldens (atol 1e-5)', () => {
  it('stem (ConvNormAct 3×3 s2 SAME + bias)', async () => {
    const { inputs, m, output, outputF64 } = await io('stem');
    const stem = await ConvNormAct.load(stReader(await openGolden('blocks/stem/weights.safetensors')), '', kernels,
      { kind: 'full', inChs: 3, outChs: 16, kernel: 3, stride: 2, act: true, bias: true });
    expectClose(stem.forward(inputs[0]), output, outputF64, m.output_shape);
  });

  for (const [c, stride, inChs] of [['er_k3_s1_e4', 1, 24], ['er_k3_s2_e4', 2, 16]] as const) {
    it(c, async () => {
      const { inputs, m, output, outputF64 } = await io(c);
      const block = await EdgeResidual.load(stReader(await openGolden(`blocks/${c}/weights.safetensors`)), '', inChs,
        { type: 'er', expKernel: 3, stride, expRatio: 4, outChs: m.output_shape[1] }, kernels);
      expectClose(block.forward(inputs[0]), output, outputF64, m.output_shape);
    });
  }

  uirCase('uir_a0_k0_s1_e1', 0, 0, 1, 1);
  uirCase('uir_a0_k0_s1_e2', 0, 0, 1, 2);
  uirCase('uir_a3_k0_s1_e4', 3, 0, 1, 4);
  uirCase('uir_a3_k5_s2_e6', 3, 5, 2, 6);
  uirCase('uir_a5_k0_s1_e4', 5, 0, 1, 4);
  uirCase('uir_a5_k5_s2_e6', 5, 5, 2, 6);

  for (const c of ['mqa_h3_d16_kv2', 'mqa_h4_d16_kv1']) {
    it(c, async () => {
      const { inputs, m, output, outputF64 } = await io(c);
      const a = m.constructor_args as { in_chs: number; num_heads: number; key_dim: number; value_dim: number; kv_stride: number; dw_kernel_size: number };
      const block = await MobileAttention.load(stReader(await openGolden(`blocks/${c}/weights.safetensors`)), '', a.in_chs,
        { type: 'mqa', numHeads: a.num_heads, keyDim: a.key_dim, valueDim: a.value_dim, kvStride: a.kv_stride, dwKernel: a.dw_kernel_size, stride: 1, outChs: a.in_chs, layerScale: true }, kernels);
      const y = block.forward(inputs[0]);
      expectClose(y, output, outputF64, m.output_shape);
      // The residual dominates: hold the branch alone too.
      const branch = toCHW(y).map((v, i) => v - toCHW(inputs[0])[i]);
      const want = output.map((v, i) => v - toCHW(inputs[0])[i]);
      expect(maxAbsDiff(branch, want)).toBeLessThan(ATOL);
    });
  }

  it('msfa (nearest upsample + concat + FFN + avg-pool + norm)', async () => {
    const { inputs, m, output, outputF64 } = await io('msfa');
    const msfa = await MultiScaleFusionAdapter.load(stReader(await openGolden('blocks/msfa/weights.safetensors')), '', 64, 32, 4, 2, kernels);
    expectClose(msfa.forward(inputs), output, outputF64, m.output_shape);
  });

  it('mini_encoder (whole MobileNetV5Encoder, every intermediate)', async () => {
    const { st, inputs, m, output, outputF64 } = await io('mini_encoder');
    const config: EncoderConfig = {
      archDef: [['er_r1_k3_s2_e4_c16', 'er_r1_k3_s1_e4_c16'], ['uir_r1_a3_k5_s2_e6_c24', 'uir_r1_a5_k0_s1_e4_c24', 'uir_r1_a3_k0_s1_e4_c24'],
        ['uir_r1_a5_k5_s2_e6_c32', 'uir_r1_a0_k0_s1_e1_c32', 'mqa_r1_k3_h2_v2_s1_d8_c32', 'uir_r1_a0_k0_s1_e2_c32'],
        ['uir_r1_a5_k5_s2_e6_c48', 'mqa_r1_k3_h2_s1_d12_c48', 'uir_r1_a0_k0_s1_e2_c48']],
      stemSize: 8, msfaIndices: [-2, -1], msfaOutputResolution: 2, numFeatures: 2048, msfaExpansion: 2, layerScale: true,
    };
    expect(decodeBlock('mqa_r1_k3_h2_v2_s1_d8_c32', true)[0]).toMatchObject({ numHeads: 2, kvStride: 2, keyDim: 8 });
    const enc = await MobileNetV5Encoder.load(stReader(await openGolden('blocks/mini_encoder/weights.safetensors')), kernels, config);
    const seen = new Map<string, Float32Array>();
    const y = enc.forward(inputs[0], (name, data, [h, w, c]) => seen.set(name, toCHW({ h, w, c, data })));
    for (const name of ['stem', 'stage0', 'stage1', 'stage2', 'stage3', 'msfa.concat', 'msfa.ffn', 'msfa.pooled']) {
      const want = await st.readF32(`intermediate.${name}`);
      expect(maxAbsDiff(seen.get(name)!, want), name).toBeLessThan(ATOL);
    }
    expectClose(y, output, outputF64, m.output_shape);
  });
});
