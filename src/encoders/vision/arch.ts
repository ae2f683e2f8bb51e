/**
 * The MobileNet-V5 architecture definition: timm's block strings for `mobilenetv5_300m_enc`
 * (the Gemma 3n vision tower) and a decoder for that notation
 * [timm/models/mobilenetv5.py _gen_mobilenet_v5, timm/models/_efficientnet_builder.py _decode_block_str].
 *
 * Notation: `<type>_r<repeat>_k<kernel>_s<stride>_e<expansion>_c<out channels>`, plus for
 * `uir` `a<dw_start kernel>` (k = dw_mid kernel, 0 = absent) and for `mqa` `h<heads>`,
 * `v<kv stride>`, `d<key_dim = value_dim>` (k = the K/V down-sampling depthwise kernel).
 */

export interface EdgeResidualArgs { readonly type: 'er'; readonly expKernel: number; readonly stride: number; readonly expRatio: number; readonly outChs: number }
export interface UirArgs { readonly type: 'uir'; readonly dwStart: number; readonly dwMid: number; readonly stride: number; readonly expRatio: number; readonly outChs: number }
export interface MqaArgs {
  readonly type: 'mqa'; readonly numHeads: number; readonly keyDim: number; readonly valueDim: number;
  readonly kvStride: number; readonly dwKernel: number; readonly stride: number; readonly outChs: number; readonly layerScale: boolean;
}
export type BlockArgs = EdgeResidualArgs | UirArgs | MqaArgs;

/** Stage strings of mobilenetv5_300m_enc (stem 64 ch, 4 stages, MSFA on stages 2 and 3). */
export const MOBILENETV5_300M_ENC: readonly (readonly string[])[] = [
  // stage 0: 3 EdgeResidual, 384² → 192², 128 ch
  ['er_r1_k3_s2_e4_c128', 'er_r1_k3_s1_e4_c128', 'er_r1_k3_s1_e4_c128'],
  // stage 1: 5 UIR, → 96², 256 ch
  ['uir_r1_a3_k5_s2_e6_c256', 'uir_r1_a5_k0_s1_e4_c256', 'uir_r1_a3_k0_s1_e4_c256', 'uir_r1_a5_k0_s1_e4_c256', 'uir_r1_a3_k0_s1_e4_c256'],
  // stage 2: UIR ×9, then 14 × (MQA with K/V stride 2, FFN UIR), → 48², 640 ch
  [
    'uir_r1_a5_k5_s2_e6_c640', ...Array<string>(7).fill('uir_r1_a5_k0_s1_e4_c640'), 'uir_r1_a0_k0_s1_e1_c640',
    ...Array.from({ length: 14 }, () => ['mqa_r1_k3_h12_v2_s1_d64_c640', 'uir_r1_a0_k0_s1_e2_c640']).flat(),
  ],
  // stage 3: UIR, then 19 × (MQA, FFN UIR), → 24², 1280 ch
  [
    'uir_r1_a5_k5_s2_e6_c1280',
    ...Array.from({ length: 19 }, () => ['mqa_r1_k3_h16_s1_d96_c1280', 'uir_r1_a0_k0_s1_e2_c1280']).flat(),
  ],
];

export interface EncoderConfig {
  /** Stage block strings. */
  readonly archDef: readonly (readonly string[])[];
  /** conv_stem output channels. */
  readonly stemSize: number;
  /** Feature indices fed to the MSFA (0 = stem, s + 1 = stage s; negatives count from the end). */
  readonly msfaIndices: readonly number[];
  /** MSFA output side (16 → 256 soft tokens). */
  readonly msfaOutputResolution: number;
  /** MSFA output channels = soft-token width. */
  readonly numFeatures: number;
  /** MSFA FFN expansion. */
  readonly msfaExpansion: number;
  /** Whether trunk UIR / MQA blocks have layer_scale.gamma (layer_scale_init_value is set). */
  readonly layerScale: boolean;
}

/** timm `mobilenetv5_300m_enc` as Gemma 3n builds it (Gemma3nVisionConfig → TimmWrapper). */
export const GEMMA3N_VISION: EncoderConfig = {
  archDef: MOBILENETV5_300M_ENC,
  stemSize: 64,
  msfaIndices: [-2, -1],
  msfaOutputResolution: 16,
  numFeatures: 2048,
  msfaExpansion: 2,
  layerScale: true,
};

/** timm make_divisible(v, 8): round to a multiple of 8, never down by more than 10 %. */
export function makeDivisible(v: number, divisor = 8): number {
  let n = Math.max(divisor, Math.floor(v + divisor / 2) - (Math.floor(v + divisor / 2) % divisor));
  if (n < 0.9 * v) n += divisor;
  return n;
}

/** Decodes one block string into its args, repeated `r` times. */
export function decodeBlock(s: string, layerScale: boolean): BlockArgs[] {
  const [type, ...ops] = s.split('_');
  const o = new Map<string, string>();
  for (const op of ops) {
    const m = /^([a-z]+)(.*)$/.exec(op);
    if (!m) throw new Error(`block '${s}': cannot parse '${op}'`);
    o.set(m[1], m[2]);
  }
  const num = (key: string, dflt?: number): number => {
    const v = o.get(key);
    if (v === undefined) {
      if (dflt === undefined) throw new Error(`block '${s}': missing '${key}'`);
      return dflt;
    }
    const n = Number(v);
    if (!Number.isFinite(n)) throw new Error(`block '${s}': bad value '${key}${v}'`);
    return n;
  };
  const repeat = num('r', 1), stride = num('s', 1), outChs = num('c');
  let first: BlockArgs;
  if (type === 'er') first = { type: 'er', expKernel: num('k'), stride, expRatio: num('e'), outChs };
  else if (type === 'uir') first = { type: 'uir', dwStart: num('a', 0), dwMid: num('k', 0), stride, expRatio: num('e'), outChs };
  else if (type === 'mqa') {
    const d = num('d');
    first = { type: 'mqa', numHeads: num('h'), keyDim: d, valueDim: d, kvStride: num('v', 1), dwKernel: num('k'), stride, outChs, layerScale };
  } else throw new Error(`block '${s}': unsupported block type '${type}'`);
  // Repeats after the first keep the width and use stride 1 [timm _efficientnet_builder].
  return Array.from({ length: repeat }, (_, i) => (i === 0 ? first : { ...first, stride: 1 }));
}
