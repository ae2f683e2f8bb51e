// Headless Chromium through playwright-core, with a browser that `npm ci` installs: the
// devDependency @sparticuz/chromium ships a brotli-packed Chromium (headless shell, Linux x64)
// with the few shared libraries it needs (NSS, expat) and a font. It is unpacked once into the
// user's cache directory (see src/node/cache_dir.ts: $GEMMA3N_CACHE_DIR, else
// $XDG_CACHE_HOME/gemma3n-ts, else ~/.cache/gemma3n-ts), atomically, so concurrent runs are safe.
// CHROMIUM=/path/to/chromium uses another browser (e.g. Debian's /usr/bin/chromium).
// Playwright never downloads a browser here.
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { homedir, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { brotliDecompressSync } from 'node:zlib';

/** Same rule as src/node/cache_dir.ts (kept dependency-free: scripts run before dist/ exists). */
function cacheDir() {
  if (process.env.GEMMA3N_CACHE_DIR) return process.env.GEMMA3N_CACHE_DIR;
  const base = process.env.XDG_CACHE_HOME || join(homedir(), '.cache');
  return join(base, 'gemma3n-ts');
}

/** Files of a ustar archive (regular files and folders only; that is all these archives hold). */
function untar(bytes, outDir) {
  const text = (o, n) => {
    const b = bytes.subarray(o, o + n);
    const z = b.indexOf(0);
    return new TextDecoder().decode(z < 0 ? b : b.subarray(0, z));
  };
  for (let off = 0; off + 512 <= bytes.length; ) {
    const name = text(off, 100);
    if (!name) break; // two zero blocks end the archive
    const size = parseInt(text(off + 124, 12).trim() || '0', 8);
    const type = String.fromCharCode(bytes[off + 156] || 48);
    const prefix = text(off + 345, 155);
    const rel = (prefix ? `${prefix}/` : '') + name;
    if (rel.split('/').includes('..') || rel.startsWith('/')) throw new Error(`@sparticuz/chromium: unsafe path in archive: ${rel}`);
    const dest = join(outDir, rel);
    if (type === '5') mkdirSync(dest, { recursive: true });
    else if (type === '0') {
      mkdirSync(dirname(dest), { recursive: true });
      writeFileSync(dest, bytes.subarray(off + 512, off + 512 + size));
    }
    off += 512 + Math.ceil(size / 512) * 512;
  }
}

/** The packaged Chromium, unpacked into the cache on first use; returns its paths. */
export function packagedChromium() {
  const require = createRequire(import.meta.url);
  let entry;
  try {
    entry = require.resolve('@sparticuz/chromium');
  } catch {
    throw new Error('headless Chromium: the devDependency @sparticuz/chromium is not installed (run `npm ci`), or set CHROMIUM=/path/to/chromium');
  }
  let root = dirname(entry);
  while (!existsSync(join(root, 'package.json')) || JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).name !== '@sparticuz/chromium')
    root = dirname(root);
  const { version } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    throw new Error(
      `headless Chromium: @sparticuz/chromium ships Linux x64 only (this is ${process.platform}/${process.arch}); set CHROMIUM=/path/to/chromium`,
    );
  }
  const dir = join(cacheDir(), `chromium-${version}`);
  const paths = {
    executable: join(dir, 'chromium'),
    libs: [join(dir, 'al2023', 'lib'), join(dir, 'swiftshader')],
    fontconfig: join(dir, 'fonts.conf'),
    version,
  };
  if (existsSync(join(dir, 'complete'))) return paths;
  mkdirSync(dirname(dir), { recursive: true });
  // Unpack into a private folder, then rename it into place: a second process either finds
  // the finished folder or loses the rename race and drops its own copy.
  const tmp = mkdtempSync(`${dir}.tmp-`);
  try {
    const bin = join(root, 'bin');
    writeFileSync(join(tmp, 'chromium'), brotliDecompressSync(readFileSync(join(bin, 'chromium.br'))));
    chmodSync(join(tmp, 'chromium'), 0o755);
    untar(brotliDecompressSync(readFileSync(join(bin, 'al2023.tar.br'))), join(tmp, 'al2023'));
    untar(brotliDecompressSync(readFileSync(join(bin, 'swiftshader.tar.br'))), join(tmp, 'swiftshader'));
    untar(brotliDecompressSync(readFileSync(join(bin, 'fonts.tar.br'))), join(tmp, 'fonts'));
    // The package's own fonts.conf points at /tmp/fonts; ours points at the unpacked folder.
    writeFileSync(
      join(tmp, 'fonts.conf'),
      `<?xml version="1.0"?>\n<!DOCTYPE fontconfig SYSTEM "fonts.dtd">\n<fontconfig><dir>${join(dir, 'fonts', 'fonts')}</dir><cachedir>${join(dir, 'fontconfig-cache')}</cachedir></fontconfig>\n`,
    );
    writeFileSync(join(tmp, 'complete'), `${version}\n`);
    try {
      renameSync(tmp, dir);
    } catch (e) {
      if (!existsSync(join(dir, 'complete'))) throw e;
      rmSync(tmp, { recursive: true, force: true }); // another process finished first
    }
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
  return paths;
}

/** Which browser runs: CHROMIUM=/path if set, else the packaged one. */
export function chromiumPath() {
  const p = process.env.CHROMIUM;
  if (p) {
    if (!existsSync(p)) throw new Error(`CHROMIUM=${p}: no such file`);
    return p;
  }
  return packagedChromium().executable;
}

/** A fresh headless browser context with its own throw-away profile; close() removes it. */
export async function launchChromium() {
  const { chromium } = await import('playwright-core');
  let executablePath = process.env.CHROMIUM,
    env = process.env;
  if (!executablePath) {
    const p = packagedChromium();
    executablePath = p.executable;
    const ld = [...p.libs, ...(process.env.LD_LIBRARY_PATH ? [process.env.LD_LIBRARY_PATH] : [])].join(':');
    env = { ...process.env, LD_LIBRARY_PATH: ld, FONTCONFIG_FILE: p.fontconfig };
  } else if (!existsSync(executablePath)) {
    throw new Error(`CHROMIUM=${executablePath}: no such file`);
  }
  const profile = mkdtempSync(join(tmpdir(), 'gemma3n-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath,
    env,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  return {
    context,
    async close() {
      await context.close().catch(() => {});
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
