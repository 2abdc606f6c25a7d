/**
 * A throttle for messages where only the newest value matters (cursor moves, scrolling):
 * the first value goes out at once, later ones within the interval are coalesced, and the
 * last one always goes out when the interval ends — so the other side never keeps a stale
 * caret.
 */

/** The timer functions a throttle uses; tests pass fake ones. */
export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

const realTimers: Timers = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

/** Coalesces values pushed faster than once per `intervalMs`; see the module comment. */
export class LatestThrottle<T> {
  private pending: { value: T } | undefined;
  private timer: unknown;
  private disposed = false;

  constructor(
    private readonly intervalMs: number,
    private readonly send: (value: T) => void,
    private readonly timers: Timers = realTimers,
  ) {}

  /** Offers a value; it is sent now or when the current interval ends. */
  push(value: T): void {
    if (this.disposed) {
      return;
    }
    if (this.timer === undefined) {
      this.send(value);
      this.startInterval();
    } else {
      this.pending = { value };
    }
  }

  /** Sends a pending value now, if there is one. */
  flush(): void {
    if (this.timer !== undefined) {
      this.timers.clearTimeout(this.timer);
      this.timer = undefined;
    }
    const pending = this.pending;
    this.pending = undefined;
    if (pending !== undefined && !this.disposed) {
      this.send(pending.value);
    }
  }

  /** Drops a pending value and stops the timer. */
  dispose(): void {
    this.disposed = true;
    this.pending = undefined;
    if (this.timer !== undefined) {
      this.timers.clearTimeout(this.timer);
      this.timer = undefined;
    }
  }

  private startInterval(): void {
    this.timer = this.timers.setTimeout(() => {
      this.timer = undefined;
      const pending = this.pending;
      this.pending = undefined;
      if (pending !== undefined && !this.disposed) {
        // Sending opens a new interval, so a steady stream goes out once per interval.
        this.send(pending.value);
        this.startInterval();
      }
    }, this.intervalMs);
  }
}
