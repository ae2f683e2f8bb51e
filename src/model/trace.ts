/**
 * The trace hook: named intermediate tensors, for golden-output testing, for diffing another
 * runtime layer by layer, and for learners (`gemma3n trace`, `--all` writes every name).
 * One hook type for the text decoder and the vision and audio towers.
 *
 * The forward pass calls `trace(name, data, shape)` at each named step when a tracer is given,
 * and does nothing otherwise (call sites are `trace?.(...)`, which evaluates no argument, or
 * `if (trace)` around work done only for the trace). `data` is only valid during the call (the
 * forward pass reuses its buffers): copy what you keep.
 *
 * Text decoder names (the reference's module paths and, inside a layer, the local variable
 * names of Gemma3nTextDecoderLayer.forward):
 *   inputs_embeds [1,T,H], per_layer_inputs [1,T,L,P], hidden_states.0 [A,1,T,H], then per layer l:
 *   layers.l.{predictions [A,1,T,H], active_prediction, active_prediction_normed, laurel_output,
 *   attn (after post_attention_layernorm), attn_gated, attn_laurel, attn_norm, attn_ffw,
 *   attn_ffw_norm, attn_ffw_laurel_gated [1,T,H], corrected_predictions [A,1,T,H] (before the
 *   per-layer input is added), per_layer_input [1,T,P], first_prediction [1,T,H] (what streams
 *   1..A-1 receive)}, hidden_states.(l+1) [A,1,T,H]; last_hidden_state [1,T,H], logits [1,T,V].
 */
export type Tracer = (name: string, data: Float32Array, shape: number[]) => void;
