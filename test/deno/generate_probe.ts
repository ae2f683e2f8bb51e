// Seeded sampling under Deno, printed as JSON for test/deno/deno.test.ts to hold against Node:
//   deno run --allow-read test/deno/generate_probe.ts MODEL_DIR
import { DenoFolder } from '../../dist/src/deno/fs_folder.js';
import { Gemma3n } from '../../dist/src/engine/engine.js';

declare const Deno: { args: string[] };

const g3n = await Gemma3n.load(new DenoFolder(Deno.args[0]));
const pieces: string[] = [];
const r = await g3n.generate([{ role: 'user', content: 'Hello from Deno' }], {
  maxTokens: 24,
  temperature: 0.9,
  topK: 50,
  topP: 0.95,
  seed: 7,
  onText: (t: string) => pieces.push(t),
});
console.log(JSON.stringify({ ids: r.ids, text: r.text, pieces: pieces.length }));
