/**
 * Admission in front of one model: up to `concurrency` requests run at once (the slots the
 * engine's BatchScheduler decodes together; 1 without batching), the rest wait in arrival order
 * in a FIFO of bounded length. A full queue refuses at once (the caller answers 429); a waiter
 * whose client leaves is dropped from the line.
 */
export class QueueFullError extends Error {
  constructor(readonly waiting: number) {
    super(`the server is busy: ${waiting} requests are already waiting`);
  }
}

export class QueueClosedError extends Error {
  constructor() {
    super('the server is shutting down');
  }
}

interface Waiter {
  start: () => void;
  fail: (e: Error) => void;
}

export class RequestQueue {
  private readonly waiting: Waiter[] = [];
  private active = 0;
  private closed = false;
  private idleResolvers: (() => void)[] = [];

  constructor(
    readonly maxWaiting: number,
    readonly concurrency = 1,
  ) {
    if (!(Number.isInteger(concurrency) && concurrency >= 1)) throw new RangeError(`RequestQueue: concurrency must be an integer >= 1, got ${concurrency}`);
  }

  get running(): number {
    return this.active;
  }

  get length(): number {
    return this.waiting.length;
  }

  /**
   * Runs `job` when a slot is free. Throws QueueFullError at once when `maxWaiting`
   * requests already wait; rejects with the signal's reason if it aborts while waiting.
   */
  async run<T>(job: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    if (this.closed) throw new QueueClosedError();
    signal?.throwIfAborted();
    if (this.active < this.concurrency)
      this.active++; // a free slot
    else {
      // Wait for a finishing job to hand its slot over (`active` stays the same).
      if (this.waiting.length >= this.maxWaiting) throw new QueueFullError(this.waiting.length);
      await new Promise<void>((resolve, reject) => {
        const w: Waiter = {
          start: () => {
            signal?.removeEventListener('abort', onAbort);
            resolve();
          },
          fail: (e) => {
            signal?.removeEventListener('abort', onAbort);
            reject(e);
          },
        };
        const onAbort = () => {
          const i = this.waiting.indexOf(w);
          if (i >= 0) this.waiting.splice(i, 1);
          w.fail(signal!.reason as Error);
        };
        signal?.addEventListener('abort', onAbort, { once: true });
        this.waiting.push(w);
      });
    }
    // Here the slot is ours: one was free, or a finishing job handed its slot over.
    try {
      return await job();
    } finally {
      const next = this.waiting.shift();
      if (next) next.start();
      else {
        this.active--;
        if (this.active === 0) for (const r of this.idleResolvers.splice(0)) r();
      }
    }
  }

  /** Refuses new work and fails every waiter with QueueClosedError; the running job goes on. */
  close(): void {
    this.closed = true;
    for (const w of this.waiting.splice(0)) w.fail(new QueueClosedError());
  }

  /** Resolves when no job runs. */
  idle(): Promise<void> {
    if (this.active === 0) return Promise.resolve();
    return new Promise((r) => this.idleResolvers.push(r));
  }
}
