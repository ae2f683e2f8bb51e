/**
 * The chat page (web/index.html) in headless Chromium:
 *  - a model folder at a URL (no listing, as Hugging Face serves one): HEAD probes and HTTP Range
 *    reads, download and load progress, and a second visit that loads from the browser's Cache
 *    API without a single request for the model's files;
 *  - the same model as a packed int4 folder (`gemma3n quantize`) loads from a URL and replies;
 *  - the "demo model" button builds the embedded random-weight model in the page, a reply
 *    streams in, and a screenshot of it is written to .cache/screenshots/.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tinyRealVocabFolder } from '../helpers.js';
// @ts-expect-error plain JS helpers shared with the npm scripts
import { launchChromium } from '../../scripts/chromium.mjs';
// @ts-expect-error plain JS helpers shared with the npm scripts
import { buildWeb, startWebServer } from '../../scripts/web-server.mjs';

const run = promisify(execFile);
const ROOT = join(import.meta.dirname, '../..');
const FILES = ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json'];
export const SCREENSHOT = join(ROOT, '.cache/screenshots/page-demo-reply.png');

describe('chat page (headless chromium)', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'gemma3n-page-'));
  const tiny = join(tmp, 'tiny');
  const requests: { method?: string; url?: string; range?: string }[] = [];
  let server: { url: string; close(): Promise<void> };
  let browser: { context: { newPage(): Promise<Page> }; close(): Promise<void> };

  beforeAll(async () => {
    const folder = tinyRealVocabFolder();
    mkdirSync(tiny);
    for (const name of FILES) {
      const src = await folder.open(name);
      writeFileSync(join(tiny, name), await src.read(0, src.size));
    }
    // The same model as a packed int4 folder (`gemma3n quantize`), as a user would publish it.
    await run(process.execPath, [join(ROOT, 'bin/gemma3n.js'), 'quantize', '--model', tiny, '--out', join(tmp, 'tinyq')], { maxBuffer: 1 << 26 });
    await buildWeb(join(tmp, 'web')); // not dist/web: browser.test.ts may be serving it right now
    server = await startWebServer({
      root: join(tmp, 'web'),
      mounts: { tiny, tinyq: join(tmp, 'tinyq') },
      onRequest: (r: { method?: string; url?: string; range?: string }) => requests.push(r),
    });
    browser = await launchChromium();
  }, 180_000);

  afterAll(async () => {
    await browser?.close();
    await server?.close();
    rmSync(tmp, { recursive: true, force: true });
  });

  const modelRequests = () => requests.filter((r) => r.url?.startsWith('/m/tiny/'));

  it('loads a folder from a URL with Range reads; a second visit loads it from the browser cache with no request', async () => {
    const page = await browser.context.newPage();
    const url = `${server.url}index.html?url=${encodeURIComponent(`${server.url}m/tiny/`)}`;
    try {
      requests.length = 0;
      await page.goto(url);
      await page.waitForSelector('#status[data-state=ready]', { timeout: 120_000 });
      const first = await page.evaluate(() => ({
        downloaded: document.getElementById('status')!.dataset.downloaded,
        text: document.getElementById('status')!.textContent,
      }));
      const sizes = FILES.map((f) => statSync(join(tiny, f)).size);
      const total = sizes.reduce((a, b) => a + b, 0);
      // Every byte of the four files exactly once over the network (a chunk the loader comes
      // back to is served from memory or the cache, never fetched twice).
      expect(Number(first.downloaded)).toBe(total);
      expect(first.text).toMatch(/downloaded [\d.]+ MB, [\d.]+ MB from the browser cache/);
      const reqs = modelRequests();
      expect(reqs.some((r) => r.method === 'HEAD' && r.url === '/m/tiny/model.safetensors')).toBe(true);
      expect(reqs.some((r) => r.url?.includes('?list'))).toBe(false); // probed, not listed
      const ranged = reqs.filter((r) => r.method === 'GET' && r.url === '/m/tiny/model.safetensors');
      expect(ranged.length).toBeGreaterThan(0);
      for (const r of ranged) expect(r.range).toMatch(/^bytes=\d+-\d+$/);

      // Second visit: a new page load of the same URL.
      requests.length = 0;
      await page.reload();
      await page.waitForSelector('#status[data-state=ready]', { timeout: 120_000 });
      const second = await page.evaluate(() => ({ ...document.getElementById('status')!.dataset }));
      expect(modelRequests()).toEqual([]);
      expect(Number(second.downloaded)).toBe(0);
      expect(Number(second.fromCache)).toBeGreaterThanOrEqual(total);
      // And the model works: a reply comes back.
      await page.fill('#max-tokens', '6');
      await page.fill('#input', 'Hello');
      await page.press('#input', 'Enter');
      await page.waitForSelector('.msg.model[data-state=done]', { timeout: 60_000 });
      expect((await page.textContent('.msg.model'))!.length).toBeGreaterThan(0);
    } finally {
      await page.close();
    }
  }, 300_000);

  it('loads a packed int4 folder (gemma3n quantize) from a URL and replies', async () => {
    const page = await browser.context.newPage();
    try {
      requests.length = 0;
      await page.goto(`${server.url}index.html?url=${encodeURIComponent(`${server.url}m/tinyq/`)}`);
      await page.waitForSelector('#status[data-state=ready]', { timeout: 120_000 });
      expect(await page.textContent('#status')).toMatch(/Loaded .*m\/tinyq\/.* 5 layers, hidden 32, text only; kernels: wasm-/);
      const packed = readdirSync(join(tmp, 'tinyq')).filter((f) => f.endsWith('.safetensors'));
      expect(packed.length).toBeGreaterThan(0);
      expect(requests.some((r) => r.method === 'GET' && packed.some((f) => r.url === `/m/tinyq/${f}`) && /^bytes=/.test(r.range ?? ''))).toBe(true);
      await page.fill('#max-tokens', '6');
      await page.fill('#input', 'Hello');
      await page.press('#input', 'Enter');
      await page.waitForSelector('.msg.model[data-state=done]', { timeout: 60_000 });
      expect((await page.textContent('.msg.model'))!.length).toBeGreaterThan(0);
      expect(await page.locator('.msg.note').count()).toBe(0); // no "Generation failed"
    } finally {
      await page.close();
    }
  }, 300_000);

  it('demo model: built in the page, a reply streams in (screenshot in .cache/screenshots/)', async () => {
    const page = await browser.context.newPage();
    try {
      await page.setViewportSize({ width: 1000, height: 900 });
      await page.goto(`${server.url}index.html`);
      await page.click('#demo');
      await page.waitForSelector('#status[data-state=ready]', { timeout: 180_000 });
      expect(await page.textContent('#status')).toMatch(
        /Loaded demo model \(random weights\) .* 10 layers, hidden 256, text only; kernels: wasm-.*\(cross-origin isolated\)/,
      );
      await page.fill('#max-tokens', '24');
      await page.evaluate(() => {
        const g = globalThis as unknown as { lengths: number[] };
        g.lengths = [];
        new MutationObserver(() => {
          const m = document.querySelector('.msg.model');
          if (m && m.getAttribute('data-state') === 'streaming') g.lengths.push(m.textContent!.length);
        }).observe(document.getElementById('log')!, { subtree: true, characterData: true, childList: true });
      });
      await page.fill('#input', 'Tell me about Gemma 3n');
      await page.press('#input', 'Enter');
      await page.waitForSelector('.msg.model[data-state=done]', { timeout: 120_000 });
      const reply = (await page.textContent('.msg.model'))!;
      const lengths = await page.evaluate(() => (globalThis as unknown as { lengths: number[] }).lengths);
      expect(new Set(lengths.filter((n) => n > 0)).size).toBeGreaterThan(3); // streamed, not all at once
      expect(lengths.at(-1)).toBe(reply.length);
      mkdirSync(join(ROOT, '.cache/screenshots'), { recursive: true });
      await page.screenshot({ path: SCREENSHOT });
      const png = readFileSync(SCREENSHOT);
      expect(png.subarray(1, 4).toString()).toBe('PNG');
      expect(png.byteLength).toBeGreaterThan(10_000);
    } finally {
      await page.close();
    }
  }, 300_000); // generating 240 MB of random weights in the page takes a while on a busy machine
});
