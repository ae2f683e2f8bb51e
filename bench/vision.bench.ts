/**
 * Vision encoding speed: one 768×768 image through the whole vision path — preprocessing
 * (decode-free: a synthetic RGB image resized from 1024×768), the mobilenetv5_300m_enc tower
 * with the real Gemma 3n shapes (294 M parameters, ≈ 435 G multiply-adds), and embed_vision
 * (2048 → 2048) — with the deterministic formula weights of the vision golden README.
 *
 *   node dist/bench/vision.bench.js [--kernels ts|blocked|wasm]
 *
 * `ts` = the reference TsKernels, `blocked` = BlockedTsKernels (default: register-blocked
 * batched linear), `wasm` = WasmKernels (needs build/*.wasm). Exported as `runVisionBench`.
 */
import Benchmark from 'benchmark';
import { BlockedTsKernels } from '../src/encoders/vision/blocked_kernels.js';
import { formulaTensor } from '../src/encoders/vision/formula_weights.js';
import { embedVision, encodeImage, loadVisionTower, type VisionWeights } from '../src/encoders/vision/index.js';
import { preprocessRgb } from '../src/encoders/vision/preprocess.js';
import type { Kernels } from '../src/kernels/kernels.js';
import { quantizeOnLoad } from '../src/encoders/tower_weights.js';

export interface VisionBenchResult {
  kernels: string;
  /** Mean wall time of one full pass (preprocess + tower + embed_vision), seconds. */
  passSeconds: number;
  preprocessSeconds: number;
  towerSeconds: number;
  towerCpuSeconds: number;
  /** Wall seconds per part of the tower (stem, stage0..3, msfa). */
  stages: Record<string, number>;
  /** Effective multiply-add rate of the tower, G/s. */
  gmacPerSecond: number;
}

/** Multiply-adds of mobilenetv5_300m_enc at 768×768 (convs, attention, MSFA), counted from the shapes. */
export const VISION_TOWER_GMAC = 435;

function weights(): VisionWeights {
  const embed: Record<string, number[]> = {
    'model.embed_vision.embedding.weight': [128, 2048],
    'model.embed_vision.hard_embedding_norm.weight': [2048],
    'model.embed_vision.soft_embedding_norm.weight': [2048],
    'model.embed_vision.embedding_projection.weight': [2048, 2048],
  };
  return {
    readF32: async (name, shape) => {
      const s = shape ?? embed[name];
      if (!s) throw new Error(`synthetic vision weights: '${name}' read without a shape`);
      return formulaTensor(name.replace(/^model\.vision_tower\.timm_model\./, ''), s);
    },
    has: (name) => !/\.q[48]$/.test(name),
    info: async (name) => ({ shape: embed[name] ?? [] }),
  };
}

/** `linearFormat: 'q4'`: the tower as a packed folder runs it (per-family int8, src/encoders/tower_weights.ts). */
export async function runVisionBench(opts: { kernels?: Kernels; log?: (s: string) => void; linearFormat?: 'f32' | 'q4' } = {}): Promise<VisionBenchResult> {
  const kernels = opts.kernels ?? new BlockedTsKernels();
  const log = opts.log ?? (() => {});
  const t = performance.now();
  const ww = weights();
  const tower = await loadVisionTower(opts.linearFormat === 'q4' ? { ...quantizeOnLoad(ww), info: ww.info } : ww, kernels);
  log(`built the vision tower with formula weights in ${((performance.now() - t) / 1000).toFixed(1)} s`);
  const w = 1024,
    h = 768,
    rgb = new Uint8Array(w * h * 3);
  for (let i = 0; i < w * h; i++) rgb.set([(i % w) & 255, (i / w) & 255, ((i % w) ^ (i / w)) & 255], 3 * i);

  let preprocessSeconds = 0,
    towerSeconds = 0,
    towerCpuSeconds = 0;
  let stages: Record<string, number> = {};
  const pass = () => {
    let t0 = performance.now();
    const pixels = preprocessRgb({ width: w, height: h, data: rgb });
    preprocessSeconds = (performance.now() - t0) / 1000;
    t0 = performance.now();
    const c0 = cpuSeconds();
    let last = t0;
    stages = {};
    const soft = encodeImage(tower, pixels, (name) => {
      if (name === 'stem' || /^stage\d$/.test(name) || name === 'features') {
        const now = performance.now();
        stages[name === 'features' ? 'msfa' : name] = (now - last) / 1000;
        last = now;
      }
    });
    embedVision(tower, soft);
    towerSeconds = (performance.now() - t0) / 1000;
    towerCpuSeconds = cpuSeconds() - c0;
    log(
      `pass: preprocess ${preprocessSeconds.toFixed(2)} s, tower+embed ${towerSeconds.toFixed(1)} s wall / ${towerCpuSeconds.toFixed(1)} s CPU; ` +
        Object.entries(stages)
          .map(([k, v]) => `${k} ${v.toFixed(1)}`)
          .join(', '),
    );
  };
  const passSeconds = await new Promise<number>((resolve, reject) => {
    const bench = new Benchmark('vision 768×768', pass, {
      minSamples: 1,
      maxTime: 0,
      initCount: 1,
      async: false,
      onComplete: function (this: Benchmark) {
        resolve(this.stats.mean);
      },
      onError: function (this: Benchmark) {
        reject((this as unknown as { error: Error }).error);
      },
    });
    bench.run();
  });
  tower.encoder.release();
  tower.embedder?.release();
  const result = {
    kernels: kernels.name,
    passSeconds,
    preprocessSeconds,
    towerSeconds,
    towerCpuSeconds,
    stages,
    gmacPerSecond: VISION_TOWER_GMAC / towerSeconds,
  };
  log(`vision: one 768×768 image in ${passSeconds.toFixed(1)} s with ${kernels.constructor.name} (${result.gmacPerSecond.toFixed(2)} G multiply-adds/s)`);
  return result;
}

function cpuSeconds(): number {
  const p = (globalThis as { process?: { cpuUsage?: () => { user: number; system: number } } }).process;
  if (!p?.cpuUsage) return NaN;
  const u = p.cpuUsage();
  return (u.user + u.system) / 1e6;
}

// Run directly: node dist/bench/vision.bench.js [--kernels ts|blocked|wasm]
if (typeof process !== 'undefined' && process.argv[1] && /vision\.bench\.[jt]s$/.test(process.argv[1])) {
  const i = process.argv.indexOf('--kernels');
  const which = i >= 0 ? process.argv[i + 1] : 'blocked';
  let kernels: Kernels;
  if (which === 'wasm') kernels = await (await import('../src/node/wasm_host.js')).createNodeWasmKernels({});
  else if (which === 'ts') kernels = new (await import('../src/kernels/ts_kernels.js')).TsKernels();
  else kernels = new BlockedTsKernels();
  const r = await runVisionBench({ kernels, log: console.log });
  console.log(JSON.stringify(r));
  process.exit(0); // wasm worker threads
}
