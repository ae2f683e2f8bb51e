/**
 * Named intermediate tensors, for golden-output testing and for learners (`gemma3n trace`).
 * The forward pass calls `trace(name, data, shape)` at each step when a tracer is given and
 * does nothing otherwise. Names follow the checkpoint's module names where one exists.
 */
export type Tracer = (name: string, data: Float32Array, shape: number[]) => void;

/** Per-token facts about one forward step, collected for the explain trace. */
export interface StepExplain {
  /** Fraction of nonzero gate activations per sparsified layer (layer -> fraction). */
  ffnActiveFraction: Map<number, number>;
}
