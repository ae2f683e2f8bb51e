/**
 * The package as people install it (issue 14): `npm pack`, then the tarball installed into an
 * empty project (dependencies only, from the npm cache: offline-safe), and used from
 *  - Node: the library (ensureDefaultModel, NodeFolder, createNodeWasmKernels, Gemma3n.load /
 *    generate / stream) and the `gemma3n` CLI through npx;
 *  - Deno: 'gemma3n-ts/deno' with the node_modules folder, and `npm:gemma3n-ts`;
 *  - a browser app bundled by Vite that imports 'gemma3n-ts' and runs the WASM kernels (the
 *    .wasm URLs resolved by the bundler; threads in a cross-origin-isolated page), in headless
 *    Chromium, held to the golden greedy continuation.
 * `npm test` builds first, so the pack skips the prepare script (--ignore-scripts).
 */
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
// @ts-expect-error plain JS helpers shared with the npm scripts
import { launchChromium } from '../../scripts/chromium.mjs';
// @ts-expect-error plain JS helpers shared with the npm scripts
import { startWebServer } from '../../scripts/web-server.mjs';

const run = promisify(execFile);
const ROOT = join(import.meta.dirname, '../..');
const GOLDEN_A = join(ROOT, 'test/golden/text-tiny-a');
const DENO = join(ROOT, 'node_modules/.bin/deno');
/** npm without the test runner's npm_* variables (they would point npm at this repo's config). */
const cleanEnv = (): NodeJS.ProcessEnv => Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.toLowerCase().startsWith('npm_')));

