/**
 * The chat page: pick a model folder (or open ?model=URL/ from a server that lists it), chat with
 * streaming output, attach an image or a recording. Runs the engine on the page's thread;
 * the kernels are WASM with worker threads when the page is cross-origin isolated.
 */
import { Gemma3n, type ChatSession } from '../src/engine/engine.js';
import type { FileProvider } from '../src/io/byte_source.js';
import type { ChatContentPart } from '../src/tokenizer/chat_template.js';
import { chooseKernels, type KernelChoice } from './browser_kernels.js';
import { demoFolder } from './demo_model.js';
import { HttpFolder, listedFolder, pickedFolder } from './folders.js';

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const status = $('status'),
  log = $('log');
const progress = $<HTMLProgressElement>('progress');
const input = $<HTMLTextAreaElement>('input');
const sendBtn = $<HTMLButtonElement>('send'),
  stopBtn = $<HTMLButtonElement>('stop'),
  resetBtn = $<HTMLButtonElement>('reset');

let engine: Gemma3n | null = null;
let chat: ChatSession | null = null;
let lastKernels: unknown = null;
let abort: AbortController | null = null;
const attached: { image?: { name: string; bytes: Uint8Array }; audio?: { name: string; bytes: Uint8Array } } = {};

const nextFrame = () => new Promise<void>((r) => setTimeout(r, 0));

function say(cls: string, text: string): HTMLElement {
  const d = document.createElement('div');
  d.className = `msg ${cls}`;
  d.textContent = text;
  log.append(d);
  log.scrollTop = log.scrollHeight;
  return d;
}

const mb = (n: number) => `${(n / 2 ** 20).toFixed(1)} MB`;

/** "downloaded 12.0 MB, 0.0 MB from the browser cache" for a folder read over HTTP. */
function transferText(folder: FileProvider): string {
  if (!(folder instanceof HttpFolder)) return '';
  const s = folder.stats;
  status.dataset.downloaded = String(s.downloaded);
  status.dataset.fromCache = String(s.fromCache);
  return `downloaded ${mb(s.downloaded)}, ${mb(s.fromCache)} from the browser cache`;
}

async function load(folder: FileProvider): Promise<void> {
  sendBtn.disabled = true;
  delete status.dataset.state;
  status.textContent = `Loading ${folder.location} ...`;
  progress.hidden = false;
  progress.value = 0;
  try {
    const k = await chooseKernels($<HTMLSelectElement>('kernels').value as KernelChoice);
    const t0 = performance.now();
    // A previous model gives its files and WASM memory back first.
    await engine?.dispose();
    (lastKernels as { dispose?: () => void } | null)?.dispose?.();
    engine = null;
    lastKernels = k.kernels;
    engine = await Gemma3n.load(folder, {
      kernels: k.kernels,
      onProgress: (done, total) => {
        progress.value = done / Math.max(total, 1);
        const t = transferText(folder);
        status.textContent = `Loading ${folder.location}: ${Math.round(100 * progress.value)}%${t ? ` (${t})` : ''}`;
      },
    });
    progress.hidden = true;
    const transfer = transferText(folder);
    chat = engine.chat();
    const c = engine.config;
    const towers = [c.visionConfig ? 'vision' : null, c.audioConfig ? 'audio' : null].filter(Boolean).join(' + ') || 'text only';
    status.textContent = `Loaded ${folder.location} in ${((performance.now() - t0) / 1000).toFixed(1)} s: ${c.text.numHiddenLayers} layers, hidden ${c.text.hiddenSize}, ${towers}; kernels: ${k.description}${transfer ? `; ${transfer}` : ''}.`;
    status.dataset.state = 'ready';
    if (!engine.tokenizer) say('note', 'This folder has no tokenizer.json or tokenizer.model: the page needs one to chat.');
    sendBtn.disabled = resetBtn.disabled = !engine.tokenizer;
  } catch (e) {
    progress.hidden = true;
    status.textContent = `Could not load the model: ${(e as Error).message}`;
    status.dataset.state = 'error';
  }
}

/** A folder at a URL, read with Range requests; what it fetches stays in the Cache API. */
async function loadUrl(url: string, token: string): Promise<void> {
  try {
    localStorage.setItem('gemma3n-url', url);
    status.textContent = `Opening ${url} ...`;
    const folder = await HttpFolder.open(url, {
      headers: token ? { Authorization: `Bearer ${token}` } : undefined,
      onProgress: (p) => {
        status.textContent = `Fetching ${p.file}: ${transferTextOf(p.downloaded, p.fromCache)}`;
      },
    });
    await load(folder);
  } catch (e) {
    status.textContent = `Could not open ${url}: ${(e as Error).message}`;
    status.dataset.state = 'error';
  }
}
const transferTextOf = (downloaded: number, fromCache: number) => `downloaded ${mb(downloaded)}, ${mb(fromCache)} from the browser cache`;

async function readFile(f: File): Promise<Uint8Array> {
  return new Uint8Array(await f.arrayBuffer());
}

function showAttachments(): void {
  $('attachments').textContent = [attached.image && `image: ${attached.image.name}`, attached.audio && `audio: ${attached.audio.name}`]
    .filter(Boolean)
    .join(', ');
}

