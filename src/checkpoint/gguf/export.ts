/**
 * Our checkpoints → a GGUF file that llama.cpp loads as a `gemma3n` model (`gemma3n
 * export-gguf`). The text decoder only; the towers stay in the safetensors files.
 *
 * Types: `f32` writes everything as F32; `f16` the 2-D weights as F16; `q8_0` / `q4_0` the
 * linears and both token tables as Q8_0 / Q4_0. Norms, AltUp coefficients and the router stay
 * F32 (as the converter keeps 1-D tensors). A linear already packed as int4 (`NAME.q4`) goes
 * to Q4_0 with its codes unchanged (the scale rounded to f16), so the GGUF holds the same
 * weights as our int4 model. KV-shared layers get zero k/v tensors, which llama.cpp requires
 * but never reads.
 */
import type { TensorStore } from '../checkpoint.js';
import { textPrefix } from '../checkpoint.js';
import type { TextConfig } from '../config.js';
import { toFloat32 } from '../dtype.js';
import { Q4_SUFFIX, readPackedQ4 } from '../packed_q4.js';
import { CheckpointError } from '../safetensors.js';
import { GGML, type GgmlType } from './ggml_types.js';
import { ALTUP_PROJ, ALTUP_UNEMBD_PROJ, ggufName, isKvSharedLayer, metadataForConfig } from './gemma3n.js';
import { q4MatrixToQ4_0, quantizeQ4_0, quantizeQ8_0, toF16Bytes, toF32Bytes } from './quantize.js';
import type { GgufKV, GgufTensorToWrite } from './writer.js';
import type { GgufVocab } from '../../tokenizer/gguf_vocab.js';
import type { Q4Matrix } from '../../kernels/q4.js';

export type ExportType = 'f32' | 'f16' | 'q8_0' | 'q4_0';

/** llama_ftype values [llama.h]: ALL_F32 0, MOSTLY_F16 1, MOSTLY_Q4_0 2, MOSTLY_Q8_0 7. */
const FILE_TYPE: Record<ExportType, number> = { f32: 0, f16: 1, q4_0: 2, q8_0: 7 };

export interface ExportOptions {
  type: ExportType;
  name?: string;
  /** Tokenizer metadata (llama.cpp needs one); null writes placeholder pieces. */
  vocab: GgufVocab | null;
  chatTemplate?: string;
  /** Rows the token tables are padded to (default: the vocabulary's size, at least vocab_size). */
  vocabRows?: number;
}

function encode(w: Float32Array, rows: number, cols: number, t: GgmlType): Uint8Array {
  switch (t.name) {
    case 'F32':
      return toF32Bytes(w);
    case 'F16':
      return toF16Bytes(w);
    case 'Q8_0':
      return quantizeQ8_0(w);
    case 'Q4_0':
      return quantizeQ4_0(w, rows, cols);
    default:
      throw new Error(`export: cannot write ${t.name}`);
  }
}

function vocabMetadata(v: GgufVocab | null, rows: number, chatTemplate?: string): GgufKV[] {
  const vocab = v ?? placeholderVocab(rows);
  const md: GgufKV[] = [
    { key: 'tokenizer.ggml.model', type: 'string', value: 'llama' },
    { key: 'tokenizer.ggml.tokens', type: 'string[]', value: vocab.tokens },
    { key: 'tokenizer.ggml.scores', type: 'f32[]', value: vocab.scores },
    { key: 'tokenizer.ggml.token_type', type: 'i32[]', value: vocab.types },
    { key: 'tokenizer.ggml.bos_token_id', type: 'u32', value: vocab.bosId },
    { key: 'tokenizer.ggml.eos_token_id', type: 'u32', value: vocab.eosId },
    { key: 'tokenizer.ggml.unknown_token_id', type: 'u32', value: vocab.unkId },
    { key: 'tokenizer.ggml.padding_token_id', type: 'u32', value: vocab.padId },
    { key: 'tokenizer.ggml.add_bos_token', type: 'bool', value: true },
    { key: 'tokenizer.ggml.add_eos_token', type: 'bool', value: false },
    { key: 'tokenizer.ggml.add_space_prefix', type: 'bool', value: vocab.addSpacePrefix },
  ];
  const eot = vocab.tokens.indexOf('<end_of_turn>');
  if (eot >= 0) md.push({ key: 'tokenizer.ggml.eot_token_id', type: 'u32', value: eot });
  if (chatTemplate) md.push({ key: 'tokenizer.chat_template', type: 'string', value: chatTemplate });
  return md;
}

