import type { FactValue, LookupJob, StepJob, StepOutcome } from '#agency-contract';
import { organisationNumberFromSequence } from '#mock-agencies';
import {
  WITHDRAWN_REASON,
  type Application,
  type EffectRecord,
  type MockLedger,
  type NewEffect,
} from '../../src/adapters/mock-ledger.repository.js';

/**
 * The mock agencies' ledger in memory, with the repository's semantics (one effect per agency
 * and idempotency key, decisions when due, each reported once), for the runner's unit tests.
 * Organisation numbers are given from `firstSequence` on.
 */
export class MemoryLedger implements MockLedger {
  readonly requests: Array<{ agency: string; job: StepJob; receivedAt: Date }> = [];
  readonly effects = new Map<string, EffectRecord>();
  private readonly reported = new Set<EffectRecord>();
  private sequence: number;

  constructor(
    private readonly now: () => Date,
    firstSequence = 100_000,
  ) {
    this.sequence = firstSequence;
  }

  private static key(agency: string, idempotencyKey: string): string {
    return `${agency}\u0000${idempotencyKey}`;
  }

  private copy(effect: EffectRecord | undefined): EffectRecord | undefined {
    return effect ? structuredClone(effect) : undefined;
  }

  async recordRequest(agency: string, job: StepJob): Promise<EffectRecord | undefined> {
    this.requests.push({ agency, job: structuredClone(job), receivedAt: this.now() });
    return this.copy(this.effects.get(MemoryLedger.key(agency, job.idempotencyKey)));
  }

  readonly lookups: Array<{ agency: string; job: LookupJob }> = [];
  readonly moves = new Map<string, FactValue>();

  async recordLookup(agency: string, job: LookupJob): Promise<void> {
    this.lookups.push({ agency, job: structuredClone(job) });
  }

  async registeredMove(_agency: string, personalNumber: string): Promise<FactValue | undefined> {
    return this.moves.get(personalNumber);
  }

  async recordEffect(effect: NewEffect): Promise<{ effect: EffectRecord; created: boolean }> {
    this.requests.push({
      agency: effect.agency,
      job: structuredClone(effect.job),
      receivedAt: this.now(),
    });
    const key = MemoryLedger.key(effect.agency, effect.job.idempotencyKey);
    const existing = this.effects.get(key);
    if (existing) return { effect: this.copy(existing) as EffectRecord, created: false };
    const made: EffectRecord = {
      agency: effect.agency,
      idempotencyKey: effect.job.idempotencyKey,
      action: effect.job.action,
      stepRunId: effect.job.stepRunId,
      attempt: effect.job.attempt,
      reference: effect.reference,
      outcome: structuredClone(effect.outcome),
      decision: null,
      decisionDueAt: effect.decisionDueAt ?? null,
    };
    this.effects.set(key, made);
    return { effect: this.copy(made) as EffectRecord, created: true };
  }

  async advanceAttempt(agency: string, idempotencyKey: string, attempt: number): Promise<void> {
    const effect = this.effects.get(MemoryLedger.key(agency, idempotencyKey));
    if (effect && effect.decision === null && effect.attempt < attempt) effect.attempt = attempt;
  }

  async withdraw(agency: string, idempotencyKey: string): Promise<boolean> {
    const effect = this.effects.get(MemoryLedger.key(agency, idempotencyKey));
    if (!effect || effect.decision !== null || effect.decisionDueAt === null) return false;
    effect.decision = {
      outcome: 'rejected',
      code: 'withdrawn',
      reason: WITHDRAWN_REASON,
      reference: effect.reference,
    };
    this.reported.add(effect);
    return true;
  }

  async nextOrganisationNumber(): Promise<string> {
    this.sequence += 1;
    return organisationNumberFromSequence(this.sequence);
  }

  async decideDue(
    limit: number,
    agencies: readonly string[],
    decide: (effect: EffectRecord, application: Application) => Promise<StepOutcome | undefined>,
  ): Promise<number> {
    let decided = 0;
    for (const effect of this.effects.values()) {
      if (decided >= limit) break;
      const due = effect.decisionDueAt !== null && effect.decisionDueAt <= this.now();
      if (!due || effect.decision !== null || !agencies.includes(effect.agency)) continue;
      const first = this.requests.find(
        (r) => r.agency === effect.agency && r.job.idempotencyKey === effect.idempotencyKey,
      );
      if (!first) continue;
      const decision = await decide(this.copy(effect) as EffectRecord, {
        facts: first.job.facts,
        receivedAt: first.receivedAt,
      });
      if (decision) {
        effect.decision = decision;
        decided += 1;
      }
    }
    return decided;
  }

  async reportDecisions(
    limit: number,
    agencies: readonly string[],
    report: (effect: EffectRecord) => Promise<void>,
  ): Promise<number> {
    let reported = 0;
    for (const effect of this.effects.values()) {
      if (reported >= limit) break;
      if (effect.decision === null || this.reported.has(effect) || effect.decisionDueAt === null) {
        continue;
      }
      if (!agencies.includes(effect.agency)) continue;
      await report(this.copy(effect) as EffectRecord);
      this.reported.add(effect);
      reported += 1;
    }
    return reported;
  }
}

let counter = 0;

/** A step job for the mock runner's unit tests, each with a step run id and key of its own. */
export function stepJob(
  action: string,
  facts: Record<string, FactValue>,
  overrides: Partial<StepJob> = {},
): StepJob {
  counter += 1;
  return {
    caseId: '00000000-0000-4000-8000-000000000001',
    stepRunId: `00000000-0000-4000-8000-${String(counter).padStart(12, '0')}`,
    stepId: action,
    action,
    attempt: 1,
    idempotencyKey: `key-${counter}`,
    facts,
    ...overrides,
  };
}
