/**
 * Group commit in the application. Calls that arrive together, or while earlier ones are in
 * flight, are run together as one call of `run` over all of them: one statement, one round trip
 * and one commit for many changes, instead of one each (decision 0014).
 *
 * Nothing waits for a batch to fill. A call made when a slot is free goes at the end of the
 * current turn of the event loop, with whatever else arrived in that turn; calls made while
 * `maxInFlight` batches are running wait for the first of them to finish and then go together
 * (at most `maxBatch` at a time). So a lone call costs what it did unbatched, and the batches grow
 * only as the load does.
 */
export class Batcher<I, O> {
  private readonly queue: Array<{
    item: I;
    resolve: (value: O) => void;
    reject: (reason: unknown) => void;
  }> = [];
  private inFlight = 0;
  private scheduled = false;

  constructor(
    /** Runs a batch; one outcome per item, in the items' order. */
    private readonly run: (items: readonly I[]) => Promise<Array<PromiseSettledResult<O>>>,
    private readonly limits: { maxBatch: number; maxInFlight: number },
    /** Told each batch's size as it starts (a metric). */
    private readonly observe: (size: number) => void = () => undefined,
  ) {}

  submit(item: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => {
          this.scheduled = false;
          this.pump();
        });
      }
    });
  }

  private pump(): void {
    while (this.inFlight < this.limits.maxInFlight && this.queue.length > 0) {
      const batch = this.queue.splice(0, this.limits.maxBatch);
      this.inFlight += 1;
      this.observe(batch.length);
      this.run(batch.map((entry) => entry.item))
        .then(
          (outcomes) => {
            batch.forEach((entry, i) => {
              const outcome = outcomes[i];
              if (outcome?.status === 'fulfilled') entry.resolve(outcome.value);
              else entry.reject(outcome ? outcome.reason : new Error('the batch gave no outcome'));
            });
          },
          (error: unknown) => {
            for (const entry of batch) entry.reject(error);
          },
        )
        .finally(() => {
          this.inFlight -= 1;
          this.pump();
        });
    }
  }
}

/**
 * Runs `run` over the whole batch; if it fails, over each item alone, so that one item's error
 * (bad input, a deadlock with another replica's batch) reaches only its own caller and the others
 * still go through. A failed statement wrote nothing, so running its items again is safe.
 */
export async function eachAloneOnFailure<I, O>(
  items: readonly I[],
  run: (items: readonly I[]) => Promise<O[]>,
): Promise<Array<PromiseSettledResult<O>>> {
  try {
    const outputs = await run(items);
    return outputs.map((value) => ({ status: 'fulfilled', value }));
  } catch (error) {
    if (items.length === 1) return [{ status: 'rejected', reason: error }];
    return Promise.allSettled(
      items.map(async (item) => {
        const [output] = await run([item]);
        return output as O;
      }),
    );
  }
}
