import { describe, it, expect } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAudioConfig, DEFAULT_AUDIO_CONFIG } from '../../../src/encoders/audio/config.js';
import { GOLDEN_DIR } from './golden.js';

describe('audio config', () => {
  it('reads the tiny golden config', () => {
    const c = parseAudioConfig(JSON.parse(readFileSync(join(GOLDEN_DIR, 'encoder-tiny/config.json'), 'utf8')));
    expect(c.audio.hiddenSize).toBe(32);
    expect(c.audio.confAttentionLogitCap).toBe(5);
    expect(c.audio.gradientClipping).toBe(2);
    expect(c.audio.sscpConvChannelSize).toEqual([8, 4]);
    expect(c.audio.vocabOffset).toBe(144);
    expect(c.textHiddenSize).toBe(24);
    expect(c.textVocabSize).toBe(160);
    expect(c.audioSoftTokensPerImage).toBe(20);
  });

  it('fills the E2B defaults for absent fields', () => {
    const c = parseAudioConfig({ audio_config: {}, text_config: { hidden_size: 2048 } });
    expect(c.audio).toEqual(DEFAULT_AUDIO_CONFIG);
    expect(c.audio.vocabOffset).toBe(262272);
    expect(c.textVocabSize).toBe(262400);
    expect(c.audioSoftTokensPerImage).toBe(188);
  });

  it('fails clearly on bad fields', () => {
    expect(() => parseAudioConfig({ text_config: { hidden_size: 8 } })).toThrow(/audio_config/);
    expect(() => parseAudioConfig({ audio_config: { hidden_size: 30, conf_num_attention_heads: 4 }, text_config: { hidden_size: 8 } })).toThrow(/divisible/);
    expect(() => parseAudioConfig({ audio_config: { sscp_conv_kernel_size: [3, 3] }, text_config: { hidden_size: 8 } })).toThrow(/sscp_conv_kernel_size/);
    expect(() => parseAudioConfig({ audio_config: {}, text_config: {} })).toThrow(/text_config.hidden_size/);
  });
});
