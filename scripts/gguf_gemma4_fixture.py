"""A Gemma 4 GGUF written the way llama.cpp's converter writes one, from a golden tiny model.

llama.cpp converts Gemma4ForConditionalGeneration with `Gemma4Model(Gemma3Model)` in
convert_hf_to_gguf.py (conversion/gemma.py): architecture `gemma4`, the text_config's values as
`gemma4.*` metadata (TextModel, Gemma3Model, then Gemma4Model.set_gguf_parameters, later keys
overwriting earlier ones), tensor names from gguf-py's tensor map for MODEL_ARCH.GEMMA4, no norm
shift (Gemma 4's RMSNorm is x·w), `layer_scalar` renamed `layer_scalar.weight` (filter_tensors)
→ `blk.N.layer_output_scale.weight`, and one extra tensor `rope_freqs.weight` (generate_extra_tensors):
per rotated pair of a full-attention head 1.0, 1e30 for the pairs proportional RoPE leaves alone.
With --outtype f16 the 2-D weights are F16, 1-D tensors F32. The towers go to a separate mmproj
file (not written here). The golden tiny models have no tokenizer, so no tokenizer.* metadata.

This reproduces those steps with gguf-py's own writer and tensor map (gguf 0.19.0).
Run: PYTHONPATH=<unzipped gguf-0.19.0 wheel> python3 scripts/gguf_gemma4_fixture.py \
       test/golden/gemma4/text-tiny-a test/fixtures/gguf/gemma4-text-tiny-a.f16.gguf
"""
import json, struct, sys
import numpy as np
import gguf

src, out = sys.argv[1], sys.argv[2]


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    dtypes = {"F32": np.float32, "F16": np.float16}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        a, b = t["data_offsets"]
        yield name, np.frombuffer(data[a:b], dtype=dtypes[t["dtype"]]).reshape(t["shape"])


cfg = json.load(open(f"{src}/config.json"))
h = cfg["text_config"]
L = h["num_hidden_layers"]
w = gguf.GGUFWriter(out, "gemma4")
arch = "gemma4"

# TextModel.set_gguf_parameters
w.add_context_length(h["max_position_embeddings"])
w.add_embedding_length(h["hidden_size"])
w.add_block_count(L)
w.add_feed_forward_length(h["intermediate_size"])
w.add_head_count(h["num_attention_heads"])
w.add_head_count_kv(h["num_key_value_heads"])
rope = h["rope_parameters"]
w.add_rope_freq_base(rope["full_attention"]["rope_theta"])
w.add_rope_freq_base_swa(rope["sliding_attention"]["rope_theta"])
w.add_layer_norm_rms_eps(h["rms_norm_eps"])
w.add_key_length(h["head_dim"])
w.add_value_length(h["head_dim"])
w.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
# Gemma3Model.set_gguf_parameters
if h.get("final_logit_softcapping"):
    w.add_final_logit_softcapping(h["final_logit_softcapping"])
w.add_sliding_window(h["sliding_window"])
# Gemma4Model.set_gguf_parameters
w.add_shared_kv_layers(h["num_kv_shared_layers"])
w.add_embedding_length_per_layer_input(h.get("hidden_size_per_layer_input") or 0)
swa = [t == "sliding_attention" for t in h["layer_types"]]
w.add_sliding_window_pattern(swa)
hd_full, hd_swa = h["global_head_dim"], h["head_dim"]
w.add_key_length(hd_full)
w.add_value_length(hd_full)
w.add_key_length_swa(hd_swa)
w.add_value_length_swa(hd_swa)
first_shared = L - h["num_kv_shared_layers"]
if h.get("use_double_wide_mlp"):
    n_ff = h["intermediate_size"]
    w.add_feed_forward_length([n_ff if il < first_shared else 2 * n_ff for il in range(L)])
w.add_rope_dimension_count(int(hd_full))
w.add_rope_dimension_count_swa(int(hd_swa * h.get("partial_rotary_factor", 1.0)))
w.add_quantization_version(gguf.GGML_QUANT_VERSION)

# Gemma4Model.generate_extra_tensors: the proportional-RoPE frequency factors of full layers
full = rope["full_attention"]
n_rot = int(hd_full * full["partial_rotary_factor"] / 2)
w.add_tensor("rope_freqs.weight", np.array([1.0] * n_rot + [1e30] * (hd_full // 2 - n_rot), dtype=np.float32))

tmap = gguf.get_tensor_name_map(gguf.MODEL_ARCH.GEMMA4, L)
for name, data in read_safetensors(f"{src}/model.safetensors"):
    if not name.startswith("model.language_model."):
        continue  # the towers are written by the mmproj converter
    if name.endswith("layer_scalar"):
        name += ".weight"  # Gemma4Model.filter_tensors
    hf = name.replace("model.language_model.", "model.")
    new = tmap.get_name(hf, try_suffixes=(".weight", ".bias"))
    if new is None:
        sys.exit(f"cannot map {name}")
    data = data.astype(np.float32)
    if data.ndim >= 2:
        data = data.astype(np.float16)  # --outtype f16: 2-D weights F16, 1-D F32
    w.add_tensor(new, data)

w.write_header_to_file()
w.write_kv_data_to_file()
w.write_tensors_to_file()
w.close()
print("wrote", out)
