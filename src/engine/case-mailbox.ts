/**
 * A mailbox per case: the inputs posted for one case run strictly one after another, in the
 * order they were posted; inputs for different cases run at the same time. A mailbox exists
 * while it has inputs, and holds the state its last input left (each input is handed it, and
 * hands on what it leaves), so inputs that queue up behind each other on a case do not read the
 * case again. When the last input is done the mailbox, and what it held, is gone: a case is
 * read afresh the next time (nothing outside a case's revision can go stale in between).
 */
export class Mailboxes<S> {
  private readonly boxes = new Map<string, Mailbox<S>>();

  constructor(
    /** Told when a case's mailbox is gone (its last input is done). */
    private readonly onClosed: (key: string) => void = () => undefined,
  ) {}

  /**
   * Runs `work` when every input posted for `key` before it is done, with the state the last of
   * them left; `work` returns its value and the state it leaves (undefined: none to hand on).
   * A `work` that throws leaves no state behind it.
   */
  post<T>(
    key: string,
    work: (held: S | undefined) => Promise<{ value: T; leaves: S | undefined }>,
  ): Promise<T> {
    let box = this.boxes.get(key);
    if (!box) {
      box = { letters: [], running: false, held: undefined };
      this.boxes.set(key, box);
    }
    const posted = new Promise<T>((resolve, reject) => {
      box.letters.push({
        run: async (held) => {
          const { value, leaves } = await work(held);
          resolve(value);
          return leaves;
        },
        fail: reject,
      });
    });
    if (!box.running) void this.drain(key, box);
    return posted;
  }

  /** Whether `key` has inputs waiting or running now. */
  active(key: string): boolean {
    return this.boxes.has(key);
  }

  private async drain(key: string, box: Mailbox<S>): Promise<void> {
    box.running = true;
    for (let letter = box.letters.shift(); letter; letter = box.letters.shift()) {
      try {
        box.held = await letter.run(box.held);
      } catch (error) {
        box.held = undefined;
        letter.fail(error);
      }
    }
    // No await between the last shift and here: nothing can be posted to this box meanwhile.
    this.boxes.delete(key);
    this.onClosed(key);
  }
}

interface Mailbox<S> {
  letters: Array<{
    run: (held: S | undefined) => Promise<S | undefined>;
    fail: (e: unknown) => void;
  }>;
  running: boolean;
  held: S | undefined;
}
