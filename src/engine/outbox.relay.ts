import { Injectable, Logger, type OnApplicationShutdown } from '@nestjs/common';
import { STEP_EXECUTE } from '#agency-contract';
import { QueueService } from '../queue/queue.service.js';
import { EngineRepository } from './engine.repository.js';
import type { OutboxMessage } from './engine.types.js';

type OutboxRow = { id: string } & OutboxMessage;

/** Completed jobs are kept a while for inspection, then removed, so a re-dispatch can run again. */
const KEEP_COMPLETED = { age: 3_600, count: 50_000 };
const KEEP_FAILED = { age: 7 * 24 * 3_600 };

/**
 * Publishes outbox rows to their queues. The fast path publishes a transaction's rows right after
 * it commits; the sweeper (`sweep`, run periodically by the engine role) publishes whatever the
 * fast path missed, a crash for instance. A row published twice is harmless: the job id is the
 * step run and attempt, so BullMQ keeps one job.
 */
@Injectable()
export class OutboxRelay implements OnApplicationShutdown {
  private readonly logger = new Logger(OutboxRelay.name);
  private closing = false;

  constructor(
    private readonly queues: QueueService,
    private readonly repository: EngineRepository,
  ) {}

  private async add(rows: OutboxRow[]): Promise<void> {
    const now = Date.now();
    await Promise.all(
      rows.map((row) =>
        this.queues.queue(row.queue).raw.add(row.jobName, row.payload, {
          jobId: row.jobId,
          delay: Math.max(0, (row.availableAt?.getTime() ?? now) - now),
          removeOnComplete: KEEP_COMPLETED,
          removeOnFail: KEEP_FAILED,
        }),
      ),
    );
  }

  private stepRunIds(rows: OutboxRow[]): string[] {
    return rows
      .filter((r) => r.jobName === STEP_EXECUTE)
      .map((r) => (r.payload as { stepRunId: string }).stepRunId);
  }

  /** Fast path: never throws; what fails here the sweeper publishes later. */
  async publish(rows: OutboxRow[]): Promise<void> {
    if (rows.length === 0 || this.closing) return;
    try {
      await this.add(rows);
      await this.repository.markSent(rows.map((r) => r.id));
      await this.repository.markDispatched(this.stepRunIds(rows));
    } catch (error) {
      this.logger.warn(
        { err: error, rows: rows.length },
        'publishing after commit failed; the sweeper will retry',
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
    await this.repository.markDispatched(this.stepRunIds(published));
    return published.length;
  }

  onApplicationShutdown(): void {
    this.closing = true;
  }
}
