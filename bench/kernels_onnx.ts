/**
 * A tiny ONNX protobuf writer, just enough for the bench anchors: a graph of parallel MatMul
 * or MatMulNBits nodes on one input (field numbers from onnx/onnx.proto3).
 */

class Pb {
  private parts: Uint8Array[] = [];
  private len = 0;
  private push(b: Uint8Array): void {
    this.parts.push(b);
    this.len += b.length;
  }
  private varint(v: number): void {
    const out: number[] = [];
    let n = BigInt(v);
    do {
      let b = Number(n & 0x7fn);
      n >>= 7n;
      if (n) b |= 0x80;
      out.push(b);
    } while (n);
    this.push(Uint8Array.from(out));
  }
  int(field: number, v: number): this {
    this.varint(field << 3);
    this.varint(v);
    return this;
  }
  bytes(field: number, b: Uint8Array): this {
    this.varint((field << 3) | 2);
    this.varint(b.length);
    this.push(b);
    return this;
  }
  str(field: number, s: string): this {
    return this.bytes(field, new TextEncoder().encode(s));
  }
  msg(field: number, m: Pb): this {
    return this.bytes(field, m.finish());
  }
  finish(): Uint8Array {
    const out = new Uint8Array(this.len);
    let o = 0;
    for (const p of this.parts) {
      out.set(p, o);
      o += p.length;
    }
    return out;
  }
}

const FLOAT = 1,
  UINT8 = 2;

function tensor(name: string, dims: number[], type: number, raw: Uint8Array): Pb {
  const t = new Pb();
  for (const d of dims) t.int(1, d);
  return t.int(2, type).str(8, name).bytes(9, raw);
}

function valueInfo(name: string, dims: number[]): Pb {
  const shape = new Pb();
  for (const d of dims) shape.msg(1, new Pb().int(1, d));
  return new Pb().str(1, name).msg(2, new Pb().msg(1, new Pb().int(1, FLOAT).msg(2, shape)));
}

function intAttr(name: string, v: number): Pb {
  return new Pb().str(1, name).int(3, v).int(20, 2);
}

function model(graph: Pb): Uint8Array {
  return new Pb()
    .int(1, 8) // ir_version
    .msg(8, new Pb().str(1, '').int(2, 17))
    .msg(8, new Pb().str(1, 'com.microsoft').int(2, 1))
    .msg(7, graph)
    .finish();
}

/**
 * `copies` MatMulNBits nodes (int4, block 32, accuracy_level 4) on X [M, K], each with its own
 * random weight [N, K] (K a multiple of 32): outputs Y0..Y{copies-1} [M, N].
 */
export function matMulNBitsModel(M: number, K: number, N: number, copies: number, seed = 1): Uint8Array {
  const g = new Pb().str(2, 'q4');
  const blocks = K / 32;
  let s = seed >>> 0;
  const rnd = () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) >>> 24;
  for (let c = 0; c < copies; c++) {
    const b = new Uint8Array(N * blocks * 16);
    for (let i = 0; i < b.length; i++) b[i] = rnd();
    const sc = new Float32Array(N * blocks);
    for (let i = 0; i < sc.length; i++) sc[i] = 0.01 + rnd() / 25600;
    g.msg(5, tensor(`B${c}`, [N, blocks, 16], UINT8, b));
    g.msg(5, tensor(`S${c}`, [N * blocks], FLOAT, new Uint8Array(sc.buffer)));
    const node = new Pb().str(1, 'X').str(1, `B${c}`).str(1, `S${c}`).str(2, `Y${c}`).str(3, `mm${c}`).str(4, 'MatMulNBits').str(7, 'com.microsoft');
    node.msg(5, intAttr('K', K)).msg(5, intAttr('N', N)).msg(5, intAttr('bits', 4)).msg(5, intAttr('block_size', 32)).msg(5, intAttr('accuracy_level', 4));
    g.msg(1, node);
    g.msg(12, valueInfo(`Y${c}`, [M, N]));
  }
  g.msg(11, valueInfo('X', [M, K]));
  return model(g);
}

/**
 * `copies` f32 MatMul nodes X [M, K] · W [K, N], each weight different: onnxruntime's graph
 * optimizer shares identical initializers, which made 8 equal copies one cache-resident weight.
 */
export function matMulModel(M: number, K: number, N: number, copies: number): Uint8Array {
  const g = new Pb().str(2, 'f32');
  for (let c = 0; c < copies; c++) {
    const w = new Float32Array(K * N);
    for (let i = 0; i < w.length; i++) w[i] = (((i + c * 7919) * 2654435761) % 1000) / 1000 - 0.5;
    g.msg(5, tensor(`W${c}`, [K, N], FLOAT, new Uint8Array(w.buffer)));
    g.msg(1, new Pb().str(1, 'X').str(1, `W${c}`).str(2, `Y${c}`).str(3, `mm${c}`).str(4, 'MatMul'));
    g.msg(12, valueInfo(`Y${c}`, [M, N]));
  }
  g.msg(11, valueInfo('X', [M, K]));
  return model(g);
}
