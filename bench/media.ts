/**
 * `npm run bench:media [-- --json]`: the audio and vision towers with their real E2B shapes
 * (synthetic weights) on the WASM kernels, next to the text decode rate of the same run:
 * real-time factor for 30 s of audio, seconds per 768×768 image, decode tok/s.
 */
import { createNodeWasmKernels } from '../src/node/wasm_host.js';
import { runAudioBench } from './audio.bench.js';
import { createRealE2eModel } from './e2e.js';
import { runVisionBench } from './vision.bench.js';

const json = process.argv.includes('--json');
const log = (s: string) => process.stderr.write(s + '\n');
const kernels = await createNodeWasmKernels({ threads: 2 });

const audio = await runAudioBench({ seconds: 30, kernels, log });
const vision = await runVisionBench({ kernels, log });
const text = await createRealE2eModel(kernels, log);
await text.prefill(128);
const steps = 16;
const t0 = performance.now();
for (let i = 0; i < steps; i++) await text.decode();
const decodeTokS = steps / ((performance.now() - t0) / 1000);

const r2 = (x: number) => Math.round(x * 100) / 100;
console.log(`\nE2B shapes, synthetic weights, WASM kernels, 2 threads`);
console.log(`| path | time | rate |\n|---|---|---|`);
console.log(`| audio: 30 s clip → 188 soft tokens (12 conformer layers) | ${audio.passSeconds.toFixed(1)} s | real-time factor ${audio.realTimeFactor.toFixed(2)} (${(30 / audio.passSeconds).toFixed(2)}× real time) |`);
console.log(`| vision: one 768×768 image → 256 soft tokens | ${vision.passSeconds.toFixed(1)} s | ${vision.gmacPerSecond.toFixed(1)} G multiply-adds/s |`);
console.log(`| text: int4 decode after a 128-token prompt | ${(1000 / decodeTokS).toFixed(0)} ms/token | ${decodeTokS.toFixed(2)} tok/s |`);
if (json) {
  console.log(JSON.stringify({ audio_rtf_30s: r2(audio.realTimeFactor), audio_pass_s: r2(audio.passSeconds), vision_image_s: r2(vision.passSeconds), vision_gmac_s: r2(vision.gmacPerSecond), decode_tok_s: r2(decodeTokS) }));
}
process.exit(0);
