/**
 * Accuracy of packed v2 per quantized tensor family, on the golden text models and inputs:
 *
 *   node dist/bench/packed_accuracy.js [--json] [--f16]
 *
 * `--f16` measures packed v2.0's blobs (f16 group scales) instead of v2.1's (log-coded u8
 * scales, src/checkpoint/q4_compact.ts; what `gemma3n quantize` writes).
 *
 * For every text linear family (q/k/v/o, gate/up/down, LAuReL, PLE gate/projection, AltUp, the
 * tied LM head): the relative RMS error of the weights, ‖Ŵ − W‖ / ‖W‖, with Ŵ the v2 int4 weight
 * (group-32 codes, f16 scales), and of that layer's output on the golden inputs, ‖Ŵx − Wx‖ / ‖Wx‖,
 * where x is what the layer actually receives during the f32 forward pass of the golden
 * `input_ids` (int8 activation rounding excluded: this isolates the stored format). For the two
 * tables (token embedding, per-layer embedding) the output is the looked-up row itself.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Checkpoint } from '../src/checkpoint/checkpoint.js';
import { decodeQ4, encodeQ4, quantizeQ4Rows, q4rHeader, parseQ4RHeader, dequantQ4Row } from '../src/checkpoint/packed_format.js';
import { decodeQ4Blocks, quantizeQ4Blocks, quantizeQ4RowsCompact } from '../src/checkpoint/q4_compact.js';

const F16 = process.argv.includes('--f16');
/** W as the packed folder stores it (v2.1, or v2.0 with --f16), dequantized. */
const packedQ4 = (w: Float32Array, rows: number, cols: number, what: string): Float32Array =>
  (F16 ? decodeQ4(encodeQ4(Q4Matrix.quantize(w, rows, cols)), what) : decodeQ4Blocks(quantizeQ4Blocks(w, rows, cols, what), rows, cols, what)).dequantize();
import type { LinearWeight } from '../src/kernels/kernels.js';
import { Q4Matrix } from '../src/kernels/q4.js';
import { TsKernels } from '../src/kernels/ts_kernels.js';
import { Gemma3nTextModel } from '../src/model/text_model.js';
import { parseModelConfig } from '../src/checkpoint/config.js';
import { loadTextWeights } from '../src/checkpoint/weights.js';
import { NodeFolder } from '../src/node/fs_folder.js';
import { SafetensorsFile } from '../src/checkpoint/safetensors.js';
import { MemorySource } from '../src/io/byte_source.js';
import { packageRoot } from '../src/node/default_model.js';

interface Acc {
  wNum: number;
  wDen: number;
  yNum: number;
  yDen: number;
  n: number;
}
const acc = new Map<string, Acc>();
const get = (f: string): Acc => {
  let a = acc.get(f);
  if (!a) acc.set(f, (a = { wNum: 0, wDen: 0, yNum: 0, yDen: 0, n: 0 }));
  return a;
};

export function familyOf(name: string): string {
  return name
    .replace(/^model\.(language_model\.)?/, '')
    .replace(/^layers\.\d+\./, '')
    .replace(/\.\d+\.weight$/, '')
    .replace(/\.weight$/, '');
}

/** f32 kernels that also run each linear with its v2-dequantized weight and compare. */
class Comparing extends TsKernels {
  currentName = '';
  private readonly meta = new WeakMap<LinearWeight, { family: string; q: LinearWeight }>();
  override createLinear(w: Float32Array | Q4Matrix, outDim: number, inDim: number): LinearWeight {
    if (w instanceof Q4Matrix) throw new Error('expected float weights');
    // The LM head is built from the embedding table, read as bytes: no weight name was just read.
    const family = this.currentName === '' ? 'lm_head (tied embed_tokens)' : familyOf(this.currentName);
    this.currentName = '';
    const dq = packedQ4(w, outDim, inDim, family);
    const a = get(family);
    for (let i = 0; i < w.length; i++) {
      a.wNum += (dq[i] - w[i]) ** 2;
      a.wDen += w[i] ** 2;
    }
    const lin = super.createLinear(w, outDim, inDim, 'f32');
    this.meta.set(lin, { family, q: super.createLinear(dq, outDim, inDim, 'f32') });
    return lin;
  }
  override linear(w: LinearWeight, x: Float32Array, T: number, y: Float32Array): void {
    super.linear(w, x, T, y);
    const m = this.meta.get(w);
    if (!m) return;
    const yq = new Float32Array(y.length);
    super.linear(m.q, x, T, yq);
    const a = get(m.family);
    const n = T * (w as unknown as { outDim: number }).outDim;
    for (let i = 0; i < n; i++) {
      a.yNum += (yq[i] - y[i]) ** 2;
      a.yDen += y[i] ** 2;
    }
    a.n += T;
  }
  override linearMany(ws: readonly LinearWeight[], x: Float32Array, T: number, ys: readonly Float32Array[]): void {
    ws.forEach((w, i) => this.linear(w, x, T, ys[i]));
  }
}

