/**
 * The audio embedder (`model.embed_audio.*`): the shared Gemma3nMultimodalEmbedder
 * (src/encoders/multimodal_embedder.ts) with the audio tower's width and vocabulary.
 */
import type { Kernels } from '../../kernels/kernels.js';
import type { TowerWeights } from '../tower_weights.js';
import { MultimodalEmbedder } from '../multimodal_embedder.js';
import type { AudioModelConfig } from './config.js';

// biome-ignore lint/complexity/noStaticOnlyClass: public name (src/encoders/audio/index.ts); what it builds is the shared MultimodalEmbedder
export class AudioEmbedder {
  static load(ckpt: TowerWeights, cfg: AudioModelConfig, kernels: Kernels, prefix = 'model.embed_audio'): Promise<MultimodalEmbedder> {
    return MultimodalEmbedder.load(ckpt, kernels, prefix, {
      hiddenSize: cfg.audio.hiddenSize,
      textHiddenSize: cfg.textHiddenSize,
      vocabOffset: cfg.audio.vocabOffset,
      vocabSize: cfg.audio.vocabSize,
      eps: cfg.audio.rmsNormEps,
    });
  }
}
