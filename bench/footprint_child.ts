/**
 * One measured process for bench/footprint.ts (a fresh process, so start-up and RSS are real):
 *
 *   node dist/bench/footprint_child.js cli ARGS...          runs `gemma3n ARGS` in-process
 *   node dist/bench/footprint_child.js generate DIR N PROMPT [T0]  the user path of `gemma3n generate`
 *   node dist/bench/footprint_child.js media DIR              one 768×768 image, 30 s of audio
 *
 * The last stdout line is one JSON object. Times from process start: from T0 (the parent's
 * Date.now() just before it spawned this process, so Node's own start-up counts) when given, else
 * performance.now() (whose origin is this process's start). `generate` runs with the CLI's
 * defaults: the parent starts it without V8 flags, and the kernels are the default WASM ones.
 */
import { setMarkSink } from '../src/util/marks.js';

const [mode, ...args] = process.argv.slice(2);
/** Start-up marks (src/util/marks.ts) as [name, ms since process start]; see `generate` below. */
const marks: [string, number][] = [];
const MB = 2 ** 20;
const round = (x: number) => Math.round(x * 10) / 10;
const maxRssMb = () => process.resourceUsage().maxRSS / 1024;

if (mode === 'cli') {
  const { main } = await import('../src/cli/main.js');
  const t0 = performance.now();
  const code = await main(args);
  console.log(JSON.stringify({ exit: code, ms: round(performance.now() - t0), peak_rss_mb: round(maxRssMb()) }));
  process.exit(code);
} else if (mode === 'generate') {
  const [dir, n, prompt, t0] = args;
  // performance.timeOrigin + now() is the epoch clock at sub-ms resolution (Date.now() is whole ms).
  const sinceStart = t0 === undefined ? () => performance.now() : () => performance.timeOrigin + performance.now() - Number(t0);
  if (t0 !== undefined) marks.push(['node: process start', Math.max(0, performance.timeOrigin - Number(t0))]);
  marks.push(['node: main module runs', sinceStart()]);
  setMarkSink((name) => marks.push([name, round(sinceStart())]));
  const { Gemma3n } = await import('../src/engine/engine.js');
  const { NodeFolder } = await import('../src/node/fs_folder.js');
  const { createNodeWasmKernels } = await import('../src/node/wasm_host.js');
  marks.push(['node: modules imported', sinceStart()]);
  const kernels = await createNodeWasmKernels();
  marks.push(['kernels: ready', sinceStart()]);
  const g3n = await Gemma3n.load(new NodeFolder(dir), { kernels });
  const loadedMs = sinceStart();
  marks.push(['engine: load returned', loadedMs]);
  let first = 0,
    tokens = 0,
    rssDecode = 0;
  const ids = g3n.encodePrompt([{ role: 'user', content: prompt }]);
  marks.push(['prompt encoded', sinceStart()]);
  // Greedy from raw ids so exactly n tokens come out (random weights would stop anywhere).
  const it = g3n.stream({ ids }, { maxTokens: Number(n), temperature: 0 });
  let r = await it.next();
  first = sinceStart();
  marks.push(['first token', first]);
  setMarkSink(null);
  while (!r.done) {
    tokens++;
    rssDecode = Math.max(rssDecode, process.memoryUsage().rss);
    r = await it.next();
  }
  const m = r.value.metrics;
  console.log(
    JSON.stringify({
      prompt_tokens: ids.length,
      loaded_ms: round(loadedMs),
      start_to_first_token_ms: round(first),
      generated_tokens: m.generatedTokens,
      decode_tok_s: round(m.decodeTokPerS * 100) / 100,
      prefill_ms: round(m.prefillMs),
      rss_decode_mb: round(rssDecode / MB),
      peak_rss_mb: round(maxRssMb()),
      kernels: kernels.name,
      _tokens: tokens,
      marks: marks.map(([name, ms]) => [name, round(ms)]),
    }),
  );
  process.exit(0);
} else if (mode === 'media') {
  const [dir] = args;
  const { Gemma3n } = await import('../src/engine/engine.js');
  const { NodeFolder } = await import('../src/node/fs_folder.js');
  const { createNodeWasmKernels } = await import('../src/node/wasm_host.js');
  const kernels = await createNodeWasmKernels({ threads: 2 });
  const g3n = await Gemma3n.load(new NodeFolder(dir), { kernels });
  const towers = g3n.towers;
  if (!towers?.hasVision || !towers.hasAudio) throw new Error(`${dir}: no vision/audio tower`);
  await towers.vision();
  await towers.audio(); // loading is not part of the per-item time
  const w = 1024,
    h = 768,
    rgb = new Uint8Array(w * h * 3);
  for (let i = 0; i < w * h; i++) rgb.set([(i % w) & 255, (i / w) & 255, ((i % w) ^ (i / w)) & 255], 3 * i);
  let t = performance.now();
  await towers.imageEmbeddings({ image: { width: w, height: h, data: rgb } });
  const imageMs = performance.now() - t;
  const clip = new Float32Array(30 * 16000);
  let s = 12345;
  for (let i = 0; i < clip.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    const ph = (2 * Math.PI * (120 + 40 * Math.sin((2 * Math.PI * i) / 48000)) * i) / 16000;
    clip[i] = 0.2 * Math.sin(ph) + 0.08 * Math.sin(2 * ph) + 0.01 * (s / 4294967296 - 0.5);
  }
  t = performance.now();
  await towers.audioEmbeddings({ audio: clip });
  const audioMs = performance.now() - t;
  console.log(JSON.stringify({ image_ms: round(imageMs), audio_30s_ms: round(audioMs), peak_rss_mb: round(maxRssMb()), kernels: kernels.name }));
  process.exit(0);
} else {
  process.stderr.write('usage: footprint_child.js (cli ARGS | generate DIR N PROMPT | media DIR)\n');
  process.exit(2);
}
