/**
 * `npm run bench:footprint [-- --json] [-- --dir DIR] [-- --tokens 256] [-- --no-media]`: the
 * on-device footprint of a full-size E2B (issue 13), each figure from a fresh child process:
 *
 * 1. the complete E2B-shape multimodal checkpoint in Hugging Face layout (bench/e2b_checkpoint.ts,
 *    bf16, 10.9 GB; written once into DIR/e2b-bf16);
 * 2. `gemma3n quantize` of it → DIR/e2b-packed (peak RSS, time), then `quantize --text-only` of
 *    that folder → DIR/e2b-packed-text; both folders' size on disk;
 * 3. `generate` on the text-only folder with default flags, a 15-token chat prompt, N greedy
 *    tokens, WASM kernels on 2 threads: process start → first token (a warm-up run first, so the
 *    file cache is warm), peak RSS during the decode, decode tok/s;
 * 4. the towers of the full folder: one 768×768 image and 30 s of audio (load not included).
 *
 * Last line with --json: {disk_text_mb, disk_full_mb, quantize_peak_rss_mb, quantize_s,
 * rss_decode_mb, peak_rss_mb, start_to_first_token_ms, prompt_tokens, decode_tok_s, image_ms,
 * audio_30s_ms, cpu}. MB = 10^6 bytes for disk sizes (as file sizes are quoted), MiB for RSS.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { packageRoot } from '../src/node/default_model.js';
import { writeE2BCheckpoint } from './e2b_checkpoint.js';

const argv = process.argv.slice(2);
const flag = (name: string, def: string) => { const i = argv.indexOf(name); return i >= 0 && argv[i + 1] ? argv[i + 1] : def; };
const json = argv.includes('--json');
const dir = flag('--dir', process.env.GEMMA3N_BENCH_DIR ?? join(packageRoot(), '.cache'));
const tokens = Number(flag('--tokens', '256'));
const log = (s: string) => process.stderr.write(s + '\n');
const child = fileURLToPath(new URL('./footprint_child.js', import.meta.url));

function run(args: string[]): Record<string, number | string> {
  const out = execFileSync(process.execPath, ['--no-liftoff', child, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 26 });
  const lines = out.trim().split('\n');
  return JSON.parse(lines[lines.length - 1]) as Record<string, number | string>;
}

function folderBytes(d: string): number {
  return readdirSync(d).reduce((s, f) => s + statSync(join(d, f)).size, 0);
}

const bf16 = await writeE2BCheckpoint(join(dir, 'e2b-bf16'), { log });
const full = join(dir, 'e2b-packed'), text = join(dir, 'e2b-packed-text');
const statsFile = join(full, 'bench-quantize.json');
if (argv.includes('--requantize')) for (const d of [full, text]) rmSync(d, { recursive: true, force: true });
if (!existsSync(statsFile)) {
  log(`quantize ${bf16} → ${full} ...`);
  const q = run(['cli', 'quantize', '--model', bf16, '--out', full]);
  writeFileSync(statsFile, JSON.stringify(q));
}
const quant = JSON.parse(readFileSync(statsFile, 'utf8')) as { ms: number; peak_rss_mb: number };
if (!existsSync(join(text, 'config.json'))) {
  log(`quantize --text-only ${full} → ${text} ...`);
  run(['cli', 'quantize', '--model', full, '--out', text, '--text-only']);
}
const diskFull = folderBytes(full) - statSync(statsFile).size, diskText = folderBytes(text);

const prompt = 'Why is the sky blue?';
log('generate (warm-up) ...');
run(['generate', text, '4', prompt]);
log(`generate ${tokens} tokens ...`);
const gen = run(['generate', text, String(tokens), prompt]);
let media: Record<string, number | string> = { image_ms: NaN, audio_30s_ms: NaN };
if (!argv.includes('--no-media')) {
  log('towers: one image, 30 s of audio ...');
  media = run(['media', full]);
}

const MB = 1e6;
const r = {
  disk_text_mb: Math.round(diskText / MB), disk_full_mb: Math.round(diskFull / MB),
  quantize_peak_rss_mb: quant.peak_rss_mb, quantize_s: Math.round(quant.ms / 100) / 10,
  rss_decode_mb: gen.rss_decode_mb, peak_rss_mb: gen.peak_rss_mb,
  start_to_first_token_ms: gen.start_to_first_token_ms, loaded_ms: gen.loaded_ms, prompt_tokens: gen.prompt_tokens,
  decode_tok_s: gen.decode_tok_s, generated_tokens: gen.generated_tokens,
  image_ms: media.image_ms, audio_30s_ms: media.audio_30s_ms,
  kernels: gen.kernels, cpu: cpus()[0]?.model ?? 'unknown',
};
console.log(`\nE2B-shape checkpoint (synthetic weights), ${r.cpu}, WASM kernels 2 threads`);
console.log('| | this engine | llama.cpp Q4_0 | LiteRT-LM int4 |\n|---|---|---|---|');
console.log(`| packed folder, text only | ${(r.disk_text_mb / 1000).toFixed(2)} GB | 3.24 GB | — |`);
console.log(`| packed folder, text + image + audio | ${(r.disk_full_mb / 1000).toFixed(2)} GB | — | 2.97 GB |`);
console.log(`| quantize peak RSS | ${r.quantize_peak_rss_mb} MiB (${r.quantize_s} s) | | |`);
console.log(`| generate: peak RSS during a ${r.generated_tokens}-token decode | ${r.rss_decode_mb} MiB (process peak ${r.peak_rss_mb}) | | |`);
console.log(`| process start → first token (${r.prompt_tokens}-token prompt, warm cache) | ${r.start_to_first_token_ms} ms (model loaded at ${r.loaded_ms} ms) | | |`);
console.log(`| decode | ${r.decode_tok_s} tok/s | | |`);
console.log(`| one 768×768 image / 30 s of audio | ${r.image_ms} ms / ${r.audio_30s_ms} ms | | |`);
if (json) console.log(JSON.stringify(r));
process.exit(0);
