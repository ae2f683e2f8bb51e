/**
 * What int4 does to the audio and vision towers (README "Tower accuracy"), on the golden inputs:
 *
 *   - per tensor family (src/encoders/tower_weights.ts): the relative RMS error of the
 *     quantized weights, ‖W − deq(q(W))‖ / ‖W‖, and of that layer's outputs, ‖y − y_q‖ / ‖y‖,
 *     where y_q is the int4 kernel on exactly the input the f32 model gave the layer;
 *   - per tower: cosine similarity and relative RMS of the soft tokens with the measured
 *     per-family formats (the real int4 path) against the f32 path and the golden file.
 *
 *   node dist/bench/tower_accuracy.js [--audio] [--vision] [--vision-mini] [--q4 REGEX]... [--json]
 *
 * `--q4 REGEX` adds a run with the measured formats except that the tower tensors whose name
 * matches REGEX are int4 (e.g. `--q4 'ffw_layer_2|pw_proj'`): how a mix would do before choosing it.
 *
 * Vision: the full-size mobilenetv5_300m_enc with the golden formula weights on
 * test/golden/vision/full (768×768). Audio: test/golden/audio/encoder-tiny on its golden
 * features (batches A and B), quantizing every family regardless of size (the tiny model's
 * tensors are all below the size at which real checkpoints quantize).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { MemorySource } from '../src/io/byte_source.js';
import { SafetensorsFile } from '../src/checkpoint/safetensors.js';
import { Checkpoint } from '../src/checkpoint/checkpoint.js';
import { NodeFolder } from '../src/node/fs_folder.js';
import { createNodeWasmKernels } from '../src/node/wasm_host.js';
import type { AttentionParams, Kernels, LinearWeight, WeightFormat } from '../src/kernels/kernels.js';
import { Q4Matrix } from '../src/kernels/q4.js';
import { quantizeOnLoad, towerFamily, TOWER_FAMILIES, type TowerFamily, type TowerFormat, type TowerWeights } from '../src/encoders/tower_weights.js';
import { Q8Matrix } from '../src/kernels/q8.js';
import { formulaTensor } from '../src/encoders/vision/formula_weights.js';
import { encodeImage, loadVisionTower, MobileNetV5Encoder, type EncoderConfig, type VisionWeights } from '../src/encoders/vision/index.js';
import { fromCHW, toCHW } from '../src/encoders/vision/tensor.js';
import { AudioModel } from '../src/encoders/audio/model.js';

const root = join(import.meta.dirname, '../..');
const golden = (rel: string) => join(root, 'test/golden', rel);
const log = (s: string) => process.stderr.write(s + '\n');

/** Per family: Σw², Σ(w − deq)² and Σy², Σ(y − y_q)² for q4 and q8. */
interface Acc {
  w2: number;
  dw2: Record<Q, number>;
  y2: number;
  dy2: Record<Q, number>;
  tensors: number;
  values: number;
}
type Q = 'q4' | 'q8';

/** Kernels that run every named tower linear in f32 and, beside it, in int4 and int8 on the same input. */
class MeasuringKernels implements Kernels {
  readonly name: string;
  /** Family of the tensor read last (consumed by the next createLinear), and of each array read. */
  pending: string | null = null;
  readonly tags = new WeakMap<Float32Array, string>();
  readonly acc = new Map<string, Acc>();
  private readonly twins = new Map<LinearWeight, { q4: LinearWeight; q8: LinearWeight; family: string }>();

  constructor(private readonly inner: Kernels) {
    this.name = `measuring(${inner.name})`;
  }

  private family(f: string): Acc {
    let a = this.acc.get(f);
    if (!a) this.acc.set(f, (a = { w2: 0, dw2: { q4: 0, q8: 0 }, y2: 0, dy2: { q4: 0, q8: 0 }, tensors: 0, values: 0 }));
    return a;
  }

  createLinear(w: Float32Array | Q4Matrix, outDim: number, inDim: number, format?: WeightFormat): LinearWeight {
    const weight = this.inner.createLinear(w, outDim, inDim, format);
    const f = (w instanceof Float32Array ? this.tags.get(w) : undefined) ?? this.pending;
    this.pending = null;
    if (f && w instanceof Float32Array) {
      const q4 = Q4Matrix.quantize(w, outDim, inDim),
        q8 = Q8Matrix.quantize(w, outDim, inDim);
      const d4 = q4.dequantize(),
        d8 = q8.dequantize(),
        a = this.family(f);
      for (let i = 0; i < w.length; i++) {
        a.w2 += w[i] * w[i];
        a.dw2.q4 += (w[i] - d4[i]) ** 2;
        a.dw2.q8 += (w[i] - d8[i]) ** 2;
      }
      a.tensors++;
      a.values += w.length;
      this.twins.set(weight, { q4: this.inner.createLinear(q4, outDim, inDim), q8: this.inner.createLinear(q8, outDim, inDim), family: f });
    }
    return weight;
  }

