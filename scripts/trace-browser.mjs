// `npm run trace:browser -- --model DIR --ids 2,105,9 --out FILE.safetensors`: the work of
// `gemma3n trace` inside headless Chromium. Builds the page (dist/web), serves the model
// folder's files to it, runs the runtime-neutral trace core there (src/trace/run.ts,
// TS kernels) and writes the bytes the page posts back: the same file as the Node command.
import { writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { parseTraceArgs } from '../dist/src/trace/run.js';
import { launchChromium } from './chromium.mjs';
import { buildWeb, startWebServer } from './web-server.mjs';

/** Traces in the page; returns the file bytes. `page` is reused when given (tests). */
export async function traceInBrowser(args, { page, log = () => {} } = {}) {
  const dir = resolve(args.model ?? (await import('../dist/src/node/default_model.js')).defaultModelDir());
  let result;
  const server = await startWebServer({
    mounts: { model: dir },
    onUpload: (_k, bytes) => {
      result = bytes;
    },
  });
  const browser = page ? null : await launchChromium();
  try {
    const p = page ?? (await browser.context.newPage());
    await p.goto(`${server.url}harness.html`);
    await p.waitForFunction(() => 'gemma3nHarness' in globalThis);
    const info = await p.evaluate(
      ({ ids, weights, all, steps }) => globalThis.gemma3nHarness.trace('/m/model/', ids, weights, '/upload/trace', { all, steps }),
      { ids: args.ids, weights: args.weights, all: args.all, steps: args.steps },
    );
    log(`traced in Chromium in ${info.ms.toFixed(0)} ms`);
    if (!result || result.byteLength !== info.bytes) throw new Error('the page did not post the trace back');
    return { bytes: result, tensors: info.tensors };
  } finally {
    await browser?.close();
    await server.close();
  }
}

if (process.argv[1] && resolve(process.argv[1]) === resolve(new URL(import.meta.url).pathname)) {
  try {
    const args = parseTraceArgs(process.argv.slice(2));
    if (args.model === undefined) await (await import('../dist/src/node/default_model.js')).ensureDefaultModel((m) => console.error(m));
    await buildWeb();
    const { bytes, tensors } = await traceInBrowser(args, { log: (m) => console.error(m) });
    await writeFile(args.out, bytes);
    console.error(`wrote ${tensors} tensors to ${args.out} (Chromium)`);
  } catch (e) {
    console.error(`gemma3n trace (browser): ${e.message}`);
    process.exit(1);
  }
}
