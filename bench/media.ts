/**
 * `npm run bench:media [-- --json] [-- --f32]`: the audio and vision towers with their real E2B
 * shapes (synthetic weights) on the WASM kernels, next to the text decode rate and the GEMM
 * rates of the same run: real-time factor for 30 s of audio, seconds per 768×768 image, decode
 * tok/s, and the vision tower's multiply-add rate as a fraction of the f32 and int8 GEMM rates on
 * a typical vision shape (stage-2 pw_exp: 2304 pixels × 640 → 2560), measured before the
 * towers and after the vision pass (the mean of the two).
 *
 * The towers load as a packed folder runs them (per-family int8/int4, src/encoders/tower_weights.ts);
 * `--f32` loads them in float32 instead (what an unquantized checkpoint does, the "before").
 * `--json`: the last line is one JSON object (`image_ms` and `audio_30s_ms` are the figures
 * bench:footprint reports).
 */
import { createNodeWasmKernels } from '../src/node/wasm_host.js';
import type { Kernels, WeightFormat } from '../src/kernels/kernels.js';
import { runAudioBench } from './audio.bench.js';
import { createRealE2eModel } from './e2e.js';
import { runVisionBench } from './vision.bench.js';

const json = process.argv.includes('--json');
const linearFormat = process.argv.includes('--f32') ? 'f32' : 'q4';
const log = (s: string) => process.stderr.write(s + '\n');
const kernels = await createNodeWasmKernels({ threads: 2 });

/** G multiply-adds/s of one linear of [O, I] over T rows (median of 3 calls). */
function gemmRate(k: Kernels, format: WeightFormat, T: number, O: number, I: number): number {
  const w = new Float32Array(O * I).map((_, i) => Math.sin(i) * 0.05),
    x = new Float32Array(T * I).map((_, i) => Math.cos(i)),
    y = new Float32Array(T * O);
  const lw = k.createLinear(w, O, I, format);
  k.linear(lw, x, T, y); // warm
  const times: number[] = [];
  for (let r = 0; r < 3; r++) {
    const t0 = performance.now();
    k.linear(lw, x, T, y);
    times.push((performance.now() - t0) / 1000);
  }
  k.release(lw);
  times.sort((a, b) => a - b);
  return (T * O * I) / times[1] / 1e9;
}

// The GEMM anchors run before the towers and again right after the vision pass; the figures are
// the means, so a load change on a shared machine during the run weighs on both sides alike.
const anchors = () => {
  const r = { f32: gemmRate(kernels, 'f32', 2304, 2560, 640), q8: gemmRate(kernels, 'q8', 2304, 2560, 640) };
  log(`GEMM 2304×640→2560: f32 ${r.f32.toFixed(1)}, int8 (q8) ${r.q8.toFixed(1)} G multiply-adds/s`);
  return r;
};
const before = anchors();
const audio = await runAudioBench({ seconds: 30, kernels, log, linearFormat });
const vision = await runVisionBench({ kernels, log, linearFormat });
const after = anchors();
const gemmF32 = (before.f32 + after.f32) / 2,
  gemmQ8 = (before.q8 + after.q8) / 2;
const text = await createRealE2eModel(kernels, log);
await text.prefill(128);
const steps = 16;
const t0 = performance.now();
for (let i = 0; i < steps; i++) await text.decode();
const decodeTokS = steps / ((performance.now() - t0) / 1000);

const r2 = (x: number) => Math.round(x * 100) / 100;
console.log(`\nE2B shapes, synthetic weights, WASM kernels, 2 threads, towers ${linearFormat === 'q4' ? 'quantized (packed formats)' : 'float32'}`);
console.log(`| path | time | rate |\n|---|---|---|`);
console.log(
  `| audio: 30 s clip → 188 soft tokens (12 conformer layers) | ${audio.passSeconds.toFixed(1)} s (${audio.encoderCpuSeconds.toFixed(1)} s CPU) | real-time factor ${audio.realTimeFactor.toFixed(2)} (${(30 / audio.passSeconds).toFixed(2)}× real time) |`,
);
console.log(
  `| vision: one 768×768 image → 256 soft tokens | ${vision.passSeconds.toFixed(1)} s (${vision.towerCpuSeconds.toFixed(1)} s CPU) | ${vision.gmacPerSecond.toFixed(1)} G multiply-adds/s = ${(vision.gmacPerSecond / gemmF32).toFixed(2)} of f32 GEMM, ${(vision.gmacPerSecond / gemmQ8).toFixed(2)} of int8 GEMM |`,
);
console.log(`| GEMM 2304×640→2560 (stage-2 pw_exp shape) | | f32 ${gemmF32.toFixed(1)} / int8 ${gemmQ8.toFixed(1)} G multiply-adds/s |`);
console.log(`| text: int4 decode after a 128-token prompt | ${(1000 / decodeTokS).toFixed(0)} ms/token | ${decodeTokS.toFixed(2)} tok/s |`);
if (json) {
  console.log(
    JSON.stringify({
      towers: linearFormat === 'q4' ? 'quantized' : 'f32',
      audio_rtf_30s: r2(audio.realTimeFactor),
      audio_pass_s: r2(audio.passSeconds),
      audio_30s_ms: Math.round(audio.passSeconds * 1000),
      audio_cpu_s: r2(audio.encoderCpuSeconds),
      vision_image_s: r2(vision.passSeconds),
      image_ms: Math.round(vision.passSeconds * 1000),
      vision_cpu_s: r2(vision.towerCpuSeconds),
      vision_gmac_s: r2(vision.gmacPerSecond),
      gemm_f32_gmac_s: r2(gemmF32),
      gemm_q8_gmac_s: r2(gemmQ8),
      vision_of_f32_gemm: r2(vision.gmacPerSecond / gemmF32),
      vision_of_q8_gemm: r2(vision.gmacPerSecond / gemmQ8),
      decode_tok_s: r2(decodeTokS),
    }),
  );
}
process.exit(0);