  linear(w: LinearWeight, x: Float32Array, T: number, y: Float32Array): void {
    this.inner.linear(w, x, T, y);
    const t = this.twins.get(w);
    if (!t) return;
    const a = this.family(t.family),
      yq = new Float32Array(T * w.outDim);
    for (let i = 0; i < yq.length; i++) a.y2 += y[i] * y[i];
    for (const f of ['q4', 'q8'] as const) {
      this.inner.linear(t[f], x, T, yq);
      for (let i = 0; i < yq.length; i++) a.dy2[f] += (y[i] - yq[i]) ** 2;
    }
  }

  linearMany(ws: readonly LinearWeight[], x: Float32Array, T: number, ys: readonly Float32Array[]): void {
    ws.forEach((w, i) => this.linear(w, x, T, ys[i]));
  }
  geluMul(a: Float32Array, b: Float32Array, n: number): void {
    this.inner.geluMul(a, b, n);
  }
  softcap(x: Float32Array, n: number, cap: number): void {
    this.inner.softcap(x, n, cap);
  }
  attention(p: AttentionParams): void {
    this.inner.attention(p);
  }
  release(w: LinearWeight): void {
    const t = this.twins.get(w);
    if (t) {
      this.inner.release(t.q4);
      this.inner.release(t.q8);
      this.twins.delete(w);
    }
    this.inner.release(w);
  }
}

/** A reader that tells the measuring kernels which family the next linear belongs to. */
function tagging(r: TowerWeights, k: MeasuringKernels): TowerWeights {
  return {
    file: r.file,
    readF32: async (name, shape) => {
      const family = towerFamily(name)?.family ?? null,
        a = await r.readF32(name, shape);
      k.pending = family; // for a conv reordered before createLinear
      if (family) k.tags.set(a, family); // for linears loaded concurrently (audio attention)
      return a;
    },
    has: r.has?.bind(r),
    readBytes: r.readBytes?.bind(r),
  };
}

/** The raw tensors of a safetensors file (the audio goldens put BOOL tensors between F32 ones: offsets not aligned). */
function goldenTensors(path: string): Map<string, { shape: number[]; bytes: Uint8Array }> {
  const bytes = new Uint8Array(readFileSync(path));
  const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n))) as Record<string, { shape: number[]; data_offsets: [number, number] }>;
  const out = new Map<string, { shape: number[]; bytes: Uint8Array }>();
  for (const [name, t] of Object.entries(header)) {
    if (name !== '__metadata__') out.set(name, { shape: t.shape, bytes: bytes.slice(8 + n + t.data_offsets[0], 8 + n + t.data_offsets[1]) });
  }
  return out;
}

function compare(a: ArrayLike<number>, b: ArrayLike<number>): { cosine: number; relRms: number } {
  let ab = 0,
    aa = 0,
    bb = 0,
    d2 = 0;
  for (let i = 0; i < a.length; i++) {
    ab += a[i] * b[i];
    aa += a[i] * a[i];
    bb += b[i] * b[i];
    d2 += (a[i] - b[i]) ** 2;
  }
  return { cosine: ab / Math.sqrt(aa * bb), relRms: Math.sqrt(d2 / bb) };
}

const familyRows = (k: MeasuringKernels) =>
  [...k.acc].map(([family, a]) => ({
    family,
    tensors: a.tensors,
    params: a.values,
    format: TOWER_FAMILIES.find((f) => f.family === family)?.format,
    q4_weight_rel_rms: Math.sqrt(a.dw2.q4 / a.w2),
    q4_output_rel_rms: Math.sqrt(a.dy2.q4 / a.y2),
    q8_weight_rel_rms: Math.sqrt(a.dw2.q8 / a.w2),
    q8_output_rel_rms: Math.sqrt(a.dy2.q8 / a.y2),
  }));

/** The family table with every family set to `format` (all, or only those named). */
const withFormat = (format: TowerFormat, only?: string): TowerFamily[] =>
  TOWER_FAMILIES.map((f) => (only === undefined || f.family === only ? { ...f, format } : { ...f, format: only === undefined ? format : 'f32' }));

