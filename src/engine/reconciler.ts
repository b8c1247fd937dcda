import { Injectable, Logger } from '@nestjs/common';
import {
  FACT_LOOKUP,
  STEP_EXECUTE,
  agencyQueueName,
  lookupJobId,
  stepJobId,
  type FactValue,
  type LookupJob,
  type StepJob,
} from '#agency-contract';
import { deadlineTimer } from './engine.jobs.js';
import type { OutboxMessage } from './engine.types.js';
import { HousekeepingRepository } from './housekeeping.repository.js';
import { OutboxRelay } from './outbox.relay.js';

/**
 * Re-dispatches, from Postgres, every step and look-up that was handed to a queue and has not
 * been answered for a while: the recovery after Redis lost its data or restarted empty
 * (invariant 1). The job is the same (same id, same facts: exactly the records disclosed for
 * that attempt), so when it still exists in Redis the publication is a no-op, and when it ran
 * already the adapter's idempotency key turns the repeat into the recorded answer. A step
 * awaiting a decision well past its expected date is asked again the same way: the adapter
 * answers with the decision if it has made one (a report lost with Redis' data).
 */
@Injectable()
export class Reconciler {
  private readonly logger = new Logger(Reconciler.name);
  constructor(
    private readonly repository: HousekeepingRepository,
    private readonly relay: OutboxRelay,
  ) {}

  async reconcile(olderThanMs: number, limit = 200): Promise<number> {
    const outbox = await this.repository.transaction(async (manager) => {
      const stale = await this.repository.claimStale(manager, olderThanMs, limit);
      const lookups = await this.repository.claimStaleLookups(manager, olderThanMs, limit);
      const messages: OutboxMessage[] = [];
      const disclosed = await this.repository.factRecordsByIds(manager, [
        ...stale.flatMap((r) => r.disclosedFactIds),
        ...lookups.flatMap((l) => l.disclosedFactIds),
      ]);
      const facts = (ids: string[]): Record<string, FactValue> =>
        Object.fromEntries(
          disclosed.filter((r) => ids.includes(r.id)).map((r) => [r.factKey, r.value as FactValue]),
        );
      for (const run of stale) {
        const job: StepJob = {
          caseId: run.caseId,
          stepRunId: run.id,
          stepId: run.stepId,
          action: run.action,
          attempt: run.attempt,
          idempotencyKey: run.id,
          facts: facts(run.disclosedFactIds),
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
      for (const lookup of lookups) {
        const job: LookupJob = {
          caseId: lookup.caseId,
          lookupId: lookup.id,
          attempt: lookup.attempt,
          idempotencyKey: lookup.id,
          facts: facts(lookup.disclosedFactIds),
          factKeys: lookup.factKeys,
        };
        messages.push({
          queue: agencyQueueName(lookup.agency),
          jobName: FACT_LOOKUP,
          jobId: lookupJobId(lookup.id, lookup.attempt),
          payload: job,
        });
        await this.repository.touchLookup(manager, lookup.id);
      }
      if (messages.length > 0) {
        this.logger.warn(
          { steps: stale.length, lookups: lookups.length },
          're-dispatching unanswered steps and look-ups',
        );
      }
      return this.repository.insertOutbox(manager, messages);
    });
    // A job whose answer was lost may still be in Redis as completed (kept an hour), or orphaned:
    // it must run again, not be deduplicated away.
    await this.relay.clearFinished(outbox);
    await this.relay.publish(outbox);
    return outbox.length;
  }

  /**
   * Writes the deadline timers of steps open for `olderThanMs` that have none yet (decision
   * 0015): one transaction claims them, writes their timers to the outbox and marks them armed;
   * then the timers are published, and so on until none are left (at most `rounds` rounds of
   * `limit`). Returns how many were armed.
   */
  async armTimers(olderThanMs: number, limit = 500, rounds = 20): Promise<number> {
    let armed = 0;
    for (let round = 0; round < rounds; round += 1) {
      const written = await this.armSome(olderThanMs, limit);
      armed += written;
      if (written < limit) break;
    }
    return armed;
  }

  private async armSome(olderThanMs: number, limit: number): Promise<number> {
    const outbox = await this.repository.transaction(async (manager) => {
      const due = await this.repository.claimTimersToArm(manager, olderThanMs, limit);
      const armed = due.flatMap((run) =>
        run.deadlineAt ? [{ id: run.id, caseId: run.caseId, deadlineAt: run.deadlineAt }] : [],
      );
      await this.repository.markTimersArmed(manager, armed);
      return this.repository.insertOutbox(
        manager,
        armed.map((run) => deadlineTimer(run, run.deadlineAt)),
      );
    });
    await this.relay.publish(outbox);
    return outbox.length;
  }
}
