/**
 * `gemma3n serve` as users run it: the compiled CLI in a child process on an ephemeral port
 * (it prints "listening on http://HOST:PORT" on stderr), answering requests, and exiting 0
 * on SIGTERM after finishing the request in flight.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GOLDEN, tinyRealVocabFolder } from '../helpers.js';
import { httpRequest, openStream, parseSse, postJson, sseText, waitFor } from '../server/helpers.js';

const BIN = join(GOLDEN, '..', '..', 'bin', 'gemma3n.js');
let dir: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'g3n-serve-'));
  const folder = tinyRealVocabFolder();
  for (const name of ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json']) {
    const src = await folder.open(name);
    writeFileSync(join(dir, name), await src.read(0, src.size));
  }
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Child {
  proc: ChildProcess;
  stderr: () => string;
  exit: Promise<number | null>;
}

function run(args: string[]): Child {
  const proc = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  proc.stderr!.on('data', (c: Buffer) => {
    err += c.toString();
  });
  proc.stdout!.resume();
  const exit = new Promise<number | null>((r) => proc.on('exit', (code) => r(code)));
  return { proc, stderr: () => err, exit };
}

describe('gemma3n serve', () => {
  it('serves on an ephemeral port and exits 0 on SIGTERM after the running request', async () => {
    const child = run(['serve', '--model', dir, '--port', '0', '--max-queue', '2']);
    try {
      await waitFor(() => /listening on http:\/\/127\.0\.0\.1:\d+/.test(child.stderr()), 60_000, `the server to listen (stderr: ${child.stderr()})`);
      const url = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(child.stderr())![1];
      const models = await httpRequest(`${url}/v1/models`, 'GET');
      expect(models.json.data[0].id).toBe(dir.split('/').pop());
      const r = await postJson(`${url}/v1/chat/completions`, { messages: [{ role: 'user', content: 'Hello' }], max_tokens: 5, temperature: 0 });
      expect(r.status).toBe(200);
      expect(r.json.usage.completion_tokens).toBeGreaterThan(0);
      // SIGTERM mid-stream: the stream completes, then the process exits 0.
      const s = openStream(`${url}/v1/chat/completions`, { messages: [{ role: 'user', content: 'Go on' }], max_tokens: 30, temperature: 0, stream: true });
      await waitFor(() => s.received().includes('"content"'), 30_000, 'the stream to start');
      child.proc.kill('SIGTERM');
      const events = parseSse(await s.done);
      expect(events[events.length - 1]).toBe('[DONE]');
      expect(sseText(events).text.length).toBeGreaterThan(0);
      const code = await Promise.race([child.exit, new Promise((r) => setTimeout(() => r('timeout'), 15_000))]);
      expect(code).toBe(0);
      expect(child.stderr()).toMatch(/SIGTERM: shutting down/);
      expect(child.stderr()).toMatch(/POST \/v1\/chat\/completions 200 5 tokens/);
    } finally {
      child.proc.kill('SIGKILL');
    }
  });

  it('bad flags are usage errors (exit 2)', async () => {
    const child = run(['serve', '--model', dir, '--port', '70000']);
    const code = await Promise.race([child.exit, new Promise((r) => setTimeout(() => r('timeout'), 15_000))]);
    expect(code).toBe(2);
    expect(child.stderr()).toMatch(/--port: expected 0\.\.65535/);
  });
});