/** `--q4 REGEX` (repeatable): the measured table with the tensors whose name matches REGEX in int4 (a mix to try). */
const plusQ4 = process.argv.flatMap((a, i) => (process.argv[i - 1] === '--q4' ? [a] : []));
const withQ4 = (re: string): TowerFamily[] => [
  ...TOWER_FAMILIES.map((f) => ({
    ...f,
    family: `${f.family}+q4`,
    pattern: new RegExp(`^(?=.*(?:${re}))(?:.*(?:${f.pattern.source}))`),
    format: 'q4' as const,
  })),
  ...TOWER_FAMILIES,
];
const mixes = (): [string, TowerFamily[]][] => plusQ4.map((re) => [`measured+q4(${re})`, withQ4(re)]);

async function vision(kernels: Kernels) {
  const formula: VisionWeights = {
    readF32: async (name, shape) => {
      if (!shape) throw new Error(`'${name}' read without a shape`);
      return formulaTensor(name.replace(/^model\.vision_tower\.timm_model\./, ''), shape);
    },
    has: (name) => !name.endsWith('.q4') && !name.startsWith('model.embed_vision'),
  };
  const st = await SafetensorsFile.open(new MemorySource(new Uint8Array(readFileSync(golden('vision/full/pixel_values.safetensors'))), 'pixel_values'));
  const pixels = await st.readF32('pixel_values');
  const ref = await (
    await SafetensorsFile.open(new MemorySource(new Uint8Array(readFileSync(golden('vision/full/features.safetensors'))), 'features'))
  ).readF32('soft_tokens');

  const mk = new MeasuringKernels(kernels);
  let t = performance.now();
  const towerF = await loadVisionTower(tagging(formula, mk), mk);
  const f32 = encodeImage(towerF, pixels);
  towerF.encoder.release();
  log(`vision f32 + int4 twins: ${((performance.now() - t) / 1000).toFixed(1)} s`);
  t = performance.now();
  const towerQ = await loadVisionTower(quantizeOnLoad(formula), kernels);
  const q4 = encodeImage(towerQ, pixels);
  towerQ.encoder.release();
  log(`vision int4 (measured formats): ${((performance.now() - t) / 1000).toFixed(1)} s`);
  const mixed: Record<string, unknown> = {};
  for (const [label, families] of mixes()) {
    const tower = await loadVisionTower(quantizeOnLoad(formula, { families }), kernels);
    const y = encodeImage(tower, pixels);
    tower.encoder.release();
    mixed[label] = { vs_f32: compare(y, f32), vs_golden: compare(y, ref) };
    log(`vision ${label}: cosine ${(mixed[label] as { vs_f32: { cosine: number } }).vs_f32.cosine}`);
  }
  return { families: familyRows(mk), f32_vs_golden: compare(f32, ref), q4_vs_f32: compare(q4, f32), q4_vs_golden: compare(q4, ref), ...mixed };
}

/** The golden mini_encoder (test/golden/vision/blocks/mini_encoder): every block type at small width, in seconds. */
async function visionMini(kernels: Kernels) {
  const dir = golden('vision/blocks/mini_encoder');
  const open = async (f: string) => SafetensorsFile.open(new MemorySource(new Uint8Array(readFileSync(join(dir, f))), f));
  const wst = await open('weights.safetensors'),
    io = await open('io.safetensors');
  const reader: TowerWeights = { readF32: (name) => wst.readF32(name), has: (name) => wst.tensors.has(name) };
  const config: EncoderConfig = {
    archDef: [
      ['er_r1_k3_s2_e4_c16', 'er_r1_k3_s1_e4_c16'],
      ['uir_r1_a3_k5_s2_e6_c24', 'uir_r1_a5_k0_s1_e4_c24', 'uir_r1_a3_k0_s1_e4_c24'],
      ['uir_r1_a5_k5_s2_e6_c32', 'uir_r1_a0_k0_s1_e1_c32', 'mqa_r1_k3_h2_v2_s1_d8_c32', 'uir_r1_a0_k0_s1_e2_c32'],
      ['uir_r1_a5_k5_s2_e6_c48', 'mqa_r1_k3_h2_s1_d12_c48', 'uir_r1_a0_k0_s1_e2_c48'],
    ],
    stemSize: 8,
    msfaIndices: [-2, -1],
    msfaOutputResolution: 2,
    numFeatures: 2048,
    msfaExpansion: 2,
    layerScale: true,
  };
  const input = fromCHW(await io.readF32('input'), 3, 96, 96),
    ref = await io.readF32('output');
  const mk = new MeasuringKernels(kernels);
  const f32 = toCHW((await MobileNetV5Encoder.load(tagging(reader, mk), mk, config)).forward(input));
  const runs: Record<string, unknown> = { f32_vs_golden: compare(f32, ref) };
  for (const [label, families] of [['measured', [...TOWER_FAMILIES]], ['all_q8', withFormat('q8')], ['all_q4', withFormat('q4')], ...mixes()] as [
    string,
    TowerFamily[],
  ][]) {
    const y = toCHW((await MobileNetV5Encoder.load(quantizeOnLoad(reader, { minQuantized: 0, families }), kernels, config)).forward(input));
    runs[label] = { vs_f32: compare(y, f32), vs_golden: compare(y, ref) };
  }
  for (const f of TOWER_FAMILIES.filter((x) => x.family.startsWith('vision.') && x.family !== 'vision.conv_stem')) {
    const y = toCHW(
      (await MobileNetV5Encoder.load(quantizeOnLoad(reader, { minQuantized: 0, families: withFormat('q4', f.family) }), kernels, config)).forward(input),
    );
    runs[`only_${f.family}_q4`] = { vs_f32: compare(y, f32) };
  }
  return { families: familyRows(mk), runs };
}