/** The user's turn: text plus the attachments the model has a tower for (the others are explained). */
function buildContent(text: string): string | ChatContentPart[] {
  const c = engine!.config;
  const parts: ChatContentPart[] = [];
  if (attached.image) {
    if (c.visionConfig) parts.push({ type: 'image', image: attached.image.bytes });
    else say('note', `This model has no vision tower (no vision_config in config.json): ${attached.image.name} was not sent.`);
  }
  if (attached.audio) {
    if (c.audioConfig) parts.push({ type: 'audio', audio: attached.audio.bytes });
    else say('note', `This model has no audio tower (no audio_config in config.json): ${attached.audio.name} was not sent.`);
  }
  delete attached.image;
  delete attached.audio;
  showAttachments();
  if (parts.length === 0) return text;
  if (text) parts.push({ type: 'text', text });
  return parts;
}

async function send(): Promise<void> {
  if (!engine || !chat) return;
  const text = input.value.trim();
  if (!text && !attached.image && !attached.audio) return;
  input.value = '';
  say('user', text || '(attachment)');
  const content = buildContent(text);
  const out = say('model', '');
  out.dataset.state = 'streaming';
  abort = new AbortController();
  sendBtn.disabled = true;
  stopBtn.disabled = false;
  const num = (id: string) => Number($<HTMLInputElement>(id).value);
  try {
    const it = chat.stream(content, {
      maxTokens: num('max-tokens'),
      temperature: num('temperature'),
      topK: num('top-k'),
      seed: num('seed'),
      signal: abort.signal,
    });
    for (;;) {
      const r = await it.next();
      if (r.done) {
        const m = r.value.metrics;
        out.title = `${m.generatedTokens} tokens, ${m.decodeTokPerS.toFixed(1)} tok/s decode, ${m.prefillTokPerS.toFixed(1)} tok/s prefill`;
        break;
      }
      out.textContent += r.value;
      log.scrollTop = log.scrollHeight;
      await nextFrame(); // let the page paint between tokens
    }
  } catch (e) {
    say('note', `Generation failed: ${(e as Error).message}`);
  } finally {
    out.dataset.state = 'done';
    abort = null;
    sendBtn.disabled = false;
    stopBtn.disabled = true;
  }
}

for (const id of ['pick-folder', 'pick-files']) {
  $<HTMLInputElement>(id).addEventListener('change', (e) => {
    const files = (e.target as HTMLInputElement).files;
    if (files?.length) void load(pickedFolder(files));
  });
}
$<HTMLInputElement>('image').addEventListener('change', async (e) => {
  const f = (e.target as HTMLInputElement).files?.[0];
  if (f) attached.image = { name: f.name, bytes: await readFile(f) };
  showAttachments();
});
$<HTMLInputElement>('audio').addEventListener('change', async (e) => {
  const f = (e.target as HTMLInputElement).files?.[0];
  if (f) attached.audio = { name: f.name, bytes: await readFile(f) };
  showAttachments();
});

let recorder: MediaRecorder | null = null;
$('record').addEventListener('click', async () => {
  const btn = $<HTMLButtonElement>('record');
  if (recorder) {
    recorder.stop();
    return;
  }
  try {
    const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    const chunks: Blob[] = [];
    recorder = new MediaRecorder(stream);
    recorder.ondataavailable = (e) => chunks.push(e.data);
    recorder.onstop = async () => {
      stream.getTracks().forEach((t) => t.stop());
      const blob = new Blob(chunks, { type: recorder?.mimeType });
      attached.audio = { name: `recording (${blob.type || 'audio'})`, bytes: new Uint8Array(await blob.arrayBuffer()) };
      recorder = null;
      btn.textContent = 'Record';
      showAttachments();
    };
    recorder.start();
    btn.textContent = 'Stop recording';
  } catch (e) {
    say('note', `Cannot record: ${(e as Error).message}`);
  }
});

$('form').addEventListener('submit', (e) => {
  e.preventDefault();
  void send();
});
$('url-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const url = $<HTMLInputElement>('url').value.trim();
  if (url) void loadUrl(url, $<HTMLInputElement>('token').value.trim());
});
$('demo').addEventListener('click', async () => {
  status.textContent = 'Building the demo model (random weights) in the page ...';
  await nextFrame();
  try {
    await load(await demoFolder());
  } catch (e) {
    status.textContent = `Could not build the demo model: ${(e as Error).message}`;
  }
});
input.addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && !e.shiftKey) {
    e.preventDefault();
    void send();
  }
});
stopBtn.addEventListener('click', () => abort?.abort());
resetBtn.addEventListener('click', () => {
  if (engine) {
    chat = engine.chat();
    log.textContent = '';
  }
});

// ?model=/m/model/ opens a folder a server lists (scripts/web-server.mjs), e.g. for tests and demos;
// ?url=URL loads a folder at a URL (as the Load button); ?kernels=ts|wasm|auto picks the kernels.
const params = new URLSearchParams(location.search);
const kernelsParam = params.get('kernels');
if (kernelsParam) $<HTMLSelectElement>('kernels').value = kernelsParam;
const fromUrl = params.get('model');
if (fromUrl)
  void listedFolder(fromUrl).then(load, (e: Error) => {
    status.textContent = `Could not open ${fromUrl}: ${e.message}`;
  });
const urlParam = params.get('url');
$<HTMLInputElement>('url').value = urlParam ?? localStorage.getItem('gemma3n-url') ?? '';
if (urlParam) void loadUrl(urlParam, '');
