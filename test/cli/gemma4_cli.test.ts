/**
 * The compiled CLI on Gemma 4 folders, as users run it: `generate --json` prints the golden
 * greedy continuation, `generate --explain` shows Gemma 4's per-layer head sizes, and
 * `gemma3n serve` answers a chat completion (golden text-tiny-a plus a tiny Gemma 4 tokenizer).
 */
import { execFile, spawn } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { GOLDEN } from '../helpers.js';
import { tinyGemma4TokenizerJson } from '../engine/tiny_gemma4_tokenizer.js';
import { postJson, waitFor } from '../server/helpers.js';

const run = promisify(execFile);
const BIN = join(GOLDEN, '..', '..', 'bin', 'gemma3n.js');
const A = join(GOLDEN, 'gemma4', 'text-tiny-a');

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [BIN, ...args], { maxBuffer: 1 << 26 });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

const tmp = mkdtempSync(join(tmpdir(), 'g4-cli-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('gemma3n CLI on Gemma 4', () => {
  it('generate --json prints the golden greedy continuation (both prompts, WASM and TS kernels)', async () => {
    const gen = JSON.parse(readFileSync(join(A, 'generation.json'), 'utf8')) as { prompts: { prompt_ids: number[]; generated_ids: number[] }[] };
    for (const [i, p] of gen.prompts.entries()) {
      const r = await cli([
        'generate',
        '--model',
        A,
        '--ids',
        p.prompt_ids.join(','),
        '--max-tokens',
        '16',
        '--greedy',
        '--json',
        '--kernels',
        i === 0 ? 'ts' : 'wasm',
      ]);
      expect(r.stderr).not.toMatch(/Error/);
      expect(r.code).toBe(0);
      const last = JSON.parse(r.stdout.trim().split('\n').pop()!) as { generated_ids: number[]; generated_tokens: number; stop_reason: string };
      expect(last.generated_ids).toEqual(p.generated_ids);
      expect(last.stop_reason).toBe('max_tokens');
    }
  });

  it('generate --explain: sliding layers with 16-wide heads, full ones with 32, shared K/V from layers 5 and 4; slicing flags refused', async () => {
    const r = await cli(['generate', '--model', A, '--ids', '2,17,33', '--max-tokens', '1', '--kernels', 'ts', '--explain']);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/layer +0 sliding attends +3 keys, own K\/V +head 16 +FFN dense 192/);
    expect(r.stderr).toMatch(/layer +4 full +attends +3 keys, own K\/V +head 32 +FFN dense 192/);
    expect(r.stderr).toMatch(/layer +8 sliding attends +3 keys, K\/V shared from layer 5 +head 16 +FFN dense 384/);
    expect(r.stderr).toMatch(/layer +9 full +attends +3 keys, K\/V shared from layer 4 +head 32 +FFN dense 384/);
    const bad = await cli(['generate', '--model', A, '--ids', '2,17', '--preset', 'E2B']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/MatFormer slicing is a Gemma 3n feature/);
  });

  it('inspect --json: the Gemma 4 layout the golden README gives (two head sizes, double-wide MLP, KV sources, p-RoPE)', async () => {
    const r = await cli(['inspect', '--model', A, '--json']);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout) as { model_type: string; parameters: { ple: number; audio: number }; text: Record<string, unknown> };
    expect(j.model_type).toBe('gemma4');
    expect(j.parameters.ple).toBe(512 * 10 * 16);
    expect(j.parameters.audio).toBe(0);
    expect(j.text).toMatchObject({
      layers: 10,
      hidden: 48,
      heads: 4,
      kv_heads: 1,
      head_dim: 16,
      global_head_dim: 32,
      layer_types: 'ssssFssssF',
      kv_shared_layers: 4,
      kv_sources: [0, 1, 2, 3, 4, 5, 5, 5, 5, 4],
      ffn: [192, 192, 192, 192, 192, 192, 384, 384, 384, 384],
      softcap: 30,
    });
    expect(j.text.rope).toEqual({ sliding: { type: 'default', theta: 1e4 }, full: { type: 'proportional', theta: 1e6, partial_rotary_factor: 0.25 } });
    const mm = JSON.parse((await cli(['inspect', '--model', join(GOLDEN, 'gemma4', 'multimodal'), '--json'])).stdout) as {
      has_audio: boolean;
      has_vision: boolean;
      parameters: { audio: number; vision: number };
    };
    expect(mm.has_audio && mm.has_vision).toBe(true);
    expect(mm.parameters.audio).toBeGreaterThan(0);
    expect(mm.parameters.vision).toBeGreaterThan(0);
  });

  it('gemma3n serve answers a chat completion on a Gemma 4 folder', async () => {
    const dir = join(tmp, 'tiny-a-chat');
    mkdirSync(dir);
    for (const f of ['config.json', 'model.safetensors']) copyFileSync(join(A, f), join(dir, f));
    writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(tinyGemma4TokenizerJson()));
    const proc = spawn(process.execPath, [BIN, 'serve', '--model', dir, '--port', '0', '--kernels', 'ts'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    proc.stderr!.on('data', (c: Buffer) => {
      err += c.toString();
    });
    proc.stdout!.resume();
    try {
      await waitFor(() => /listening on http:\/\/127\.0\.0\.1:\d+/.test(err), 60_000, `the server to listen (stderr: ${err})`);
      const url = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(err)![1];
      const r = await postJson(`${url}/v1/chat/completions`, {
        messages: [
          { role: 'system', content: 'Be brief.' },
          { role: 'user', content: 'Hello' },
        ],
        max_tokens: 5,
        temperature: 0,
      });
      expect(r.status).toBe(200);
      expect(r.json.object).toBe('chat.completion');
      // <bos> <|turn> system \n "Be brief." <turn|> \n <|turn> user \n "Hello" <turn|> \n <|turn> model \n, one id per character here.
      expect(r.json.usage.prompt_tokens).toBe(1 + (1 + 6 + 1 + 9 + 2) + (1 + 4 + 1 + 5 + 2) + (1 + 5 + 1));
      expect(r.json.usage.completion_tokens).toBeGreaterThan(0);
      expect(typeof r.json.choices[0].message.content).toBe('string');
    } finally {
      proc.kill('SIGKILL');
    }
  });
});
