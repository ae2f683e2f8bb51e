/** Small HTTP helpers for the server tests: every request goes to 127.0.0.1 and is time-bounded. */
import { request } from 'node:http';

export interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json: any;
}

/** One request with a raw body (string or bytes); resolves with the whole response. */
export function httpRequest(url: string, method: string, body?: string | Uint8Array, headers: Record<string, string> = {}, timeoutMs = 60_000): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      { method, headers: { ...(body !== undefined ? { 'Content-Type': 'application/json' } : {}), ...headers }, timeout: timeoutMs },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json: unknown;
          try {
            json = JSON.parse(text);
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
        });
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`request to ${url} timed out after ${timeoutMs} ms`)));
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

export const postJson = (url: string, body: unknown, timeoutMs?: number): Promise<Reply> => httpRequest(url, 'POST', JSON.stringify(body), {}, timeoutMs);

/** Parses a server-sent-events body into its data payloads ("[DONE]" kept as a string). */
export function parseSse(text: string): unknown[] {
  const out: unknown[] = [];
  for (const event of text.split('\n\n')) {
    const line = event.trim();
    if (!line) continue;
    if (!line.startsWith('data: ')) throw new Error(`not an SSE data line: ${JSON.stringify(line)}`);
    const data = line.slice(6);
    out.push(data === '[DONE]' ? data : JSON.parse(data));
  }
  return out;
}

/** The text of a chat.completion.chunk stream, checking its shape on the way. */
export function sseText(events: unknown[]): { text: string; finish: string | null; usage: any } {
  let text = '';
  let finish: string | null = null;
  let usage: any = null;
  for (const e of events) {
    if (e === '[DONE]') continue;
    const c = e as any;
    if (c.error) throw new Error(`stream error: ${c.error.message}`);
    if (c.object !== 'chat.completion.chunk') throw new Error(`unexpected event ${JSON.stringify(c)}`);
    if (c.usage) usage = c.usage;
    for (const ch of c.choices) {
      if (typeof ch.delta.content === 'string') text += ch.delta.content;
      if (ch.finish_reason) finish = ch.finish_reason;
    }
  }
  return { text, finish, usage };
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `cond` every 10 ms for at most `ms`. */
export async function waitFor(cond: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(10);
  }
}

/** A streaming POST that can be watched as it arrives and cut off mid-way. */
export function openStream(url: string, body: unknown): { received: () => string; status: Promise<number>; done: Promise<string>; destroy: () => void } {
  let buf = '';
  let destroy = () => {};
  let statusResolve: (n: number) => void = () => {};
  const status = new Promise<number>((r) => {
    statusResolve = r;
  });
  const done = new Promise<string>((resolve, reject) => {
    const req = request(url, { method: 'POST', headers: { 'Content-Type': 'application/json' } }, (res) => {
      statusResolve(res.statusCode ?? 0);
      res.on('data', (c: Buffer) => {
        buf += c.toString('utf8');
      });
      res.on('end', () => resolve(buf));
      res.on('error', reject);
      res.on('close', () => resolve(buf));
    });
    req.on('error', (e) => (buf ? resolve(buf) : reject(e)));
    req.end(JSON.stringify(body));
    destroy = () => req.destroy();
  });
  done.catch(() => {});
  return { received: () => buf, status, done, destroy };
}
