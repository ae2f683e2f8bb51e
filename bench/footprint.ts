/**
 * `npm run bench:footprint -- [--json] [--dir DIR] [--bf16 DIR] [--full DIR] [--text DIR]
 * [--requantize] [--tokens 256] [--no-media]`: the on-device footprint of a full-size E2B
 * (issue 13), each figure from a fresh child process:
 *
 * 1. the complete E2B-shape multimodal checkpoint in Hugging Face layout (bench/e2b_checkpoint.ts,
 *    bf16, 10.9 GB; written once into DIR/e2b-bf16, or `--bf16 DIR`);
 * 2. `gemma3n quantize` of it → DIR/e2b-packed (`--full DIR`; peak RSS, time), then
 *    `quantize --text-only` of that folder → DIR/e2b-packed-text (`--text DIR`); both folders'
 *    size on disk. Existing folders are reused (the quantize figures then come from the
 *    bench-quantize.json written when the full folder was made); a folder written by an older
 *    build (its config.json manifest differs from this build's) is re-made, as with --requantize;
 * 3. `generate` on the text-only folder as the CLI runs it (default Node flags, default kernels:
 *    WASM, all cores), a 15-token chat prompt, N greedy tokens: process start (taken by this
 *    process just before the spawn, so Node's own start-up counts) → first token, after a
 *    warm-up run so the file cache is warm; peak RSS during the decode; decode tok/s;
 * 4. the towers of the full folder: one 768×768 image and 30 s of audio (load not included).
 *
 * With the folders in place (e.g. `--dir /work/big`) a run takes a few minutes; from nothing it
 * first writes 10.9 GB and quantizes it (~20 min on a 2-core VM with a slow disk).
 *
 * Last line with --json: {disk_text_mb, disk_full_mb, quantize_peak_rss_mb, quantize_s,
 * rss_decode_mb, peak_rss_mb, start_to_first_token_ms, loaded_ms, prompt_tokens, decode_tok_s,
 * generated_tokens, start_ms, image_ms, audio_30s_ms, kernels, cpu}; start_ms is the start-up
 * timeline of the measured run (ms from the spawn at which Node ran the script, the modules were
 * imported, the kernels were ready, the tokenizer, layer 0's weights and all weights were in
 * place, load() returned, the prefill started and finished its layers, the first token came). MB = 10^6 bytes for disk sizes (as
 * file sizes are quoted), MiB for RSS.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { packageRoot } from '../src/node/default_model.js';
import { writeE2BCheckpoint } from './e2b_checkpoint.js';
import { packedManifest } from '../src/checkpoint/packed_format.js';

const argv = process.argv.slice(2);
const flag = (name: string, def: string) => {
  const i = argv.indexOf(name);
  return i >= 0 && argv[i + 1] ? argv[i + 1] : def;
};
const json = argv.includes('--json');
const dir = flag('--dir', process.env.GEMMA3N_BENCH_DIR ?? join(packageRoot(), '.cache'));
const tokens = Number(flag('--tokens', '256'));
const log = (s: string) => process.stderr.write(s + '\n');
const child = fileURLToPath(new URL('./footprint_child.js', import.meta.url));

/** One measured child process; `nodeFlags` as a user would start it (generate: none). */
function run(args: string[], nodeFlags: string[] = ['--no-liftoff']): Record<string, number | string> {
  const out = execFileSync(process.execPath, [...nodeFlags, child, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 26 });
  const lines = out.trim().split('\n');
  return JSON.parse(lines[lines.length - 1]) as Record<string, number | string>;
}

function folderBytes(d: string): number {
  return readdirSync(d).reduce((s, f) => s + statSync(join(d, f)).size, 0);
}

/** Whether `d` holds a packed folder written by this build (same manifest in config.json). */
function current(d: string, textOnly: boolean): boolean {
  if (!existsSync(join(d, 'config.json'))) return false;
  const q = (JSON.parse(readFileSync(join(d, 'config.json'), 'utf8')) as { quantization_config?: Record<string, unknown> }).quantization_config ?? {};
  const want = packedManifest(textOnly, String(q.towers));
  const same = Object.keys(want).every((k) => JSON.stringify(q[k]) === JSON.stringify(want[k]));
  if (!same) log(`${d}: written by another build (${JSON.stringify(q)}); re-making it`);
  return same;
}

const bf16 = await writeE2BCheckpoint(flag('--bf16', join(dir, 'e2b-bf16')), { log });
const full = flag('--full', join(dir, 'e2b-packed')),
  text = flag('--text', join(dir, 'e2b-packed-text'));