/** Pieces for a model without a tokenizer (synthetic weights): <pad> <eos> <bos> <unk>, then one per id. */
function placeholderVocab(n: number): GgufVocab {
  const tokens = Array.from({ length: n }, (_, i) => ['<pad>', '<eos>', '<bos>', '<unk>'][i] ?? `<tok${i}>`);
  const types = tokens.map((_, i) => (i === 3 ? 2 : i < 3 ? 3 : 1));
  return { tokens, scores: new Float32Array(n), types, bosId: 2, eosId: 1, unkId: 3, padId: 0, addSpacePrefix: false };
}

export function ggufExport(store: TensorStore, c: TextConfig, opts: ExportOptions): { metadata: GgufKV[]; tensors: GgufTensorToWrite[] } {
  const prefix = textPrefix(store);
  const H = c.hiddenSize,
    L = c.numHiddenLayers,
    P = c.hiddenSizePerLayerInput;
  const vocabRows = Math.max(opts.vocabRows ?? opts.vocab?.tokens.length ?? c.vocabSize, c.vocabSize);
  const big = opts.type === 'q4_0' ? GGML.Q4_0 : opts.type === 'q8_0' ? GGML.Q8_0 : opts.type === 'f16' ? GGML.F16 : GGML.F32;
  const packed = async (local: string): Promise<Q4Matrix | null> =>
    store.has(prefix + local + Q4_SUFFIX)
      ? readPackedQ4(await store.readBytes(prefix + local + Q4_SUFFIX), `${store.file}: '${prefix + local + Q4_SUFFIX}'`)
      : null;
  const f32Of = async (local: string, rows: number, cols: number): Promise<Float32Array> => {
    const q = await packed(local);
    if (q) return q.dequantize();
    return store.readF32(prefix + local, cols === 1 ? [rows] : [rows, cols]);
  };
  const tensors: GgufTensorToWrite[] = [];
  /** A weight [rows, cols] (Hugging Face order) written as GGUF [cols, rows]. */
  const add = (name: string, local: string | null, rows: number, cols: number, type: GgmlType) => {
    const t = cols % type.blockSize === 0 ? type : GGML.F32;
    tensors.push({
      name,
      dims: cols === 1 ? [rows] : [cols, rows],
      type: t,
      data: async () => {
        if (local === null) return encode(new Float32Array(rows * cols), rows, cols, t); // zero k/v of KV-shared layers
        if (t === GGML.Q4_0) {
          const q = await packed(local);
          if (q) return q4MatrixToQ4_0(q);
        }
        return encode(await f32Of(local, rows, cols), rows, cols, t);
      },
    });
  };
  /** A token table [rows, cols] padded with zero rows to `outRows`, streamed in slices. */
  const table = (name: string, local: string, rows: number, cols: number, outRows: number, headQ4: string | null) => {
    const t = cols % big.blockSize === 0 ? big : GGML.F32;
    tensors.push({
      name,
      dims: [cols, outRows],
      type: t,
      data: async function* () {
        if (t === GGML.Q4_0 && headQ4 !== null) {
          const q = await packed(headQ4);
          if (q && q.outDim === rows && q.inDim === cols) {
            yield q4MatrixToQ4_0(q);
            if (outRows > rows) yield encode(new Float32Array((outRows - rows) * cols), outRows - rows, cols, t);
            return;
          }
        }
        const { info, source } = await store.sourceOf(prefix + local);
        if (info.shape[0] !== rows || info.shape[1] !== cols)
          throw new CheckpointError(`${source.name}: '${info.name}' is [${info.shape.join(', ')}], expected [${rows}, ${cols}]`);
        const esize = info.byteLength / (rows * cols);
        const slice = Math.max(1, Math.floor((64 << 20) / (cols * 4)));
        for (let r = 0; r < outRows; r += slice) {
          const n = Math.min(slice, outRows - r),
            have = Math.max(0, Math.min(n, rows - r));
          const w = new Float32Array(n * cols);
          if (have > 0) w.set(toFloat32(await source.read(info.offset + r * cols * esize, have * cols * esize), info.dtype, have * cols));
          yield encode(w, n, cols, t);
        }
      },
    });
  };

  table('token_embd.weight', 'embed_tokens.weight', c.vocabSize, H, vocabRows, 'lm_head.weight');
  table('per_layer_token_embd.weight', 'embed_tokens_per_layer.weight', c.vocabSizePerLayerInput, L * P, vocabRows, null);
  add('per_layer_model_proj.weight', 'per_layer_model_projection.weight', L * P, H, big);
  add('per_layer_proj_norm.weight', 'per_layer_projection_norm.weight', P, 1, GGML.F32);
  add('output_norm.weight', 'norm.weight', H, 1, GGML.F32);
  for (const [name, stem] of [
    [ALTUP_PROJ, 'altup_projections'],
    [ALTUP_UNEMBD_PROJ, 'altup_unembed_projections'],
  ] as const) {
    const A1 = c.altupNumInputs - 1;
    tensors.push({
      name,
      dims: [H, H, A1],
      type: GGML.F32,
      data: async () => {
        const out = new Float32Array(A1 * H * H);
        for (let i = 0; i < A1; i++) out.set(await f32Of(`${stem}.${i}.weight`, H, H), i * H * H);
        return toF32Bytes(out);
      },
    });
  }
  const nQ = c.numAttentionHeads * c.headDim,
    nKV = c.numKeyValueHeads * c.headDim,
    A = c.altupNumInputs;
  for (let l = 0; l < L; l++) {
    const I = c.intermediateSize[l],
      p = `layers.${l}.`,
      shared = isKvSharedLayer(c, l);
    const hasKv = (n: string) => store.has(prefix + p + n) || store.has(prefix + p + n + Q4_SUFFIX);
    const w = (local: string, rows: number, cols: number, type: GgmlType, zeroIfMissing = false) =>
      add(`blk.${l}.${ggufName(p + local)!.slice(`blk.${l}.`.length)}`, zeroIfMissing && !hasKv(local) ? null : p + local, rows, cols, type);
    w('input_layernorm.weight', H, 1, GGML.F32);
    w('self_attn.q_proj.weight', nQ, H, big);
    w('self_attn.k_proj.weight', nKV, H, big, shared);
    w('self_attn.v_proj.weight', nKV, H, big, shared);
    w('self_attn.o_proj.weight', H, nQ, big);
    w('self_attn.q_norm.weight', c.headDim, 1, GGML.F32);
    w('self_attn.k_norm.weight', c.headDim, 1, GGML.F32, shared);
    w('post_attention_layernorm.weight', H, 1, GGML.F32);
    w('pre_feedforward_layernorm.weight', H, 1, GGML.F32);
    w('mlp.gate_proj.weight', I, H, big);
    w('mlp.up_proj.weight', I, H, big);
    w('mlp.down_proj.weight', H, I, big);
    w('post_feedforward_layernorm.weight', H, 1, GGML.F32);
    w('per_layer_input_gate.weight', P, H, big);
    w('per_layer_projection.weight', H, P, big);
    w('post_per_layer_input_norm.weight', H, 1, GGML.F32);
    w('altup.correction_coefs.weight', A, A, GGML.F32);
    w('altup.correct_output_scale', H, 1, GGML.F32);
    w('altup.prediction_coefs.weight', A * A, A, GGML.F32);
    w('altup.modality_router.weight', A, H, GGML.F32);
    w('altup.router_norm.weight', H, 1, GGML.F32);
    w('laurel.linear_left.weight', c.laurelRank, H, big);
    w('laurel.linear_right.weight', H, c.laurelRank, big);
    w('laurel.post_laurel_norm.weight', H, 1, GGML.F32);
  }
  const metadata = [
    ...metadataForConfig(c, opts.name ?? 'gemma3n-ts export', FILE_TYPE[opts.type]),
    ...vocabMetadata(opts.vocab, vocabRows, opts.chatTemplate),
  ];
  return { metadata, tensors };
}
