import { describe, expect, it } from '@jest/globals';
import { Mailboxes } from './case-mailbox.js';

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

/** A promise and the functions that settle it. */
function deferred<T = void>(): { promise: Promise<T>; resolve: (v: T) => void } {
  let resolve: (v: T) => void = () => undefined;
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

describe('Mailboxes', () => {
  it('runs the inputs of one case one after another, in the order posted', async () => {
    const boxes = new Mailboxes<number>();
    const log: string[] = [];
    const first = deferred();
    const a = boxes.post('case-1', async () => {
      log.push('a starts');
      await first.promise;
      log.push('a ends');
      return { value: 'a', leaves: 1 };
    });
    const b = boxes.post('case-1', async (held) => {
      log.push(`b starts with ${String(held)}`);
      return { value: 'b', leaves: 2 };
    });
    await tick();
    expect(log).toEqual(['a starts']);
    first.resolve();
    expect(await Promise.all([a, b])).toEqual(['a', 'b']);
    expect(log).toEqual(['a starts', 'a ends', 'b starts with 1']);
  });

  it('runs inputs of different cases at the same time', async () => {
    const boxes = new Mailboxes<number>();
    const gate = deferred();
    const started: string[] = [];
    const runs = ['case-1', 'case-2'].map((key) =>
      boxes.post(key, async () => {
        started.push(key);
        await gate.promise;
        return { value: key, leaves: undefined };
      }),
    );
    await tick();
    expect(started).toEqual(['case-1', 'case-2']);
    expect(boxes.active('case-1') && boxes.active('case-2')).toBe(true);
    gate.resolve();
    await Promise.all(runs);
  });

  it('hands each input the state the one before it left, and forgets it when the case is idle', async () => {
    const closed: string[] = [];
    const boxes = new Mailboxes<number>((key) => closed.push(key));
    const seen: Array<number | undefined> = [];
    const post = (leaves: number | undefined): Promise<void> =>
      boxes.post('case-1', async (held) => {
        seen.push(held);
        return { value: undefined, leaves };
      });
    await Promise.all([post(1), post(2), post(undefined), post(4)]);
    expect(seen).toEqual([undefined, 1, 2, undefined]);
    expect(boxes.active('case-1')).toBe(false);
    expect(closed).toEqual(['case-1']);
    // A later input starts afresh: nothing is kept across idle periods.
    await post(5);
    expect(seen.at(-1)).toBeUndefined();
  });

  it('rejects only the input that failed, drops its state, and goes on with the next', async () => {
    const boxes = new Mailboxes<number>();
    const seen: Array<number | undefined> = [];
    const ok = boxes.post('case-1', async () => ({ value: 'ok', leaves: 7 }));
    const failing = boxes.post('case-1', async (held) => {
      seen.push(held);
      throw new Error('conflict');
    });
    const next = boxes.post('case-1', async (held) => {
      seen.push(held);
      return { value: 'next', leaves: undefined };
    });
    await expect(ok).resolves.toBe('ok');
    await expect(failing).rejects.toThrow('conflict');
    await expect(next).resolves.toBe('next');
    expect(seen).toEqual([7, undefined]);
  });
});