async function audio(kernels: Kernels) {
  const dir = golden('audio/encoder-tiny');
  const cfg = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
  const gst = goldenTensors(join(dir, 'golden.safetensors'));
  const out: Record<string, unknown>[] = [];
  const mk = new MeasuringKernels(kernels);
  const ckpt = await Checkpoint.open(new NodeFolder(dir));
  const mF = await AudioModel.load({ ...tagging(ckpt, mk), location: ckpt.location }, cfg, mk);
  const configs: [string, TowerFamily[]][] = [
    ['measured', [...TOWER_FAMILIES]],
    ['all_q8', withFormat('q8')],
    ['all_q4', withFormat('q4')],
    ...mixes(),
    ...TOWER_FAMILIES.filter((f) => f.family.startsWith('audio.') || f.family.startsWith('embed.')).map(
      (f) => [`only_${f.family}_q4`, withFormat('q4', f.family)] as [string, TowerFamily[]],
    ),
  ];
  const models = new Map<string, AudioModel>();
  for (const [label, families] of configs)
    models.set(label, await AudioModel.load({ ...quantizeOnLoad(ckpt, { minQuantized: 0, families }), location: ckpt.location }, cfg, kernels));
  for (const X of ['A', 'B']) {
    const [B, T] = gst.get(`${X}.input_features`)!.shape;
    const feats = new Float32Array(gst.get(`${X}.input_features`)!.bytes.buffer),
      mask = gst.get(`${X}.input_features_mask`)!.bytes;
    const eF = mF.encoder.encode(feats, mask, B, T);
    const ref = new Float32Array(gst.get(`${X}.last_hidden_state`)!.bytes.buffer);
    const row: Record<string, unknown> = { batch: X, f32_vs_golden: compare(eF.hidden, ref) };
    for (const [label, m] of models) {
      const e = m.encoder.encode(feats, mask, B, T);
      row[label] = {
        hidden_vs_f32: compare(e.hidden, eF.hidden),
        hidden_vs_golden: compare(e.hidden, ref),
        embed_soft_vs_f32: compare(m.embed(e), mF.embed(eF)),
      };
    }
    out.push(row);
  }
  await ckpt.close();
  return { families: familyRows(mk), batches: out };
}

const args = process.argv.slice(2);
const all = !args.includes('--audio') && !args.includes('--vision') && !args.includes('--vision-mini');
const kernels = await createNodeWasmKernels({ threads: 2 });
const result: Record<string, unknown> = {};
if (all || args.includes('--audio')) result.audio = await audio(kernels);
if (all || args.includes('--vision-mini')) result.vision_mini = await visionMini(kernels);
if (all || args.includes('--vision')) result.vision = await vision(kernels);
const fmt = (x: number) => x.toExponential(2);
for (const [tower, r] of Object.entries(result) as [string, { families: ReturnType<typeof familyRows> }][]) {
  console.log(`\n${tower}: family | format | tensors | params | weight rel. RMS int4 / int8 | layer output rel. RMS int4 / int8`);
  for (const f of r.families)
    console.log(
      `${f.family} | ${f.format} | ${f.tensors} | ${f.params} | ${fmt(f.q4_weight_rel_rms)} / ${fmt(f.q8_weight_rel_rms)} | ${fmt(f.q4_output_rel_rms)} / ${fmt(f.q8_output_rel_rms)}`,
    );
  console.log(JSON.stringify(r, (k, v) => (k === 'families' ? undefined : v)));
}
if (args.includes('--json')) console.log(JSON.stringify(result));
process.exit(0);
