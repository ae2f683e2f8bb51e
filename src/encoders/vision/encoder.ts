/**
 * MobileNetV5Encoder: the Gemma 3n vision tower [timm/models/mobilenetv5.py MobileNetV5Encoder,
 * `forward_features`; weights at `model.vision_tower.timm_model.*`].
 *
 *   pixels [768², 3] → conv_stem (3×3 s2 + bias, RmsNorm2d, GELU)        [384², 64]
 *   → blocks.0 EdgeResidual ×3                                           [192², 128]
 *   → blocks.1 UIR ×5                                                    [96², 256]
 *   → blocks.2 UIR ×9, (MQA, FFN-UIR) ×14                                [48², 640]
 *   → blocks.3 UIR, (MQA, FFN-UIR) ×19                                   [24², 1280]
 *   → msfa(stage 2, stage 3)                                             [16², 2048]
 * The 16×16 grid flattened row-major is the 256 soft tokens.
 */
import type { Kernels } from '../../kernels/kernels.js';
import type { Tracer } from '../../model/trace.js';
import { decodeBlock, GEMMA3N_VISION, makeDivisible, type EncoderConfig } from './arch.js';
import { EdgeResidual } from './edge_residual.js';
import { MobileAttention } from './mobile_attention.js';
import { MultiScaleFusionAdapter } from './msfa.js';
import { ConvNormAct } from './norm_act.js';
import { emptyPool, recycle, type FeatureMap, type TensorReader } from './tensor.js';
import { UniversalInvertedResidual } from './universal_inverted_residual.js';

type Block = EdgeResidual | UniversalInvertedResidual | MobileAttention;

/**
 * The trace hook (src/model/trace.ts), called with named intermediates: `stem`, `blocks.S.J`,
 * `stageS`, `msfa.concat`, `msfa.ffn`, `msfa.pooled`, `features` (the names of the golden
 * summaries), each a channels-last map, shape [H, W, C]. Data are live buffers: copy what you keep.
 */
export type EncoderTrace = Tracer;

export class MobileNetV5Encoder {
  private constructor(
    readonly config: EncoderConfig,
    private readonly stem: ConvNormAct,
    private readonly stages: readonly (readonly Block[])[],
    private readonly msfa: MultiScaleFusionAdapter,
    /** Feature indices (0 = stem, s + 1 = stage s) the MSFA takes. */
    readonly msfaFeatureIndices: readonly number[],
  ) {}

  /** Loads from names `conv_stem.*`, `blocks.S.J.*`, `msfa.*` (use `prefixed` for a checkpoint). */
  static async load(r: TensorReader, kernels: Kernels, config: EncoderConfig = GEMMA3N_VISION): Promise<MobileNetV5Encoder> {
    const stem = await ConvNormAct.load(r, 'conv_stem.', kernels, { kind: 'full', inChs: 3, outChs: config.stemSize, kernel: 3, stride: 2, act: true, bias: true });
    const featureChs = [config.stemSize];
    let chs = config.stemSize;
    const stages: Block[][] = [];
    for (const [s, stageDef] of config.archDef.entries()) {
      const blocks: Block[] = [];
      for (const args of stageDef.flatMap((b) => decodeBlock(b, config.layerScale))) {
        const prefix = `blocks.${s}.${blocks.length}.`;
        const outChs = makeDivisible(args.outChs);
        const a = { ...args, outChs };
        if (a.type === 'er') blocks.push(await EdgeResidual.load(r, prefix, chs, a, kernels));
        else if (a.type === 'uir') blocks.push(await UniversalInvertedResidual.load(r, prefix, chs, a, kernels, { layerScale: config.layerScale }));
        else blocks.push(await MobileAttention.load(r, prefix, chs, a, kernels));
        chs = outChs;
      }
      stages.push(blocks);
      featureChs.push(chs);
    }
    const n = featureChs.length;
    const idx = config.msfaIndices.map((i) => (i < 0 ? n + i : i));
    if (idx.some((i) => i < 0 || i >= n)) throw new Error(`msfa indices ${config.msfaIndices} out of range for ${n} feature maps`);
    const inChs = idx.reduce((sum, i) => sum + featureChs[i], 0);
    const msfa = await MultiScaleFusionAdapter.load(r, 'msfa.', inChs, config.numFeatures, config.msfaOutputResolution, config.msfaExpansion, kernels);
    return new MobileNetV5Encoder(config, stem, stages, msfa, idx);
  }

  /** `forward_features`: pixel map [H, W, 3] → [res, res, numFeatures]. */
  forward(pixels: FeatureMap, trace?: EncoderTrace): FeatureMap {
    const steps = this.steps(pixels, trace);
    for (;;) {
      const r = steps.next();
      if (r.done) return r.value;
    }
  }

  /**
   * The same, giving the event loop a turn after every block (a 768² image takes seconds to
   * minutes): keeps a browser page or a test runner responsive.
   */
  async forwardAsync(pixels: FeatureMap, trace?: EncoderTrace): Promise<FeatureMap> {
    const steps = this.steps(pixels, trace);
    for (;;) {
      const r = steps.next();
      if (r.done) return r.value;
      await new Promise((resolve) => setTimeout(resolve, 0));
    }
  }

  /** Frees every kernel weight of the tower (it cannot run afterwards). */
  release(): void {
    this.stem.release();
    for (const blocks of this.stages) for (const b of blocks) b.release();
    this.msfa.release();
  }

  /** The forward pass as a generator that pauses after each block. */
  private *steps(pixels: FeatureMap, trace?: EncoderTrace): Generator<void, FeatureMap> {
    if (pixels.c !== 3) throw new Error(`vision encoder: input has ${pixels.c} channels, expected 3 (RGB)`);
    const feats: FeatureMap[] = [];
    const emit = trace && ((name: string, m: FeatureMap) => trace(name, m.data, [m.h, m.w, m.c]));
    let x = this.stem.forward(pixels); // conv_stem
    emit?.('stem', x);
    if (this.msfaFeatureIndices.includes(0)) feats.push(x);
    for (const [s, blocks] of this.stages.entries()) {
      for (const [j, block] of blocks.entries()) {
        yield;
        const input = x;
        x = block.forward(x);
        if (input !== pixels && !feats.includes(input)) recycle(input); // its buffer serves a later map
        emit?.(`blocks.${s}.${j}`, x);
      }
      emit?.(`stage${s}`, x);
      if (this.msfaFeatureIndices.includes(s + 1)) feats.push(x); // stage 2 and 3 for Gemma 3n
    }
    yield;
    const out = this.msfa.forward(feats, emit && ((name, m) => emit(`msfa.${name}`, m)));
    emit?.('features', out);
    emptyPool();
    return out;
  }
}
