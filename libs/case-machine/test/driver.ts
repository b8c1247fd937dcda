/**
 * Drives one case through the case machine in tests: applies inputs at a given time, keeps the
 * state of each change, and checks on every decision what holds of any decision (the input state
 * is deep-frozen and equal to a copy taken before, the revision advances by the number of events,
 * and an unchanged or refused decision carries nothing). Shared by the machine's specs.
 */
import { expect } from '@jest/globals';
import type { FactValue, LookupOutcome, StepOutcome } from '#agency-contract';
import {
  buildPreview,
  decide,
  openCase,
  resolve,
  usableFacts,
  type CaseEvent,
  type CaseInput,
  type CaseState,
  type Decision,
  type Effect,
  type Environment,
  type FactRecord,
  type StepRunRecord,
} from '../src/index.js';

export type Changed = Extract<Decision, { outcome: 'changed' }>;
export type Refused = Extract<Decision, { outcome: 'refused' }>;
export type EffectOf<T extends Effect['type']> = Extract<Effect, { type: T }>;

/** The citizen's personal identity number in every case driven. */
export const PN = '199012119948';
/** The time every driven case starts at. */
export const T0 = new Date('2025-03-03T09:00:00.000Z');

export function deepFreeze<T>(value: T): T {
  if (value instanceof Map) {
    for (const v of value.values()) deepFreeze(v);
  } else if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    for (const v of Object.values(value)) deepFreeze(v);
  }
  if (typeof value === 'object' && value !== null) Object.freeze(value);
  return value;
}

export function changed(decision: Decision): Changed {
  if (decision.outcome !== 'changed') {
    throw new Error(`expected a change, got ${JSON.stringify(decision, null, 2)}`);
  }
  return decision;
}

export function refused(decision: Decision): Refused['refusal'] {
  if (decision.outcome !== 'refused') {
    throw new Error(`expected a refusal, got ${summary(decision)}`);
  }
  return decision.refusal;
}

/** `type` or `type:stepId` of each event: a readable history. */
export const kinds = (events: readonly CaseEvent[]): string[] =>
  events.map((e) => (e.stepId === undefined ? e.type : `${e.type}:${e.stepId}`));

export function summary(decision: Decision): string {
  return decision.outcome === 'changed'
    ? `changed: ${kinds(decision.events).join(', ')}`
    : JSON.stringify(decision);
}

export function effects<T extends Effect['type']>(decision: Changed, type: T): EffectOf<T>[] {
  return decision.effects.filter((e): e is EffectOf<T> => e.type === type);
}

export function must<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw new Error(`no ${what}`);
  return value;
}

/** The checksum of the preview the citizen sees now (what submitting consents to). */
export function checksumOf(state: CaseState, env: Environment): string {
  const facts = usableFacts(
    state.facts.values(),
    env.catalogue,
    state.caseRecord.id,
    env.now.getTime(),
  );
  const resolution = resolve({
    definition: env.definition,
    catalogue: env.catalogue,
    facts,
    lookups: state.lookups,
  });
  return buildPreview({
    definitionId: state.caseRecord.definitionId,
    definition: env.definition,
    facts,
    resolution,
  }).checksum;
}

export const completed = (
  produced: Record<string, FactValue>,
  reference?: string,
): StepOutcome => ({
  outcome: 'completed',
  produced,
  ...(reference === undefined ? {} : { reference }),
});

export const retryable: StepOutcome = {
  outcome: 'retryable-error',
  code: 'down',
  reason: 'unavailable',
};

/**
 * A deterministic environment for `definition` on `catalogue`: the clock at T0, `random` 0.5, ids
 * counting up from 1 (`id-001`, …), deadline timers armed at once.
 */
export function deterministicEnv(
  base: Pick<Environment, 'definition' | 'catalogue' | 'validator'>,
  overrides: Partial<Environment> = {},
): Environment {
  let n = 0;
  return {
    ...base,
    now: T0,
    random: () => 0.5,
    newId: () => `id-${String(++n).padStart(3, '0')}`,
    timers: { armAfterMs: 0, sweepIntervalMs: 60_000 },
    published: [base.definition],
    ...overrides,
  };
}

/** One case under test, on `env` (its clock moved by `apply`'s `atMs`). */
export class CaseDriver {
  state!: CaseState;

  constructor(
    public env: Environment,
    readonly caseId = 'case-1',
  ) {}

  open(answers: Record<string, unknown>, facts = new Map<string, FactRecord>()): Decision {
    const decision = openCase(
      {
        type: 'open',
        caseId: this.caseId,
        subjectId: 'subject-1',
        definitionId: 'def-1',
        definitionVersion: 1,
        personalNumber: PN,
        answers,
      },
      deepFreeze(facts),
      this.env,
    );
    if (decision.outcome === 'changed') {
      expect(decision.state.caseRecord.revision).toBe(decision.events.length);
      this.state = decision.state;
    }
    return decision;
  }

  /** Applies `input` `atMs` after T0 (default: at the current time). */
  apply(input: CaseInput, atMs?: number): Decision {
    if (atMs !== undefined) this.env = { ...this.env, now: new Date(T0.getTime() + atMs) };
    const before = structuredClone(this.state);
    const decision = decide(deepFreeze(this.state), input, this.env);
    expect(this.state).toEqual(before);
    if (decision.outcome === 'changed') {
      expect(decision.state.caseRecord.revision).toBe(
        before.caseRecord.revision + decision.events.length,
      );
      expect(decision.events.length).toBeGreaterThan(0);
      this.state = decision.state;
    }
    return decision;
  }

  run(stepId: string): StepRunRecord {
    return must(
      this.state.runs.find((r) => r.stepId === stepId),
      `run of ${stepId}`,
    );
  }

  get status(): string {
    return this.state.caseRecord.status;
  }

  record(key: string): FactRecord {
    return must(this.state.facts.get(key), `record of ${key}`);
  }

  /** The result of the current attempt of `stepId` from its own agency. */
  result(stepId: string, result: StepOutcome, attempt?: number): CaseInput {
    const run = this.run(stepId);
    return {
      type: 'step-result',
      result: {
        stepRunId: run.id,
        attempt: attempt ?? run.attempt,
        agency: run.agency,
        result,
        reportedAt: this.env.now.toISOString(),
      },
    };
  }

  lookupResult(result: LookupOutcome, attempt = 1, agency = 'register'): CaseInput {
    const lookup = must(this.state.lookups[0], 'look-up');
    return {
      type: 'lookup-result',
      result: {
        lookupId: lookup.id,
        attempt,
        agency,
        result,
        reportedAt: this.env.now.toISOString(),
      },
    };
  }

  submitInput(): CaseInput {
    return { type: 'submit', previewChecksum: checksumOf(this.state, this.env) };
  }
}
