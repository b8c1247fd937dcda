/**
 * A mailbox per case: the inputs posted for one case run strictly one after another, in the
 * order they were posted; inputs for different cases run at the same time. A mailbox exists
 * only while it has inputs.
 */
export class Mailboxes {
  private readonly boxes = new Map<string, Mailbox>();

  /** Runs `work` once every input posted for `key` before it is done; its outcome is `work`'s. */
  post<T>(key: string, work: () => Promise<T>): Promise<T> {
    let box = this.boxes.get(key);
    if (!box) {
      box = { letters: [], running: false };
      this.boxes.set(key, box);
    }
    const posted = new Promise<T>((resolve, reject) => {
      box.letters.push(() => work().then(resolve, reject));
    });
    if (!box.running) void this.drain(key, box);
    return posted;
  }

  /** The keys with work posted or under way. */
  keys(): string[] {
    return [...this.boxes.keys()];
  }

  private async drain(key: string, box: Mailbox): Promise<void> {
    box.running = true;
    for (let letter = box.letters.shift(); letter; letter = box.letters.shift()) {
      await letter();
    }
    // No await between the last shift and here: nothing can be posted to this box meanwhile.
    this.boxes.delete(key);
  }
}

interface Mailbox {
  /** Each settles its own input's promise and never rejects. */
  letters: Array<() => Promise<void>>;
  running: boolean;
}
