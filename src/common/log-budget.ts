/**
 * At most `perWindow` log lines per key in each window of `windowMs`; the lines held back are
 * counted and reported with the next one let through. For what a party outside leo can cause at
 * will (an agency flooding its results stream with refused answers): the metrics count every
 * event, and the log stays readable and cheap. Keys are few (an agency each).
 */
export class LogBudget {
  private readonly windows = new Map<string, { start: number; used: number; held: number }>();

  constructor(
    private readonly perWindow: number,
    private readonly windowMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Whether to log this line for `key`, and how many were held back since the last one logged. */
  take(key: string): { log: boolean; held: number } {
    const at = this.now();
    let window = this.windows.get(key);
    if (!window || at - window.start >= this.windowMs) {
      const held = window?.held ?? 0;
      window = { start: at, used: 0, held: 0 };
      this.windows.set(key, window);
      window.used = 1;
      return { log: true, held };
    }
    if (window.used < this.perWindow) {
      window.used += 1;
      const held = window.held;
      window.held = 0;
      return { log: true, held };
    }
    window.held += 1;
    return { log: false, held: 0 };
  }
}
