/**
 * Where gemma3n-ts keeps what it generates or unpacks (the embedded default model, the test
 * suite's Chromium): never inside the installed package, which may be read-only or shared.
 *   1. the `cacheDir` option of the call;
 *   2. $GEMMA3N_CACHE_DIR;
 *   3. $XDG_CACHE_HOME/gemma3n-ts (XDG Base Directory spec), on Windows %LOCALAPPDATA%\gemma3n-ts;
 *   4. ~/.cache/gemma3n-ts.
 */
import { homedir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';

export interface CacheDirOptions {
  /** Overrides $GEMMA3N_CACHE_DIR and the platform default. */
  cacheDir?: string;
}

export function cacheDir(opts: CacheDirOptions = {}): string {
  const explicit = opts.cacheDir ?? nonEmpty(process.env.GEMMA3N_CACHE_DIR);
  if (explicit !== undefined) return resolve(explicit);
  const xdg = nonEmpty(process.env.XDG_CACHE_HOME);
  // The XDG spec says a relative $XDG_CACHE_HOME is invalid and must be ignored.
  if (xdg !== undefined && isAbsolute(xdg)) return join(xdg, 'gemma3n-ts');
  const local = process.platform === 'win32' ? nonEmpty(process.env.LOCALAPPDATA) : undefined;
  if (local !== undefined) return join(local, 'gemma3n-ts');
  // $HOME first: under Deno os.homedir() needs --allow-sys, the environment only --allow-env.
  const home = nonEmpty(process.env.HOME) ?? nonEmpty(process.env.USERPROFILE) ?? homedir();
  return join(home, '.cache', 'gemma3n-ts');
}

function nonEmpty(s: string | undefined): string | undefined {
  return s === undefined || s === '' ? undefined : s;
}
