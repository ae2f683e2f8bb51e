/**
 * Start-up marks: named points on the way from process start to the first token (config read,
 * kernels ready, tokenizer loaded, each layer's weights in place, prefill done ...). Free when
 * nobody listens; bench/footprint_child.ts installs a sink that timestamps them, which is how
 * the README's start-up breakdown is measured.
 */
export type MarkSink = (name: string) => void;

let sink: MarkSink | null = null;

/** Installs (or, with null, removes) the listener of every mark. */
export function setMarkSink(s: MarkSink | null): void {
  sink = s;
}

/** Records a named point on the start-up path (no-op without a sink). */
export function mark(name: string): void {
  if (sink !== null) sink(name);
}
