// `node scripts/math-determinism.mjs`: how often V8's Math.exp/tanh/log/... differ between Node,
// Deno (node_modules/.bin/deno) and headless Chromium, in float64 and after rounding to float32.
// Evidence for docs/runtimes.md ("Why the bits agree although Math.* does not").
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { launchChromium } from './chromium.mjs';

const N = Number(process.argv[2] ?? 300_000);
function probe(n) {
  const fns = {
    exp: Math.exp,
    tanh: Math.tanh,
    log: (x) => Math.log(Math.abs(x)),
    log1p: (x) => Math.log1p(Math.abs(x) - 0.5),
    sin: Math.sin,
    cos: Math.cos,
    pow: (x) => Math.pow(Math.abs(x), 0.37),
  };
  const out = {};
  for (const [name, fn] of Object.entries(fns)) {
    let s = 12345 >>> 0;
    const r = new Array(n);
    for (let i = 0; i < n; i++) {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0; // float32 inputs in ±100, ±10, ±10^4
      r[i] = fn(Math.fround((s / 4294967296 - 0.5) * (i % 3 === 0 ? 200 : i % 3 === 1 ? 20 : 2e4)));
    }
    out[name] = r.map((v) => (Number.isFinite(v) ? v : String(v))); // JSON keeps Infinity/NaN as strings
  }
  return out;
}
const revive = (o) => Object.fromEntries(Object.entries(o).map(([k, a]) => [k, a.map(Number)]));

const tmp = mkdtempSync(join(tmpdir(), 'math-'));
try {
  const results = { [`node ${process.versions.v8}`]: revive(probe(N)) };
  writeFileSync(
    join(tmp, 'd.js'),
    `${probe}; Deno.writeTextFileSync(${JSON.stringify(join(tmp, 'deno.json'))}, JSON.stringify({ v8: Deno.version.v8, r: probe(${N}) }));`,
  );
  execFileSync(new URL('../node_modules/.bin/deno', import.meta.url).pathname, ['run', `--allow-write=${tmp}`, join(tmp, 'd.js')]);
  const d = JSON.parse(readFileSync(join(tmp, 'deno.json'), 'utf8'));
  results[`deno ${d.v8}`] = revive(d.r);
  const b = await launchChromium();
  try {
    const page = await b.context.newPage();
    const ua = await page.evaluate(() => navigator.userAgent.match(/Chrome\/[\d.]+/)[0]);
    results[`chromium ${ua}`] = revive(await page.evaluate(`(${probe})(${N})`));
  } finally {
    await b.close();
  }
  const names = Object.keys(results);
  console.log(`${N} inputs per function; "f64 a / f32 b" = results differing in float64 / after Math.fround`);
  for (const fn of Object.keys(results[names[0]])) {
    const cells = [];
    for (let i = 0; i < names.length; i++)
      for (let j = i + 1; j < names.length; j++) {
        const a = results[names[i]][fn],
          c = results[names[j]][fn];
        let d64 = 0,
          d32 = 0;
        for (let k = 0; k < N; k++)
          if (!Object.is(a[k], c[k])) {
            d64++;
            if (!Object.is(Math.fround(a[k]), Math.fround(c[k]))) d32++;
          }
        cells.push(`${names[i].split(' ')[0]}/${names[j].split(' ')[0]}: f64 ${d64} / f32 ${d32}`);
      }
    console.log(fn.padEnd(6), cells.join(' | '));
  }
  console.log(names.join(', '));
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