const statsFile = join(full, 'bench-quantize.json');
const requantize = argv.includes('--requantize') || !current(full, false);
if (requantize) for (const d of [full, text]) rmSync(d, { recursive: true, force: true });
if (!existsSync(statsFile)) {
  log(`quantize ${bf16} → ${full} ...`);
  const q = run(['cli', 'quantize', '--model', bf16, '--out', full]);
  writeFileSync(statsFile, JSON.stringify({ ...q, at: new Date().toISOString() }));
}
const quant = JSON.parse(readFileSync(statsFile, 'utf8')) as { ms: number; peak_rss_mb: number; at?: string };
if (!requantize) log(`reusing ${full} (quantize figures measured ${quant.at ?? 'when it was made'}) and ${text}`);
if (!current(text, true)) {
  rmSync(text, { recursive: true, force: true });
  log(`quantize --text-only ${full} → ${text} ...`);
  run(['cli', 'quantize', '--model', full, '--out', text, '--text-only']);
}
const diskFull = folderBytes(full) - statSync(statsFile).size,
  diskText = folderBytes(text);

const prompt = 'Why is the sky blue?';
log('generate (warm-up) ...');
run(['generate', text, '4', prompt, String(Date.now())], []);
log(`generate ${tokens} tokens ...`);
const gen = run(['generate', text, String(tokens), prompt, String(Date.now())], []);
let media: Record<string, number | string> = { image_ms: NaN, audio_30s_ms: NaN };
if (!argv.includes('--no-media')) {
  log('towers: one image, 30 s of audio ...');
  media = run(['media', full]);
}

// Where the start-up time went (marks from src/util/marks.ts, ms since the spawn): the last
// mark of each phase, so the phases read as a timeline.
const marks = (gen.marks ?? []) as unknown as [string, number][];
const at = (prefix: string) => {
  const ms = marks.filter(([n]) => n.startsWith(prefix)).map(([, t]) => t);
  return ms.length > 0 ? Math.max(...ms) : null;
};
const startMs = {
  node_started: at('node: main module runs'),
  modules_imported: at('node: modules imported'),
  kernels_ready: at('kernels: ready'),
  tokenizer_loaded: at('tokenizer loaded'),
  layer0_weights: at('weights: layer 0 ready'),
  load_returned: at('engine: load returned'),
  all_weights: at('weights: all ready'),
  prefill_start: at('prefill: start'),
  prefill_layers_done: at('prefill: layer'),
  first_token: at('first token'),
};
log(
  'start-up timeline (ms from the spawn): ' +
    Object.entries(startMs)
      .map(([k, v]) => `${k} ${v}`)
      .join(', '),
);

const MB = 1e6;
const r = {
  disk_text_mb: Math.round(diskText / MB),
  disk_full_mb: Math.round(diskFull / MB),
  quantize_peak_rss_mb: quant.peak_rss_mb,
  quantize_s: Math.round(quant.ms / 100) / 10,
  rss_decode_mb: gen.rss_decode_mb,
  peak_rss_mb: gen.peak_rss_mb,
  start_to_first_token_ms: gen.start_to_first_token_ms,
  loaded_ms: gen.loaded_ms,
  prompt_tokens: gen.prompt_tokens,
  decode_tok_s: gen.decode_tok_s,
  generated_tokens: gen.generated_tokens,
  start_ms: startMs,
  image_ms: media.image_ms,
  audio_30s_ms: media.audio_30s_ms,
  kernels: gen.kernels,
  cpu: cpus()[0]?.model ?? 'unknown',
};
console.log(`\nE2B-shape checkpoint (synthetic weights), ${r.cpu}, ${r.kernels}`);
console.log('| | this engine | llama.cpp Q4_0 | LiteRT-LM int4 |\n|---|---|---|---|');
console.log(`| packed folder, text only | ${(r.disk_text_mb / 1000).toFixed(2)} GB | 3.24 GB | — |`);
console.log(`| packed folder, text + image + audio | ${(r.disk_full_mb / 1000).toFixed(2)} GB | — | 2.97 GB |`);
console.log(`| quantize peak RSS | ${r.quantize_peak_rss_mb} MiB (${r.quantize_s} s) | | |`);
console.log(`| generate: peak RSS during a ${r.generated_tokens}-token decode | ${r.rss_decode_mb} MiB (process peak ${r.peak_rss_mb}) | | |`);
console.log(
  `| process start → first token (${r.prompt_tokens}-token prompt, warm cache) | ${r.start_to_first_token_ms} ms (model loaded at ${r.loaded_ms} ms) | | |`,
);
console.log(`| decode | ${r.decode_tok_s} tok/s | | |`);
console.log(`| one 768×768 image / 30 s of audio | ${r.image_ms} ms / ${r.audio_30s_ms} ms | | |`);
if (json) console.log(JSON.stringify(r));
process.exit(0);
