/** `gemma3n serve`: the OpenAI-compatible HTTP server (src/server) on one loaded model. */
import { basename, resolve } from 'node:path';
import { createServer, defaultParallel } from '../../server/server.js';
import { parseIntFlag, parseNumFlag, UsageError } from '../args.js';
import { loadEngine, modelFlags, parse, str } from '../common.js';

export async function cmdServe(argv: string[]): Promise<number> {
  const v = parse(argv, {
    ...modelFlags,
    port: { type: 'string' },
    host: { type: 'string' },
    'max-queue': { type: 'string' },
    parallel: { type: 'string' },
    'prefill-chunk': { type: 'string' },
    'prefix-cache-mb': { type: 'string' },
    'max-body-mb': { type: 'string' },
    'max-tokens': { type: 'string' },
    'model-id': { type: 'string' },
    'shutdown-grace-s': { type: 'string' },
  });
  const port = parseIntFlag(str(v, 'port'), '--port', 8080);
  if (port > 65535) throw new UsageError(`--port: expected 0..65535, got ${port}`);
  const host = str(v, 'host') ?? '127.0.0.1';
  const maxQueue = parseIntFlag(str(v, 'max-queue'), '--max-queue', 512);
  const parallel = parseIntFlag(str(v, 'parallel'), '--parallel', defaultParallel(), 1);
  const prefillChunk = parseIntFlag(str(v, 'prefill-chunk'), '--prefill-chunk', 128, 1);
  const prefixCacheMb = parseNumFlag(str(v, 'prefix-cache-mb'), '--prefix-cache-mb') ?? 256;
  if (!(prefixCacheMb >= 0)) throw new UsageError(`--prefix-cache-mb: expected a number >= 0, got ${prefixCacheMb}`);
  const maxBodyMb = parseNumFlag(str(v, 'max-body-mb'), '--max-body-mb') ?? 20;
  if (!(maxBodyMb > 0)) throw new UsageError(`--max-body-mb: expected a number > 0, got ${maxBodyMb}`);
  const defaultMaxTokens = parseIntFlag(str(v, 'max-tokens'), '--max-tokens', 1024, 1);
  const graceS = parseNumFlag(str(v, 'shutdown-grace-s'), '--shutdown-grace-s') ?? 10;
  const dir = str(v, 'model');
  const modelId = str(v, 'model-id') ?? (dir === undefined ? 'gemma3n-default' : basename(resolve(dir)));

  const engine = await loadEngine(v);
  const server = createServer(engine, {
    modelId,
    maxQueue,
    defaultMaxTokens,
    parallel,
    prefillChunk,
    prefixCacheBytes: Math.round(prefixCacheMb * 2 ** 20),
    maxBodyBytes: Math.round(maxBodyMb * 2 ** 20),
    log: (line) => process.stderr.write(line + '\n'),
  });
  const addr = await server.listen(port, host);
  process.stderr.write(
    `serving '${modelId}' (${parallel} sequences decoded together, queue ${maxQueue}, prefill chunk ${prefillChunk}, prefix cache ${prefixCacheMb} MB, body limit ${maxBodyMb} MB)\nlistening on ${addr.url}\n`,
  );

  // SIGINT/SIGTERM: stop accepting, let the running request finish (or abort it after the
  // grace period), exit 0. A second signal exits at once.
  await new Promise<void>((done) => {
    let stopping = false;
    const onSignal = (sig: NodeJS.Signals) => {
      if (stopping) process.exit(130);
      stopping = true;
      process.stderr.write(`${sig}: shutting down (finishing the running request, up to ${graceS} s)\n`);
      server.shutdown(graceS * 1000).then(done, done);
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
  process.stderr.write('server stopped\n');
  return 0;
}
