import {
  Injectable,
  Logger,
  type BeforeApplicationShutdown,
  type OnApplicationShutdown,
} from '@nestjs/common';
import { STEP_EXECUTE } from '#agency-contract';
import { Batcher } from '../database/batcher.js';
import { QueueService } from '../queue/queue.service.js';
import type { OutboxMessage } from './engine.types.js';
import { HousekeepingRepository } from './housekeeping.repository.js';

type OutboxRow = { id: string } & OutboxMessage;

/**
 * An agency job carries the facts its step needs (personal data): once the agency has answered
 * (the SDK completes a job only after its answer is on the results stream) nothing needs it. It
 * is kept a minute, so that a publication repeated meanwhile (the sweeper, after marks lost in a
 * crash) is one job in BullMQ rather than a second delivery, then removed. A job that failed is
 * kept six hours for an operator to read why (decision 0022). A job published again after that
 * runs again, and meets the agency's idempotency.
 */
const KEEP_COMPLETED = { age: 60 };
const KEEP_FAILED = { age: 6 * 3_600 };
/**
 * Published rows are marked sent (and their steps dispatched) together, this often at most. At
 * moderate load a shorter delay made the marks a statement for every few rows (at 30 cases/s,
 * 20 ms: 1.2 statements a case, 1.4 ms each); a crash before the marks are written only makes
 * the sweeper publish the rows again (more than 2 s old), which BullMQ deduplicates by job id.
 */
const MARK_DELAY_MS = 200;

/**
 * Publishes outbox rows to their queues. The fast path publishes a transaction's rows right after
 * it commits; the sweeper (`sweep`, run periodically by the engine role) publishes whatever the
 * fast path missed, a crash for instance. A row published twice is harmless: the job id is the
 * step run and attempt, so BullMQ keeps one job.
 */
@Injectable()
export class OutboxRelay implements BeforeApplicationShutdown, OnApplicationShutdown {
  private readonly logger = new Logger(OutboxRelay.name);
  private closing = false;
  private marks: { outbox: string[]; steps: string[] } = { outbox: [], steps: [] };
  private markTimer: NodeJS.Timeout | undefined;
  private readonly dispatchedListeners: Array<(stepRunIds: readonly string[]) => void> = [];
  private marking: Promise<void> = Promise.resolve();
  /**
   * The rows of changes committed together are published together (decision 0014): one
   * addBulk per queue for the batch, not per change. Tells each change whether its rows went.
   */
  private readonly publishing = new Batcher<OutboxRow[], boolean>(
    async (changes) => {
      let published = true;
      try {
        await this.add(changes.flat());
      } catch (error) {
        published = false;
        this.logger.warn(
          { err: error, changes: changes.length },
          'publishing after commit failed; the sweeper will retry',
        );
      }
      return changes.map(() => ({ status: 'fulfilled', value: published }));
    },
    { maxBatch: 64, maxInFlight: 2 },
  );

  constructor(
    private readonly queues: QueueService,
    private readonly repository: HousekeepingRepository,
  ) {}

  /** One round trip per queue: the rows of a batch of changes usually go to a few queues. */
  private async add(rows: OutboxRow[]): Promise<void> {
    const now = Date.now();
    const byQueue = new Map<string, OutboxRow[]>();
    for (const row of rows) {
      const queued = byQueue.get(row.queue);
      if (queued) queued.push(row);
      else byQueue.set(row.queue, [row]);
    }
    await Promise.all(
      [...byQueue.entries()].map(([queue, queued]) =>
        this.queues.queue(queue).raw.addBulk(
          queued.map((row) => ({
            name: row.jobName,
            data: row.payload,
            opts: {
              jobId: row.jobId,
              delay: Math.max(0, (row.availableAt?.getTime() ?? now) - now),
              removeOnComplete: KEEP_COMPLETED,
              removeOnFail: KEEP_FAILED,
            },
          })),
        ),
      ),
    );
  }

  private stepRunIds(rows: OutboxRow[]): string[] {
    return rows
      .filter((r) => r.jobName === STEP_EXECUTE)
      .map((r) => (r.payload as { stepRunId: string }).stepRunId);
  }

  /**
   * For re-dispatching what went unanswered: removes the jobs with these rows' ids that can no
   * longer run (finished, or orphaned by a partial loss of Redis' data: a job whose key survived
   * but that is in no list), so publishing them again is not a no-op. Jobs still waiting,
   * delayed or running are left alone.
   */
  async clearFinished(rows: OutboxRow[]): Promise<number> {
    let cleared = 0;
    for (const row of rows) {
      // By id only, never reading the job's record: an agency's credential can write to its
      // own jobs, and a record that does not parse must not stop the re-dispatch of the others.
      try {
        const queue = this.queues.queue(row.queue).raw;
        const state = await queue.getJobState(row.jobId);
        if (state !== 'completed' && state !== 'failed' && state !== 'unknown') continue;
        if ((await queue.remove(row.jobId)) === 1) cleared += 1;
      } catch (error) {
        this.logger.warn({ err: error, jobId: row.jobId }, 'could not remove a finished job');
      }
    }
    return cleared;
  }

  /**
   * Fast path: never throws; what fails here the sweeper publishes later. The rows are marked
   * sent in batches (one statement for all the changes of a few milliseconds): until then a
   * crash leaves them unsent, and the sweeper's second publication is a no-op in BullMQ.
   */
  async publish(rows: OutboxRow[]): Promise<void> {
    if (rows.length === 0 || this.closing) return;
    if (!(await this.publishing.submit(rows))) return;
    this.marks.outbox.push(...rows.map((r) => r.id));
    this.marks.steps.push(...this.stepRunIds(rows));
    this.markTimer ??= setTimeout(() => {
      this.markTimer = undefined;
      this.marking = this.marking.then(() => this.flushMarks());
    }, MARK_DELAY_MS);
  }

  /**
   * Tells `listener` of the step runs marked dispatched (ready → dispatched, outside their
   * case's revision): the engine's kept cases show them so (decision 0020).
   */
  onDispatched(listener: (stepRunIds: readonly string[]) => void): void {
    this.dispatchedListeners.push(listener);
  }

  private dispatched(stepRunIds: readonly string[]): void {
    if (stepRunIds.length === 0) return;
    for (const listener of this.dispatchedListeners) listener(stepRunIds);
  }

  private async flushMarks(): Promise<void> {
    const { outbox, steps } = this.marks;
    this.marks = { outbox: [], steps: [] };
    try {
      await this.repository.markPublished(outbox, steps);
      this.dispatched(steps);
    } catch (error) {
      this.logger.warn(
        { err: error, rows: outbox.length },
        'marking published rows failed; the sweeper will publish them again',
      );
    }
  }

  /** Publishes up to `limit` unsent rows, holding their locks so other sweepers skip them. */
  async sweep(limit = 200): Promise<number> {
    const published = await this.repository.transaction(async (manager) => {
      const rows = await this.repository.claimUnsent(manager, limit);
      if (rows.length === 0) return [];
      await this.add(rows);
      await this.repository.markSent(
        rows.map((r) => r.id),
        manager,
      );
      return rows;
    });
    const steps = this.stepRunIds(published);
    await this.repository.markPublished([], steps);
    this.dispatched(steps);
    return published.length;
  }

  /** The marks still pending are written while the database pool is open. */
  async beforeApplicationShutdown(): Promise<void> {
    clearTimeout(this.markTimer);
    this.markTimer = undefined;
    await this.marking;
    await this.flushMarks();
  }

  onApplicationShutdown(): void {
    this.closing = true;
  }
}
