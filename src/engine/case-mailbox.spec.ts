import { describe, expect, it } from '@jest/globals';
import { Mailboxes } from './case-mailbox.js';

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

/** A promise and the function that resolves it. */
function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve: () => void = () => undefined;
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

describe('Mailboxes', () => {
  it('runs the inputs of one case one after another, in the order posted', async () => {
    const boxes = new Mailboxes();
    const log: string[] = [];
    const first = deferred();
    const a = boxes.post('case-1', async () => {
      log.push('a starts');
      await first.promise;
      log.push('a ends');
      return 'a';
    });
    const b = boxes.post('case-1', async () => {
      log.push('b runs');
      return 'b';
    });
    await tick();
    expect(log).toEqual(['a starts']);
    first.resolve();
    expect(await Promise.all([a, b])).toEqual(['a', 'b']);
    expect(log).toEqual(['a starts', 'a ends', 'b runs']);
  });

  it('runs inputs of different cases at the same time', async () => {
    const boxes = new Mailboxes();
    const gate = deferred();
    const started: string[] = [];
    const runs = ['case-1', 'case-2'].map((key) =>
      boxes.post(key, async () => {
        started.push(key);
        await gate.promise;
        return key;
      }),
    );
    await tick();
    expect(started).toEqual(['case-1', 'case-2']);
    gate.resolve();
    expect(await Promise.all(runs)).toEqual(['case-1', 'case-2']);
  });

  it('runs an input posted after the case went idle', async () => {
    const boxes = new Mailboxes();
    expect(await Promise.all([1, 2, 3].map((n) => boxes.post('case-1', async () => n)))).toEqual([
      1, 2, 3,
    ]);
    await expect(boxes.post('case-1', async () => 4)).resolves.toBe(4);
  });

  it('rejects only the input that failed and goes on with the next', async () => {
    const boxes = new Mailboxes();
    const order: string[] = [];
    const ok = boxes.post('case-1', async () => {
      order.push('ok');
      return 'ok';
    });
    const failing = boxes.post('case-1', async () => {
      order.push('failing');
      throw new Error('conflict');
    });
    const next = boxes.post('case-1', async () => {
      order.push('next');
      return 'next';
    });
    await expect(ok).resolves.toBe('ok');
    await expect(failing).rejects.toThrow('conflict');
    await expect(next).resolves.toBe('next');
    expect(order).toEqual(['ok', 'failing', 'next']);
  });
});