describe('the packed package, installed into an empty project', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'g3n-pack-'));
  const app = join(tmp, 'app');
  let tarball = '';
  let packed: { path: string; size: number }[] = [];
  let tarSize = 0;
  let installLog = '';

  beforeAll(async () => {
    const { stdout } = await run('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', tmp], { cwd: ROOT, env: cleanEnv(), maxBuffer: 1 << 26 });
    const info = (JSON.parse(stdout) as { filename: string; size: number; files: { path: string; size: number }[] }[])[0];
    tarball = join(tmp, info.filename);
    packed = info.files;
    tarSize = info.size;
    mkdirSync(app);
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'g3n-app', private: true, type: 'module' }));
    const r = await run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', tarball], { cwd: app, env: cleanEnv(), maxBuffer: 1 << 26 });
    installLog = r.stdout + r.stderr;
  }, 300_000);

  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it('ships compiled JS with .d.ts and maps, the .wasm kernels, bin, sources, README, LICENSE; no tests, goldens or benchmarks; ≤ 5 MB', () => {
    const paths = packed.map((f) => f.path);
    for (const p of [
      'package.json',
      'README.md',
      'LICENSE',
      'bin/gemma3n.js',
      'dist/src/index.js',
      'dist/src/index.d.ts',
      'dist/src/index.js.map',
      'dist/src/node/index.js',
      'dist/src/deno/index.js',
      'dist/src/browser/index.js',
      'src/index.ts',
    ]) {
      expect(paths, p).toContain(p);
    }
    for (const v of ['simd', 'relaxed', 'simd_mt', 'relaxed_mt']) {
      expect(paths).toContain(`build/kernels_${v}.wasm`);
      expect(paths).toContain(`dist/build/kernels_${v}.wasm`);
    }
    expect(
      paths.filter((p) => /^(test|bench|dist\/bench|dist\/web|dist\/test|web|scripts|assembly|\.ci)\//.test(p) || /golden|\.safetensors$/.test(p)),
    ).toEqual([]);
    expect(tarSize).toBeLessThanOrEqual(5 * 2 ** 20);
  });

  it('installs with its dependencies only, and npm prints no warning', () => {
    expect(installLog).not.toMatch(/npm warn/i);
    const installed = readdirSync(join(app, 'node_modules')).flatMap((d) =>
      d.startsWith('@') ? readdirSync(join(app, 'node_modules', d)).map((s) => `${d}/${s}`) : [d],
    );
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
      dependencies: Record<string, string>;
      devDependencies: Record<string, string>;
    };
    for (const d of Object.keys(pkg.dependencies)) expect(installed).toContain(d);
    for (const d of Object.keys(pkg.devDependencies)) expect(installed, `devDependency ${d} installed`).not.toContain(d);
  });

  let nodeResult: { ids: number[]; text: string; streamed: string; kernels: string; dir: string };

  it('Node: ensureDefaultModel, NodeFolder, createNodeWasmKernels, Gemma3n.load / generate / stream', async () => {
    writeFileSync(
      join(app, 'node-app.mjs'),
      `
      import { Gemma3n } from 'gemma3n-ts';
      import { NodeFolder, createNodeWasmKernels, ensureDefaultModel } from 'gemma3n-ts/node';
      const dir = await ensureDefaultModel();
      const kernels = await createNodeWasmKernels({ threads: 2 });
      const g3n = await Gemma3n.load(new NodeFolder(dir), { kernels });
      const messages = [{ role: 'user', content: 'Hello from an installed package' }];
      const r = await g3n.generate(messages, { maxTokens: 8, temperature: 0 });
      let streamed = '';
      for await (const piece of g3n.stream(messages, { maxTokens: 8, temperature: 0 })) streamed += piece;
      console.log(JSON.stringify({ ids: r.ids, text: r.text, streamed, kernels: kernels.name, dir }));
    `,
    );
    const { stdout } = await run(process.execPath, ['node-app.mjs'], { cwd: app, maxBuffer: 1 << 26 });
    nodeResult = JSON.parse(stdout.trim().split('\n').at(-1)!);
    expect(nodeResult.ids.length).toBe(8);
    expect(nodeResult.streamed).toBe(nodeResult.text);
    expect(nodeResult.kernels).toMatch(/^wasm-.*-2t/);
    expect(nodeResult.dir.startsWith(app)).toBe(false); // the cache directory, not the package
  });

  it('the gemma3n CLI through npx gives the same greedy ids', async () => {
    const { stdout } = await run(
      'npx',
      ['--no-install', 'gemma3n', 'generate', '--prompt', 'Hello from an installed package', '--max-tokens', '8', '--greedy', '--json'],
      { cwd: app, env: cleanEnv(), maxBuffer: 1 << 26 },
    );
    const json = JSON.parse(stdout.trim().split('\n').at(-1)!) as { generated_ids: number[]; text: string };
    expect(json.generated_ids).toEqual(nodeResult.ids);
    expect(json.text).toBe(nodeResult.text);
  });

  it("Deno: 'gemma3n-ts/deno' with node_modules and 'npm:gemma3n-ts' give the same greedy ids", async () => {
    writeFileSync(
      join(app, 'deno-app.ts'),
      `
      import { Gemma3n } from 'npm:gemma3n-ts';
      import { DenoFolder, createDenoWasmKernels } from 'gemma3n-ts/deno';
      const kernels = await createDenoWasmKernels({ threads: 2 });
      const g3n = await Gemma3n.load(new DenoFolder(Deno.args[0]), { kernels });
      const r = await g3n.generate([{ role: 'user', content: 'Hello from an installed package' }], { maxTokens: 8, temperature: 0 });
      kernels.dispose();
      console.log(JSON.stringify({ ids: r.ids, text: r.text, kernels: kernels.name }));
    `,
    );
    const env = { ...cleanEnv(), DENO_NO_UPDATE_CHECK: '1', DENO_DIR: join(tmp, 'deno-dir') };
    const { stdout } = await run(DENO, ['run', '--allow-read', '--allow-env', 'deno-app.ts', nodeResult.dir], { cwd: app, env, maxBuffer: 1 << 26 });
    const r = JSON.parse(stdout.trim().split('\n').at(-1)!) as { ids: number[]; text: string; kernels: string };
    expect(r.ids).toEqual(nodeResult.ids);
    expect(r.text).toBe(nodeResult.text);
    expect(r.kernels).toMatch(/^wasm-.*-2t/);
  });

  it('a browser app bundled by Vite runs the WASM kernels with threads (cross-origin isolated) and the golden greedy continuation', async () => {
    const web = join(app, 'web');
    mkdirSync(web);
    writeFileSync(join(web, 'index.html'), '<!doctype html><meta charset="utf-8"><title>g3n app</title><script type="module" src="./main.js"></script>\n');
    writeFileSync(
      join(web, 'main.js'),
      `
      import { Gemma3n, MemoryFolder, createBrowserWasmKernels } from 'gemma3n-ts';
      const files = new Map();
      for (const name of ['config.json', 'model.safetensors', 'generation.json']) {
        files.set(name, new Uint8Array(await (await fetch('/m/a/' + name)).arrayBuffer()));
      }
      const kernels = await createBrowserWasmKernels();
      const g3n = await Gemma3n.load(new MemoryFolder(files, 'text-tiny-a'), { kernels });
      const gen = JSON.parse(new TextDecoder().decode(files.get('generation.json')));
      const p = gen.prompts[0];
      const r = await g3n.generate({ ids: p.prompt_ids }, { maxTokens: p.generated_ids.length, temperature: 0 });
      globalThis.result = { ids: r.ids, want: p.generated_ids, kernels: kernels.name, isolated: crossOriginIsolated, cores: navigator.hardwareConcurrency };
    `,
    );
    const { build } = await import('vite');
    await build({ root: web, base: './', logLevel: 'warn', configFile: false, build: { outDir: join(web, 'dist'), target: 'es2022', assetsInlineLimit: 0 } });
    const assets = readdirSync(join(web, 'dist', 'assets'));
    for (const v of ['simd', 'relaxed', 'simd_mt', 'relaxed_mt'])
      expect(
        assets.some((a) => a.startsWith(`kernels_${v}-`) && a.endsWith('.wasm')),
        v,
      ).toBe(true);
    const server = await startWebServer({ root: join(web, 'dist'), mounts: { a: GOLDEN_A } });
    const browser = await launchChromium();
    try {
      const page = await browser.context.newPage();
      const errors: string[] = [];
      page.on('pageerror', (e: Error) => errors.push(e.message));
      await page.goto(`${server.url}index.html`);
      await page.waitForFunction(() => 'result' in globalThis, undefined, { timeout: 120_000 });
      const r = await page.evaluate(
        () => (globalThis as unknown as { result: { ids: number[]; want: number[]; kernels: string; isolated: boolean; cores: number } }).result,
      );
      expect(errors).toEqual([]);
      expect(r.isolated).toBe(true);
      expect(r.kernels).toMatch(new RegExp(`^wasm-.*-${Math.min(r.cores, 8)}t`));
      expect(r.ids).toEqual(r.want);
    } finally {
      await browser.close();
      await server.close();
    }
  });
});
