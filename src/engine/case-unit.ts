import { FACT_LOOKUP, STEP_CANCEL, STEP_EXECUTE, agencyQueueName } from '#agency-contract';
import type { Decision, Effect, NewDisclosure } from '#case-machine';
import { deadlineTimer } from './engine.jobs.js';
import type { OwnerFence } from './partition-leases.js';
import type {
  CaseRecord,
  FactRecord,
  LookupRecord,
  NewMessage,
  OutboxMessage,
  StepRunRecord,
} from './engine.types.js';

/** Everything one change to a case writes, committed by one statement (see EngineRepository.commitCase). */
export interface CaseUnit {
  caseRecord: CaseRecord;
  /** The revision the change was computed from; null for a case it creates. */
  expectedRevision: number | null;
  /** For a new case: all its step runs; else the ones the change touched (their whole state). */
  runs: StepRunRecord[];
  /** Stored as they are: the case machine's events (CaseEvent), numbered from the revision. */
  events: Array<{ seq: number; type: string; stepId?: string; data?: object }>;
  facts: FactRecord[];
  newLookups: LookupRecord[];
  changedLookups: LookupRecord[];
  disclosures: NewDisclosure[];
  messages: NewMessage[];
  outbox: OutboxMessage[];
  /**
   * The revision of the subject's facts the change was computed from: the change commits only
   * if it is still that (and moves it on when the change records facts). A change computed from
   * a case kept in memory carries it, so facts another case recorded meanwhile are not missed
   * (decision 0019). Without it, the subject's facts are not checked.
   */
  subjectFence?: { expected: number; bump: boolean };
  /**
   * The lease the change was decided under: it commits only if this process still holds its
   * case's partition under that epoch (decision 0020). Without it, ownership is not checked.
   */
  owner?: OwnerFence;
}

export type Changed = Extract<Decision, { outcome: 'changed' }>;

/**
 * What the store writes for a change the case machine decided on a state read at revision
 * `from.revision` (`expectedRevision` null: the change creates the case) and at the subject's
 * facts revision `from.factsRevision`: its records, its events numbered on from the revision,
 * and its effects as disclosures, messages and outbox rows, in the order they were decided.
 */
export function toUnit(
  decision: Changed,
  from: {
    expectedRevision: number | null;
    revision: number;
    factsRevision: number;
    /** The lease it was decided under (decision 0020). */
    owner?: OwnerFence;
  },
): CaseUnit {
  const { state, events, effects, writes } = decision;
  return {
    caseRecord: state.caseRecord,
    expectedRevision: from.expectedRevision,
    runs: writes.runs,
    events: events.map((e, i) => ({ ...e, seq: from.revision + i + 1 })),
    facts: writes.facts,
    newLookups: writes.newLookups,
    changedLookups: writes.changedLookups,
    disclosures: effects.flatMap((e) => (e.type === 'disclose' ? [e.disclosure] : [])),
    messages: effects.flatMap((e) => (e.type === 'notify' ? [e.message] : [])),
    outbox: effects.flatMap((e) => toOutbox(e)),
    subjectFence: {
      expected: from.factsRevision,
      bump: writes.facts.length > 0,
    },
    ...(from.owner ? { owner: from.owner } : {}),
  };
}

/**
 * Changes decided one after another on one case, as one change to write: the last state, every
 * event and effect in order, each fact record appended, and each step run and look-up any of
 * them touched as the last left it (a look-up created by one is new, whatever the rest did).
 */
export function fold(chain: readonly Changed[]): Changed {
  const last = chain.at(-1);
  if (!last) throw new Error('nothing to fold');
  if (chain.length === 1) return last;
  const runs = new Set(chain.flatMap((d) => d.writes.runs.map((r) => r.id)));
  const created = new Set(chain.flatMap((d) => d.writes.newLookups.map((l) => l.id)));
  const changed = new Set(chain.flatMap((d) => d.writes.changedLookups.map((l) => l.id)));
  const { state } = last;
  return {
    outcome: 'changed',
    state,
    events: chain.flatMap((d) => d.events),
    effects: chain.flatMap((d) => d.effects),
    writes: {
      runs: state.runs.filter((r) => runs.has(r.id)),
      newLookups: state.lookups.filter((l) => created.has(l.id)),
      changedLookups: state.lookups.filter((l) => changed.has(l.id) && !created.has(l.id)),
      facts: chain.flatMap((d) => d.writes.facts),
    },
  };
}

/** The outbox row of an effect that is a job. */
function toOutbox(effect: Effect): OutboxMessage[] {
  switch (effect.type) {
    case 'dispatch-step':
    case 'request-lookup':
      // An agency job: answered on the agency's own results stream (decision 0022).
      return [
        {
          queue: agencyQueueName(effect.agency),
          jobName: effect.type === 'dispatch-step' ? STEP_EXECUTE : FACT_LOOKUP,
          jobId: effect.jobId,
          payload: effect.job,
          availableAt: effect.availableAt,
        },
      ];
    case 'cancel-step':
      return [
        {
          queue: agencyQueueName(effect.agency),
          jobName: STEP_CANCEL,
          jobId: effect.jobId,
          payload: effect.job,
        },
      ];
    case 'arm-timer':
      return [deadlineTimer({ id: effect.job.stepRunId, caseId: effect.job.caseId }, effect.at)];
    default:
      return [];
  }
}
