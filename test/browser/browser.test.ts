/**
 * The browser suite, run from `npm test`: the page (web/, built by Vite into dist/web) in
 * headless Chromium (the @sparticuz/chromium devDependency, see scripts/chromium.mjs) driven by
 * playwright-core, served cross-origin isolated by
 * scripts/web-server.mjs on 127.0.0.1.
 *  - golden text-tiny-a/b in the page (TS kernels, and WASM kernels with worker threads);
 *  - the chat page loads the tiny real-vocabulary model, a message streams text back, an
 *    image attached to a text-only model gets a clear note;
 *  - seeded sampling in the page equals Node's ids and text;
 *  - `trace` in Node, Deno and Chromium writes byte-identical files (text-tiny-a and -b, Gemma 4 text-tiny-a).
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Gemma3n } from '../../src/engine/engine.js';
import { tinyRealVocabFolder } from '../helpers.js';
// @ts-expect-error plain JS helpers shared with the npm scripts
import { launchChromium } from '../../scripts/chromium.mjs';
// @ts-expect-error plain JS helpers shared with the npm scripts
import { buildWeb, startWebServer } from '../../scripts/web-server.mjs';
// @ts-expect-error plain JS helpers shared with the npm scripts
import { traceInBrowser } from '../../scripts/trace-browser.mjs';

const run = promisify(execFile);
const ROOT = join(import.meta.dirname, '../..');
const GOLDEN = join(ROOT, 'test/golden');
const SAMPLING = { maxTokens: 20, temperature: 0.9, topK: 50, topP: 0.95, seed: 5 };

interface Harness {
  golden(
    base: string,
    kernels: string,
  ): Promise<{
    kernels: string;
    crossOriginIsolated: boolean;
    rows: { seq: number; name: string; ok: boolean; maxAbsDiff: number; tolerance: number; goldenName: string | null }[];
    greedy: { got: number[]; want: number[] }[];
  }>;
  generate(base: string, content: string, opts: typeof SAMPLING): Promise<{ ids: number[]; text: string; pieces: number }>;
}
declare const gemma3nHarness: Harness;

describe('browser (headless chromium)', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'gemma3n-browser-'));
  let server: { url: string; close(): Promise<void> };
  let browser: { context: { newPage(): Promise<Page> }; close(): Promise<void> };
  let page: Page;

  beforeAll(async () => {
    const tiny = join(tmp, 'tiny');
    const folder = tinyRealVocabFolder();
    await run('mkdir', ['-p', tiny]);
    for (const name of ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json']) {
      const src = await folder.open(name);
      writeFileSync(join(tiny, name), await src.read(0, src.size));
    }
    await buildWeb();
    server = await startWebServer({ mounts: { a: join(GOLDEN, 'text-tiny-a'), b: join(GOLDEN, 'text-tiny-b'), tiny } });
    browser = await launchChromium();
    page = await browser.context.newPage();
    page.on('pageerror', (e) => console.error('page error:', e.message));
    await page.goto(`${server.url}harness.html`);
    await page.waitForFunction(() => 'gemma3nHarness' in globalThis);
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await server?.close();
    rmSync(tmp, { recursive: true, force: true });
  });

  for (const [mount, name] of [
    ['a', 'text-tiny-a'],
    ['b', 'text-tiny-b'],
  ]) {
    for (const kernels of ['ts', 'wasm']) {
      it(`golden ${name} in the page, ${kernels} kernels: every tensor within tolerance, greedy ids exact`, async () => {
        const r = await page.evaluate(({ base, k }) => gemma3nHarness.golden(base, k), { base: `/m/${mount}/`, k: kernels });
        expect(r.crossOriginIsolated).toBe(true);
        if (kernels === 'wasm') expect(r.kernels).toMatch(/^wasm-.*-(\d+)t/);
        const compared = r.rows.filter((x) => x.goldenName !== null);
        expect(compared.length).toBe(10); // 5 tensors x 2 sequences
        for (const x of compared) expect(x.maxAbsDiff, `seq ${x.seq} ${x.name}`).toBeLessThanOrEqual(x.tolerance);
        for (const g of r.greedy) expect(g.got).toEqual(g.want);
      });
    }
  }

  it('seeded sampling in the page equals Node: same ids, same text', async () => {
    const web = await page.evaluate((o) => gemma3nHarness.generate('/m/tiny/', 'Hello from Chromium', o), SAMPLING);
    const node = await (await Gemma3n.load(tinyRealVocabFolder())).generate([{ role: 'user', content: 'Hello from Chromium' }], SAMPLING);
    expect(web.ids).toEqual(node.ids);
    expect(web.text).toBe(node.text);
    expect(web.pieces).toBeGreaterThan(0);
  });

  it('chat page: loads the model from ?model=, streams a reply, explains an image the model cannot see', async () => {
    const chat = await browser.context.newPage();
    try {
      await chat.goto(`${server.url}index.html?model=/m/tiny/`);
      await chat.waitForSelector('#status[data-state=ready]', { timeout: 60_000 });
      expect(await chat.textContent('#status')).toMatch(/kernels: wasm-.*\(cross-origin isolated\)/);
      await chat.fill('#max-tokens', '24');
      // Record the reply's length at each change while it streams.
      await chat.evaluate(() => {
        const g = globalThis as unknown as { lengths: number[] };
        g.lengths = [];
        new MutationObserver(() => {
          const m = document.querySelector('.msg.model');
          if (m && m.getAttribute('data-state') === 'streaming') g.lengths.push(m.textContent!.length);
        }).observe(document.getElementById('log')!, { subtree: true, characterData: true, childList: true });
      });
      await chat.setInputFiles('#image', { name: 'cat.png', mimeType: 'image/png', buffer: Buffer.from([137, 80, 78, 71]) });
      await chat.waitForFunction(() => document.getElementById('attachments')!.textContent!.includes('cat.png'));
      await chat.fill('#input', 'Hello! What is in this picture?');
      await chat.press('#input', 'Enter');
      await chat.waitForSelector('.msg.model[data-state=done]', { timeout: 60_000 });
      const reply = await chat.textContent('.msg.model');
      expect(reply!.length).toBeGreaterThan(0);
      expect(await chat.textContent('.msg.note')).toMatch(/no vision tower.*cat\.png was not sent/);
      // Streamed: the text grew in several steps before the reply was done.
      const lengths = await chat.evaluate(() => (globalThis as unknown as { lengths: number[] }).lengths);
      expect(new Set(lengths.filter((n) => n > 0)).size).toBeGreaterThan(3);
      expect(lengths.at(-1)).toBe(reply!.length);
    } finally {
      await chat.close();
    }
  });

  for (const name of ['text-tiny-a', 'text-tiny-b', 'gemma4/text-tiny-a']) {
    it(`trace: Node, Deno and Chromium write byte-identical files (${name}${name.startsWith('gemma4') ? ', --all --steps 2' : ''})`, async () => {
      const ids = name === 'text-tiny-b' ? '17,300,2,99,383,5' : '243,106,75,367,473,1,511';
      // Gemma 4: every intermediate (the layers' submodule outputs) and two decode steps too.
      const extra = name.startsWith('gemma4') ? ['--all', '--steps', '2'] : [];
      const args = ['--model', join(GOLDEN, name), '--ids', ids, ...extra];
      const file = name.replace(/\//g, '-');
      const nodeOut = join(tmp, `${file}.node.safetensors`),
        denoOut = join(tmp, `${file}.deno.safetensors`);
      await run(process.execPath, [join(ROOT, 'bin/gemma3n.js'), 'trace', ...args, '--out', nodeOut]);
      await run('npm', ['run', '-s', 'trace:deno', '--', ...args, '--out', denoOut], { cwd: ROOT });
      const { bytes } = await traceInBrowser(
        { model: join(GOLDEN, name), ids: ids.split(',').map(Number), ...(extra.length ? { all: true, steps: 2 } : {}) },
        { page: await browser.context.newPage() },
      );
      const node = readFileSync(nodeOut),
        deno = readFileSync(denoOut);
      expect(node.byteLength).toBeGreaterThan(1000);
      expect(Buffer.compare(deno, node), 'Deno vs Node').toBe(0);
      expect(Buffer.compare(Buffer.from(bytes), node), 'Chromium vs Node').toBe(0);
    });
  }
});
