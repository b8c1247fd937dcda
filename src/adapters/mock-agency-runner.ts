import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  ADAPTER_MISCONFIGURED,
  UNKNOWN_ACTION,
  type AgencyWorkerLogger,
  type FactValue,
  type LookupJob,
  type LookupOutcome,
  type StepCancelJob,
  type StepHandler,
  type StepHandlerContext,
  type StepJob,
  type StepOutcome,
} from '#agency-contract';
import { FORMAT_CHECKS } from '#facts';
import type { MockAgenciesConfig } from '../config/config.schema.js';
import {
  IncompleteApplication,
  MockMisconfigured,
  agencyReference,
  decisionOutcome,
  refused,
  type MockAction,
  type MockAgency,
  type MockDecision,
} from '#mock-agencies';
import type { Application, EffectRecord, MockLedger } from './mock-ledger.repository.js';

/** A decision due that cannot be made now (a configured mock at fault); its reason has no values. */
export class UndecidableNow extends Error {
  constructor(reason: string) {
    super(reason);
    this.name = 'UndecidableNow';
  }
}

/** A source of uniform numbers in [0, 1): Math.random, or a scripted one in tests. */
export type RandomSource = () => number;

/**
 * Runs one mock agency as a real one behaves towards leo:
 * - every delivered request is recorded in the ledger with the facts it carried;
 * - the effect is made at most once per idempotency key, and a repeat (a re-delivery, a later
 *   attempt) is answered with the recorded answer: the decision once there is one;
 * - MOCK_AGENCY_LATENCY_MS before each answer, and MOCK_AGENCY_FAILURE_RATE of attempts answered
 *   `unavailable` before anything is done (the request is still recorded: it was delivered);
 * - an action decided later is answered `pending` and decided MOCK_DECISION_DELAY_MS later by
 *   the poller (`decideDue`), at once when that is 0; a refusable decision is a refusal at
 *   MOCK_REJECTION_RATE.
 * Nothing is logged of facts, only ids and outcomes.
 */
export class MockAgencyRunner {
  constructor(
    readonly agency: MockAgency,
    private readonly ledger: MockLedger,
    private readonly settings: MockAgenciesConfig,
    private readonly random: RandomSource = Math.random,
    private readonly now: () => Date = () => new Date(),
  ) {}

  /** One SDK handler per action. */
  handlers(): Record<string, StepHandler> {
    return Object.fromEntries(
      Object.keys(this.agency.actions).map((action) => [
        action,
        (job: StepJob, context: StepHandlerContext) => this.handle(job, context),
      ]),
    );
  }

  async handle(job: StepJob, { signal }: Pick<StepHandlerContext, 'signal'>): Promise<StepOutcome> {
    const action = this.action(job.action);
    if (!action) {
      // leo's configuration is at fault, not the application: never answered as a refusal.
      return {
        outcome: 'retryable-error',
        code: UNKNOWN_ACTION,
        reason: `the mock of ${this.agency.code} has no action ${job.action}, built in or configured`,
      };
    }
    const latencyMs = action.latencyMs ?? this.settings.latencyMs;
    if (latencyMs > 0) await sleep(latencyMs, undefined, { signal });
    const failing = this.settings.failureRate > 0 && this.random() < this.settings.failureRate;

    if (failing) {
      // Delivered, so recorded; nothing is done.
      await this.ledger.recordRequest(this.agency.code, job);
      return {
        outcome: 'retryable-error',
        code: 'unavailable',
        reason: `${this.agency.code} is temporarily unavailable`,
      };
    }
    // The answer is worked out first and recorded with the request in one round trip; if the
    // key was answered before (a re-delivery), the earlier answer stands instead.
    const reference = this.reference(job.facts);
    const receivedAt = this.now();
    let outcome: StepOutcome;
    let decisionDueAt: Date | undefined;
    const decisionDelayMs = action.decisionDelayMs ?? this.settings.decisionDelayMs;
    if (action.decidedLater && decisionDelayMs > 0) {
      decisionDueAt = new Date(receivedAt.getTime() + decisionDelayMs);
      outcome = { outcome: 'pending', reference, expectedDecisionAt: decisionDueAt.toISOString() };
      // A configured mock tries its decision at once too: if it could never decide (values its
      // facts refuse), that is said now, as a configuration fault, not after the delay.
      if (action.checkAtReceipt) {
        const trial = await this.decision(action, job.facts, receivedAt, reference);
        if (trial.outcome === 'retryable-error') outcome = trial;
      }
    } else {
      outcome = await this.decision(action, job.facts, receivedAt, reference);
    }
    if (outcome.outcome === 'retryable-error') {
      // Nothing was done (the mock is misconfigured): recorded as delivered. A repeat of an
      // application answered before is still answered with what was recorded for it.
      const existing = await this.ledger.recordRequest(this.agency.code, job);
      return existing ? this.repeat(existing, job) : outcome;
    }
    const recorded = await this.ledger.recordEffect({
      agency: this.agency.code,
      job,
      reference,
      outcome,
      ...(decisionDueAt ? { decisionDueAt } : {}),
    });
    return recorded.created ? outcome : this.repeat(recorded.effect, job);
  }

