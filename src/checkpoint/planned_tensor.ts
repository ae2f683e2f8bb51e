/**
 * A tensor to be written whose bytes are produced on demand, in pieces: the writer knows its
 * size up front (to lay out the safetensors header) and the tensor never has to exist whole in
 * memory (src/cli/stream_writer.ts writes them; packed_v2.ts plans a packed checkpoint).
 */
import type { DType } from './dtype.js';

/** Where a tensor's bytes go: `offset` is relative to the tensor's first byte. */
export type TensorSink = (offset: number, bytes: Uint8Array) => Promise<void>;

export interface PlannedTensor {
  name: string;
  dtype: DType;
  shape: readonly number[];
  /** Writes exactly numel(shape)·bytes(dtype) bytes through `sink`, in any order of pieces. */
  write(sink: TensorSink): Promise<void>;
}

/** A tensor whose bytes are already in memory. */
export function inMemory(name: string, dtype: DType, shape: readonly number[], data: ArrayBufferView): PlannedTensor {
  return { name, dtype, shape, write: (sink) => sink(0, new Uint8Array(data.buffer, data.byteOffset, data.byteLength)) };
}
