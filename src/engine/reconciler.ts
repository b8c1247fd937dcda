import { Injectable, Logger } from '@nestjs/common';
import {
  STEP_EXECUTE,
  agencyQueueName,
  stepJobId,
  type FactValue,
  type StepJob,
} from '#agency-contract';
import { EngineRepository } from './engine.repository.js';
import type { OutboxMessage } from './engine.types.js';
import { OutboxRelay } from './outbox.relay.js';

/**
 * Re-dispatches, from Postgres, every step that was handed to a queue and has not been answered
 * for a while: the recovery after Redis lost its data or restarted empty (invariant 1). The job
 * is the same (same id, same facts: exactly the records disclosed for that attempt), so when it
 * still exists in Redis the publication is a no-op, and when it ran already the adapter's
 * idempotency key turns the repeat into the recorded answer.
 */
@Injectable()
export class Reconciler {
  private readonly logger = new Logger(Reconciler.name);

  constructor(
    private readonly repository: EngineRepository,
    private readonly relay: OutboxRelay,
  ) {}

  async reconcile(olderThanMs: number, limit = 200): Promise<number> {
    const outbox = await this.repository.transaction(async (manager) => {
      const stale = await this.repository.claimStale(manager, olderThanMs, limit);
      const messages: OutboxMessage[] = [];
      for (const run of stale) {
        const records = await this.repository.factRecordsByIds(manager, run.disclosedFactIds);
        const job: StepJob = {
          caseId: run.caseId,
          stepRunId: run.id,
          stepId: run.stepId,
          action: run.action,
          attempt: run.attempt,
          idempotencyKey: run.id,
          facts: Object.fromEntries(records.map((r) => [r.factKey, r.value as FactValue])),
          ...(run.deadlineAt ? { deadline: run.deadlineAt.toISOString() } : {}),
        };
        messages.push({
          queue: agencyQueueName(run.agency),
          jobName: STEP_EXECUTE,
          jobId: stepJobId(run.id, run.attempt),
          payload: job,
        });
        await this.repository.touchStepRun(manager, run.id);
      }
      if (stale.length > 0)
        this.logger.warn({ steps: stale.length }, 're-dispatching unanswered steps');
      return this.repository.insertOutbox(manager, messages);
    });
    await this.relay.publish(outbox);
    return outbox.length;
  }
}