  /**
   * Answers a look-up from the agency's register: recorded in the ledger like every request,
   * with the same latency and failures; keys the register has no value for (or does not keep,
   * or a person it does not know) are unavailable.
   */
  async lookup(
    job: LookupJob,
    { signal }: Pick<StepHandlerContext, 'signal'>,
  ): Promise<LookupOutcome> {
    if (this.settings.latencyMs > 0) await sleep(this.settings.latencyMs, undefined, { signal });
    const failing = this.settings.failureRate > 0 && this.random() < this.settings.failureRate;
    await this.ledger.recordLookup(this.agency.code, job);
    if (failing) {
      return {
        outcome: 'retryable-error',
        code: 'unavailable',
        reason: `${this.agency.code} is temporarily unavailable`,
      };
    }
    const personalNumber = job.facts['person.personalNumber'];
    const facts: Record<string, FactValue> = {};
    if (typeof personalNumber === 'string' && FORMAT_CHECKS.personnummer(personalNumber)) {
      const context = {
        personalNumber,
        today: this.now(),
        registeredMove: () => this.ledger.registeredMove(this.agency.code, personalNumber),
      };
      for (const key of job.factKeys) {
        const read =
          this.agency.lookups && Object.hasOwn(this.agency.lookups, key)
            ? this.agency.lookups[key]
            : undefined;
        const value = read ? await read(context) : undefined;
        if (value !== undefined) facts[key] = value;
      }
    }
    return {
      outcome: 'found',
      facts,
      unavailable: job.factKeys.filter((key) => !(key in facts)),
    };
  }

  /**
   * The decision on an application whose decision is due (for the poller); undefined to leave
   * it for later (an action this agency no longer has).
   */
  async decideLater(
    effect: EffectRecord,
    application: Application,
  ): Promise<StepOutcome | undefined> {
    const action = this.action(effect.action);
    if (!action) return undefined;
    const outcome = await this.decision(
      action,
      application.facts,
      application.receivedAt,
      effect.reference,
    );
    // A misconfigured mock decides nothing: the decision waits until it is configured. The
    // reason names a fact key and a schema rule, never a value.
    if (outcome.outcome === 'retryable-error') throw new UndecidableNow(outcome.reason);
    return outcome;
  }

  /** leo cancelled the step: an application not yet decided is withdrawn. */
  async cancel(job: StepCancelJob, log: AgencyWorkerLogger): Promise<void> {
    if (await this.ledger.withdraw(this.agency.code, job.idempotencyKey)) {
      log.info({}, 'application withdrawn');
    }
  }

  private action(name: string): MockAction | undefined {
    return Object.hasOwn(this.agency.actions, name) ? this.agency.actions[name] : undefined;
  }

  /** The recorded answer to a repeat: the decision once made, else the first answer. */
  private async repeat(effect: EffectRecord, job: StepJob): Promise<StepOutcome> {
    if (effect.action !== job.action) {
      return {
        outcome: 'rejected',
        code: 'idempotency-conflict',
        reason: `the idempotency key was used before for another action (${effect.action})`,
        reference: effect.reference,
      };
    }
    if (effect.decision === null && effect.decisionDueAt !== null && job.attempt > effect.attempt) {
      await this.ledger.advanceAttempt(this.agency.code, effect.idempotencyKey, job.attempt);
    }
    return effect.decision ?? effect.outcome;
  }

  private async decision(
    action: MockAction,
    facts: Readonly<Record<string, FactValue>>,
    receivedAt: Date,
    reference: string,
  ): Promise<StepOutcome> {
    let decision: MockDecision;
    try {
      decision = await action.decide({
        facts,
        receivedAt,
        nextOrganisationNumber: () => this.ledger.nextOrganisationNumber(),
        reference,
      });
    } catch (error) {
      if (error instanceof MockMisconfigured) {
        // A configuration fault: leo retries it, and the citizen sees the step delayed.
        return { outcome: 'retryable-error', code: ADAPTER_MISCONFIGURED, reason: error.message };
      }
      if (!(error instanceof IncompleteApplication)) throw error;
      decision = refused('incomplete-application', error.message);
    }
    const refusalRate = action.refusalRate ?? this.settings.rejectionRate;
    if ('granted' in decision && action.refusal && refusalRate > 0 && this.random() < refusalRate) {
      decision = { refused: action.refusal };
    }
    return decisionOutcome(decision, reference);
  }

  /** The agency's case number: `SKV-2025-…`, or with the office, `KOM-0180-2025-…`. */
  private reference(facts: Readonly<Record<string, FactValue>>): string {
    return agencyReference(
      this.agency,
      facts,
      this.now(),
      randomBytes(5).toString('hex').toUpperCase(),
    );
  }
}