async function measure(model: string): Promise<void> {
  const dir = join(packageRoot(), 'test', 'golden', model);
  const k = new Comparing();
  const folder = new NodeFolder(dir);
  const ckpt = await Checkpoint.open(folder);
  // Name each linear as the loader reads it (it reads a weight, then creates its linear).
  const named = new Proxy(ckpt, {
    get: (t, p) =>
      p === 'readF32'
        ? (n: string, s?: readonly number[]) => {
            k.currentName = n;
            return t.readF32(n, s);
          }
        : (t as never)[p],
  });
  const config = parseModelConfig(readFileSync(join(dir, 'config.json'), 'utf8')).text;
  const m = new Gemma3nTextModel(config, await loadTextWeights(named, config, k), k);
  const golden = await SafetensorsFile.open(new MemorySource(readFileSync(join(dir, 'golden.safetensors'))));
  const P = 'model.language_model.';
  const tables: [string, string][] = [
    ['embed_tokens (tied, lookup rows)', 'embed_tokens.weight'],
    ['embed_tokens_per_layer (.q4r)', 'embed_tokens_per_layer.weight'],
  ];
  for (const seq of [0, 1]) {
    const ids = Array.from(await golden.readF32(`input_ids.${seq}`));
    await m.forward(ids, m.newCache(), { logits: 'all' });
    for (const [label, name] of tables) {
      const info = await ckpt.info(P + name);
      const [rows, cols] = info.shape;
      const w = await ckpt.readF32(P + name);
      const a = get(label);
      const used = ids.filter((id) => id < rows);
      let dq: Float32Array;
      if (name === 'embed_tokens.weight') dq = packedQ4(w, rows, cols, name);
      else {
        const body = F16 ? quantizeQ4Rows(w, rows, cols, 'f16')! : quantizeQ4RowsCompact(w, rows, cols, name);
        const blob = new Uint8Array(32 + body.length);
        blob.set(q4rHeader(rows, cols, F16 ? 'f16' : 'u8log'));
        blob.set(body, 32);
        const hi = parseQ4RHeader(blob, blob.length, name);
        dq = new Float32Array(rows * cols);
        for (let r = 0; r < rows; r++)
          dequantQ4Row(blob.subarray(32 + r * hi.rowBytes, 32 + (r + 1) * hi.rowBytes), hi, dq.subarray(r * cols, (r + 1) * cols), name, r);
      }
      if (seq === 0)
        for (let i = 0; i < w.length; i++) {
          a.wNum += (dq[i] - w[i]) ** 2;
          a.wDen += w[i] ** 2;
        }
      for (const id of used)
        for (let i = 0; i < cols; i++) {
          a.yNum += (dq[id * cols + i] - w[id * cols + i]) ** 2;
          a.yDen += w[id * cols + i] ** 2;
        }
      a.n += used.length;
    }
  }
  await ckpt.close();
}

const json = process.argv.includes('--json');
const results: Record<string, Record<string, { weights: number; output: number }>> = {};
for (const model of ['text-tiny-a', 'text-tiny-b']) {
  acc.clear();
  await measure(model);
  results[model] = Object.fromEntries([...acc].sort().map(([f, a]) => [f, { weights: Math.sqrt(a.wNum / a.wDen), output: Math.sqrt(a.yNum / a.yDen) }]));
}
const fams = [...new Set(Object.values(results).flatMap((r) => Object.keys(r)))].sort();
console.log('| tensor family | weights rel. RMS (a / b) | layer output rel. RMS (a / b) |\n|---|---|---|');
const f3 = (x: number | undefined) => (x === undefined ? '—' : x.toFixed(4));
for (const f of fams)
  console.log(
    `| ${f} | ${f3(results['text-tiny-a'][f]?.weights)} / ${f3(results['text-tiny-b'][f]?.weights)} | ${f3(results['text-tiny-a'][f]?.output)} / ${f3(results['text-tiny-b'][f]?.output)} |`,
  );
if (json) console.log(JSON.stringify(results));
