/**
 * The HTTP server on Gemma 4 (the multimodal golden model plus a tiny Gemma 4 tokenizer):
 * chat completions equal the engine's own answer, concurrent requests decode together through
 * the scheduler (Gemma4TextModel.forwardBatch) and each equals running alone, and an image part
 * reaches the vision tower with the processor's soft-token count.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Gemma3n } from '../../src/engine/engine.js';
import { createServer, type GemmaServer } from '../../src/server/server.js';
import { GOLDEN } from '../helpers.js';
import { gemma4ChatFolder } from '../engine/tiny_gemma4_tokenizer.js';
import { parseSse, postJson, sseText } from './helpers.js';

let g: Gemma3n;
let server: GemmaServer;
let url: string;
beforeAll(async () => {
  g = await Gemma3n.load(gemma4ChatFolder('multimodal'), { imageSoftTokens: 70 });
  server = createServer(g, { modelId: 'tiny-gemma4', parallel: 3 });
  url = (await server.listen(0, '127.0.0.1')).url;
}, 120_000);
afterAll(async () => {
  await server.shutdown(2000);
});

describe('server on Gemma 4', () => {
  it("chat completion: the engine's text and usage; 3 concurrent streamed requests each equal to running alone", async () => {
    const messages = [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'Hello there' },
    ];
    const r = await postJson(`${url}/v1/chat/completions`, { messages, max_tokens: 8, temperature: 0 });
    expect(r.status).toBe(200);
    const direct = await g.generate(messages, { maxTokens: 8, temperature: 0 });
    expect(r.json.choices[0].message).toEqual({ role: 'assistant', content: direct.text });
    expect(r.json.usage.prompt_tokens).toBe(g.encodePrompt(messages).length);
    expect(r.json.usage.completion_tokens).toBe(direct.metrics.generatedTokens);

    const questions = ['Hi', 'What is 2+2?', 'Tell me more about it, please'];
    const alone = [];
    for (const q of questions) alone.push((await g.generate([{ role: 'user', content: q }], { maxTokens: 10, temperature: 0 })).text);
    const streamed = await Promise.all(
      questions.map(async (q) => {
        const s = await postJson(`${url}/v1/chat/completions`, { messages: [{ role: 'user', content: q }], max_tokens: 10, temperature: 0, stream: true });
        expect(s.status).toBe(200);
        return sseText(parseSse(s.text)).text;
      }),
    );
    expect(streamed).toEqual(alone);
  });

  it('an image_url part (data URL) becomes <|image> + 63 soft tokens + <image|> and is answered', async () => {
    const png = readFileSync(join(GOLDEN, 'gemma4', 'multimodal', 'image.png'));
    const content = [
      { type: 'image_url', image_url: { url: `data:image/png;base64,${png.toString('base64')}` } },
      { type: 'text', text: 'What is it?' },
    ];
    const r = await postJson(`${url}/v1/chat/completions`, { messages: [{ role: 'user', content }], max_tokens: 3, temperature: 0 });
    expect(r.status).toBe(200);
    const direct = await g.generate(
      [
        {
          role: 'user',
          content: [
            { type: 'image', image: new Uint8Array(png) },
            { type: 'text', text: 'What is it?' },
          ],
        },
      ],
      { maxTokens: 3, temperature: 0 },
    );
    expect(r.json.usage.prompt_tokens).toBe(direct.metrics.promptTokens);
    // <bos> <|turn> "user", "\n"+"\n\n" (2 ids), <|image> 63 x <|image|> <image|>, "\n\n" "What is it?" (one id per char), <turn|> "\n" <|turn> "model" "\n"
    expect(direct.metrics.promptTokens).toBe(1 + 1 + 4 + 2 + 65 + (1 + 11) + (1 + 1 + 1 + 5 + 1));
    expect(r.json.choices[0].message.content).toBe(direct.text);
  });
});
