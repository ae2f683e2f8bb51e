"""Reference fixtures for src/checkpoint/gguf/dequant.ts, written with gguf-py (the `gguf`
package of llama.cpp, 0.19.0: pip install gguf).

For each block type: 512 values (two K-quant blocks, sixteen 32-value blocks). Types gguf-py can
quantize (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, BF16, F16) are quantized from seeded normal values; for the
K-quants (dequantize only in gguf-py) the block bytes are random, with finite f16 scales. The
expected values are gguf-py's dequantization. Output: test/fixtures/gguf/blocks.json
  { TYPE: { "bytes": base64, "values": [float32...] }, ... }
Run: python3 scripts/gguf_fixtures.py
"""
import base64, json, os
import numpy as np
import gguf
from gguf import GGMLQuantizationType as T, quants

rng = np.random.default_rng(18)
N = 512
out = {}
x = (rng.standard_normal(N) * 0.7).astype(np.float32)
x[5] = 0.0
x[40:72] = 0.0  # an all-zero block
for t in [T.F16, T.BF16, T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q8_0]:
    q = quants.quantize(x.reshape(2, 256), t)
    v = quants.dequantize(q, t).reshape(-1)
    out[t.name] = {"bytes": base64.b64encode(q.tobytes()).decode(), "values": [float(f) for f in v]}

block_size, type_size = {}, {}
for t in [T.Q2_K, T.Q3_K, T.Q4_K, T.Q5_K, T.Q6_K]:
    bs, ts = gguf.GGML_QUANT_SIZES[t]
    raw = rng.integers(0, 256, size=(N // bs) * ts, dtype=np.uint8).reshape(N // bs, ts)
    # f16 scales at their offsets: finite, moderate
    def f16(v):
        return np.frombuffer(np.float16(v).tobytes(), dtype=np.uint8)
    for b in range(N // bs):
        d, dmin = f16(rng.uniform(0.001, 0.05)), f16(rng.uniform(0.001, 0.05))
        if t == T.Q2_K:
            raw[b, 80:82], raw[b, 82:84] = d, dmin
        elif t == T.Q3_K:
            raw[b, 108:110] = d
        elif t in (T.Q4_K, T.Q5_K):
            raw[b, 0:2], raw[b, 2:4] = d, dmin
        elif t == T.Q6_K:
            raw[b, 208:210] = d
    v = quants.dequantize(raw.reshape(-1), t).reshape(-1)
    assert v.shape[0] == N and np.all(np.isfinite(v)), t
    out[t.name] = {"bytes": base64.b64encode(raw.tobytes()).decode(), "values": [float(f) for f in v]}

path = os.path.join(os.path.dirname(__file__), "..", "test", "fixtures", "gguf", "blocks.json")
with open(path, "w") as f:
    json.dump({"source": "gguf-py %s quants.quantize/dequantize, scripts/gguf_fixtures.py" % getattr(gguf, "__version__", "0.19.0"), "count": N, "types": out}, f)
print("wrote", path, {k: len(v["values"]) for k, v in out.items()})
