// A small static server for the browser page and its tests (Node, no dependencies):
//  - serves dist/web (the Vite build) with COOP/COEP, so pages are cross-origin isolated;
//  - mounts folders under /m/<name>/: GET ?list gives { file: size } of the folder's files,
//    GET of a file honours Range (the page reads checkpoints by offset);
//  - POST /upload/<key> hands the body to onUpload(key, bytes) (the page's trace results);
//  - onRequest({ method, url, range }) sees every request (tests count what the page fetched).
import { createReadStream } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { createServer } from 'node:http';
import { extname, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

export const WEB_DIST = fileURLToPath(new URL('../dist/web/', import.meta.url));

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript',
  '.mjs': 'text/javascript',
  '.css': 'text/css',
  '.wasm': 'application/wasm',
  '.json': 'application/json',
  '.map': 'application/json',
};
const ISOLATION = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
  'Cross-Origin-Resource-Policy': 'same-origin',
  'Cache-Control': 'no-store',
};

/** A path under `dir`, or null if the URL path escapes it. */
function inside(dir, rel) {
  const p = resolve(dir, '.' + sep + decodeURIComponent(rel));
  return p === resolve(dir) || p.startsWith(resolve(dir) + sep) ? p : null;
}

async function sendFile(req, res, path) {
  let st;
  try {
    st = await stat(path);
  } catch {
    st = null;
  }
  if (!st?.isFile()) {
    res.writeHead(404, ISOLATION).end('not found');
    return;
  }
  const headers = { ...ISOLATION, 'Content-Type': TYPES[extname(path)] ?? 'application/octet-stream', 'Accept-Ranges': 'bytes' };
  const m = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
  if (m) {
    const start = Number(m[1]),
      end = m[2] ? Math.min(Number(m[2]), st.size - 1) : st.size - 1;
    if (start > end || start >= st.size) {
      res.writeHead(416, { ...headers, 'Content-Range': `bytes */${st.size}` }).end();
      return;
    }
    res.writeHead(206, { ...headers, 'Content-Length': end - start + 1, 'Content-Range': `bytes ${start}-${end}/${st.size}` });
    createReadStream(path, { start, end }).pipe(res);
    return;
  }
  res.writeHead(200, { ...headers, 'Content-Length': st.size });
  createReadStream(path).pipe(res);
}

/**
 * Starts the server on 127.0.0.1 (port 0 = any free port).
 * @param {{ root?: string, mounts?: Record<string, string>, port?: number, host?: string, onUpload?: (key: string, bytes: Uint8Array) => void, onRequest?: (r: { method?: string, url?: string, range?: string }) => void }} opts
 * @returns {Promise<{ url: string, close: () => Promise<void> }>}
 */
export async function startWebServer(opts = {}) {
  const root = opts.root ?? WEB_DIST;
  const mounts = opts.mounts ?? {};
  const server = createServer(async (req, res) => {
    opts.onRequest?.({ method: req.method, url: req.url, range: req.headers.range });
    try {
      const url = new URL(req.url ?? '/', 'http://x');
      const path = url.pathname;
      if (req.method === 'POST' && path.startsWith('/upload/')) {
        const chunks = [];
        for await (const c of req) chunks.push(c);
        opts.onUpload?.(decodeURIComponent(path.slice(8)), new Uint8Array(Buffer.concat(chunks)));
        res.writeHead(200, ISOLATION).end('ok');
        return;
      }
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, ISOLATION).end();
        return;
      }
      const mount = /^\/m\/([^/]+)\/(.*)$/.exec(path);
      if (mount) {
        const dir = mounts[decodeURIComponent(mount[1])];
        if (!dir) {
          res.writeHead(404, ISOLATION).end('no such mount');
          return;
        }
        if (mount[2] === '' && url.searchParams.has('list')) {
          const list = {};
          for (const e of await readdir(dir, { withFileTypes: true })) if (e.isFile()) list[e.name] = (await stat(join(dir, e.name))).size;
          res.writeHead(200, { ...ISOLATION, 'Content-Type': 'application/json' }).end(JSON.stringify(list));
          return;
        }
        const p = inside(dir, mount[2]);
        if (!p) {
          res.writeHead(403, ISOLATION).end();
          return;
        }
        await sendFile(req, res, p);
        return;
      }
      const p = inside(root, path === '/' ? 'index.html' : path.slice(1));
      if (!p) {
        res.writeHead(403, ISOLATION).end();
        return;
      }
      await sendFile(req, res, p);
    } catch (e) {
      if (!res.headersSent) res.writeHead(500, ISOLATION);
      res.end(String(e));
    }
  });
  await new Promise((ok, fail) => {
    server.once('error', fail);
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', ok);
  });
  const { port } = server.address();
  return {
    url: `http://${opts.host ?? '127.0.0.1'}:${port}/`,
    close: () =>
      new Promise((ok) => {
        server.closeAllConnections();
        server.close(() => ok());
      }),
  };
}

/**
 * Builds web/ with Vite into dist/web, or into `outDir` (a few seconds). Test files that run at
 * the same time build into folders of their own: a build empties its output folder first.
 */
export async function buildWeb(outDir) {
  const { build } = await import('vite');
  await build({
    configFile: fileURLToPath(new URL('../web/vite.config.ts', import.meta.url)),
    logLevel: 'warn',
    ...(outDir ? { build: { outDir, emptyOutDir: true } } : {}),
  });
}

// `node scripts/web-server.mjs [--port 8080] [--model DIR]`: serve the chat page (opened with ?model=/m/model/ if given).
if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const arg = (k) => {
    const i = process.argv.indexOf(k);
    return i > 0 ? process.argv[i + 1] : undefined;
  };
  const model = arg('--model');
  const { url } = await startWebServer({ port: Number(arg('--port') ?? 8080), mounts: model ? { model: resolve(model) } : {} });
  console.log(`gemma3n-ts page: ${url}${model ? '?model=/m/model/' : ''}  (cross-origin isolated: COOP/COEP sent)`);
}
