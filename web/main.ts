/**
 * The chat page: pick a model folder (or open ?model=URL/ from a server that lists it), chat with
 * streaming output, attach an image or a recording. Runs the engine on the page's thread;
 * the kernels are WASM with worker threads when the page is cross-origin isolated.
 */
import { Gemma3n, type ChatSession } from '../src/engine/engine.js';
import type { FileProvider } from '../src/io/byte_source.js';
import type { ChatContentPart } from '../src/tokenizer/chat_template.js';
import { chooseKernels, type KernelChoice } from './browser_kernels.js';
import { HttpFolder, pickedFolder } from './folders.js';

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const status = $('status'), log = $('log');
const input = $<HTMLTextAreaElement>('input');
const sendBtn = $<HTMLButtonElement>('send'), stopBtn = $<HTMLButtonElement>('stop'), resetBtn = $<HTMLButtonElement>('reset');

let engine: Gemma3n | null = null;
let chat: ChatSession | null = null;
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

async function load(folder: FileProvider): Promise<void> {
  sendBtn.disabled = true;
  status.textContent = `Loading ${folder.location} ...`;
  try {
    const k = await chooseKernels($<HTMLSelectElement>('kernels').value as KernelChoice);
    const t0 = performance.now();
    engine = await Gemma3n.load(folder, {
      kernels: k.kernels,
      onProgress: (done, total) => { status.textContent = `Loading ${folder.location}: ${Math.round((100 * done) / Math.max(total, 1))}%`; },
    });
    chat = engine.chat();
    const c = engine.config;
    const towers = [c.visionConfig ? 'vision' : null, c.audioConfig ? 'audio' : null].filter(Boolean).join(' + ') || 'text only';
    status.textContent = `Loaded ${folder.location} in ${((performance.now() - t0) / 1000).toFixed(1)} s: ${c.text.numHiddenLayers} layers, hidden ${c.text.hiddenSize}, ${towers}; kernels: ${k.description}.`;
    status.dataset.state = 'ready';
    if (!engine.tokenizer) say('note', 'This folder has no tokenizer.json or tokenizer.model: the page needs one to chat.');
    sendBtn.disabled = resetBtn.disabled = !engine.tokenizer;
  } catch (e) {
    status.textContent = `Could not load the model: ${(e as Error).message}`;
    status.dataset.state = 'error';
  }
}

async function readFile(f: File): Promise<Uint8Array> {
  return new Uint8Array(await f.arrayBuffer());
}

function showAttachments(): void {
  $('attachments').textContent = [attached.image && `image: ${attached.image.name}`, attached.audio && `audio: ${attached.audio.name}`].filter(Boolean).join(', ');
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
    const it = chat.stream(content, { maxTokens: num('max-tokens'), temperature: num('temperature'), topK: num('top-k'), seed: num('seed'), signal: abort.signal });
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
    if (files && files.length) void load(pickedFolder(files));
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
  if (recorder) { recorder.stop(); return; }
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

$('form').addEventListener('submit', (e) => { e.preventDefault(); void send(); });
input.addEventListener('keydown', (e) => { if (e.key === 'Enter' && !e.shiftKey) { e.preventDefault(); void send(); } });
stopBtn.addEventListener('click', () => abort?.abort());
resetBtn.addEventListener('click', () => { if (engine) { chat = engine.chat(); log.textContent = ''; } });

// ?model=/m/model/ opens a folder a server lists (scripts/web-server.mjs), e.g. for tests and demos;
// ?kernels=ts|wasm|auto picks the kernels.
const params = new URLSearchParams(location.search);
const kernelsParam = params.get('kernels');
if (kernelsParam) $<HTMLSelectElement>('kernels').value = kernelsParam;
const fromUrl = params.get('model');
if (fromUrl) void HttpFolder.open(fromUrl).then(load, (e: Error) => { status.textContent = `Could not open ${fromUrl}: ${e.message}`; });
