import type { StepWithDefaults } from '#workflow';
import {
  FINAL_CASE_STATUSES,
  FINAL_STEP_STATES,
  type CaseRecord,
  type CaseStatus,
  type FactRecord,
  type LookupRecord,
  type MessageKind,
  type MessageTemplate,
  type StepRunRecord,
} from './records.js';
import { usableFacts } from './resolution.js';
import type { CaseEvent, CaseState, Decision, Effect, Environment, Refusal } from './types.js';

/** Attempts of a look-up before its facts are asked of the citizen instead. */
export const LOOKUP_ATTEMPTS = 5;

/** What a step run may be changed in (the rest is set by the draft: times, ids). */
export type StepRunChange = Partial<
  Pick<
    StepRunRecord,
    | 'state'
    | 'agency'
    | 'attempt'
    | 'maxAttempts'
    | 'result'
    | 'agencyReference'
    | 'expectedDecisionAt'
    | 'deadlineAt'
    | 'timerArmedFor'
    | 'lastError'
    | 'disclosedFactIds'
    | 'overdue'
  >
>;

/** A refusal thrown inside a decision and turned into its outcome by `decideWith`. */
export class Refused extends Error {
  constructor(readonly refusal: Refusal) {
    super(refusal.message);
  }
}

export const refuse = (
  kind: Refusal['kind'],
  code: string,
  message: string,
  problems?: Refusal['problems'],
): Refused => new Refused({ kind, code, message, ...(problems ? { problems } : {}) });

/**
 * The working copy of one case during one decision: copies of its records that the decision
 * changes freely, and what it appends. The state passed in is never mutated.
 */
export class Draft {
  readonly caseRecord: CaseRecord;
  readonly runs: Map<string, StepRunRecord>;
  readonly lookups: LookupRecord[];
  /** The subject's newest record of each fact, including those this decision appends. */
  readonly facts: Map<string, FactRecord>;
  readonly events: CaseEvent[] = [];
  readonly effects: Effect[] = [];
  readonly newFacts: FactRecord[] = [];
  private readonly newLookups = new Set<string>();
  private readonly changedLookups = new Set<string>();
  private readonly changedRuns = new Set<string>();

  constructor(
    state: CaseState,
    readonly env: Environment,
    private readonly creates = false,
  ) {
    this.caseRecord = { ...state.caseRecord };
    this.runs = new Map(state.runs.map((r) => [r.stepId, { ...r }]));
    this.lookups = state.lookups.map((l) => ({ ...l }));
    this.facts = new Map(state.facts);
  }

  get now(): Date {
    return this.env.now;
  }

  step(stepId: string): StepWithDefaults | undefined {
    return this.env.definition.steps.find((s) => s.id === stepId);
  }

  runById(stepRunId: string): StepRunRecord | undefined {
    for (const run of this.runs.values()) if (run.id === stepRunId) return run;
    return undefined;
  }

  /** The subject's records this case may use now (see usableFacts). */
  usable(): Map<string, FactRecord> {
    return usableFacts(
      this.facts.values(),
      this.env.catalogue,
      this.caseRecord.id,
      this.now.getTime(),
    );
  }

  states(): Record<string, StepRunRecord['state']> {
    return Object.fromEntries([...this.runs.values()].map((r) => [r.stepId, r.state]));
  }

  event(event: CaseEvent): void {
    this.events.push(event);
  }

  effect(effect: Effect): void {
    this.effects.push(effect);
  }

  /** A message to the case's citizen, from `sender` (`leo` or an agency code). */
  notify(
    sender: string,
    kind: MessageKind,
    template: MessageTemplate,
    params: Record<string, unknown> = {},
  ): void {
    const stepId = typeof params.stepId === 'string' ? params.stepId : undefined;
    this.effect({
      type: 'notify',
      message: {
        subjectId: this.caseRecord.subjectId,
        caseId: this.caseRecord.id,
        ...(stepId ? { stepId } : {}),
        sender,
        kind,
        template,
        params: { lifeEvent: this.caseRecord.lifeEventKey, ...params },
      },
    });
  }

  /**
   * Appends fact records for the case's subject, each superseding the subject's current record
   * of its key.
   */
  addFacts(
    records: ReadonlyArray<{
      factKey: string;
      value: unknown;
      source: FactRecord['source'];
      agency?: string;
      stepRunId?: string;
      lookupId?: string;
    }>,
  ): void {
    for (const r of records) {
      const record: FactRecord = {
        id: this.env.newId(),
        subjectId: this.caseRecord.subjectId,
        factKey: r.factKey,
        value: r.value,
        source: r.source,
        agency: r.agency ?? null,
        caseId: this.caseRecord.id,
        stepRunId: r.stepRunId ?? null,
        lookupId: r.lookupId ?? null,
        supersedes: this.facts.get(r.factKey)?.id ?? null,
        createdAt: this.now,
      };
      this.facts.set(r.factKey, record);
      this.newFacts.push(record);
    }
  }

  addLookup(agency: string, factKeys: string[]): LookupRecord {
    const lookup: LookupRecord = {
      id: this.env.newId(),
      caseId: this.caseRecord.id,
      subjectId: this.caseRecord.subjectId,
      agency,
      factKeys,
      state: 'pending',
      foundKeys: [],
      unavailableKeys: [],
      attempt: 1,
      maxAttempts: LOOKUP_ATTEMPTS,
      disclosedFactIds: [],
      lastError: null,
      createdAt: this.now,
      updatedAt: this.now,
      answeredAt: null,
    };
    this.lookups.push(lookup);
    this.newLookups.add(lookup.id);
    return lookup;
  }

  changeLookup(lookup: LookupRecord, change: Partial<LookupRecord>): void {
    Object.assign(lookup, change, { updatedAt: this.now });
    if (change.state === 'answered' || change.state === 'failed') {
      lookup.answeredAt ??= this.now;
    }
    if (!this.newLookups.has(lookup.id)) this.changedLookups.add(lookup.id);
  }

  setRun(run: StepRunRecord, change: StepRunChange): void {
    this.changedRuns.add(run.id);
    for (const [key, value] of Object.entries(change)) {
      if (value !== undefined) Object.assign(run, { [key]: value });
    }
    run.updatedAt = this.now;
    if (change.state === 'ready') run.readyAt = this.now;
    if (change.state !== undefined && FINAL_STEP_STATES.includes(change.state)) {
      run.finishedAt = this.now;
    }
  }

  /** The case's new status; a final one gets its time. */
  setStatus(status: CaseStatus): void {
    this.caseRecord.status = status;
    this.caseRecord.finishedAt = FINAL_CASE_STATUSES.includes(status) ? this.now : null;
  }

  /** The decision this draft makes: unchanged if it appended no event. */
  decision(): Decision {
    if (this.events.length === 0 && !this.creates) {
      return { outcome: 'unchanged', reason: 'nothing to do' };
    }
    const caseRecord: CaseRecord = {
      ...this.caseRecord,
      revision: this.caseRecord.revision + this.events.length,
      updatedAt: this.now,
    };
    const runs = [...this.runs.values()];
    return {
      outcome: 'changed',
      state: { caseRecord, runs, lookups: this.lookups, facts: this.facts },
      events: this.events,
      effects: this.effects,
      writes: {
        runs: this.creates ? runs : runs.filter((r) => this.changedRuns.has(r.id)),
        newLookups: this.lookups.filter((l) => this.newLookups.has(l.id)),
        changedLookups: this.lookups.filter((l) => this.changedLookups.has(l.id)),
        facts: this.newFacts,
      },
    };
  }
}

/** Runs `work` on a draft of `state` and returns its decision; a `Refused` becomes the outcome. */
export function decideWith(draft: Draft, work: (draft: Draft) => string | undefined): Decision {
  try {
    const ignored = work(draft);
    if (ignored !== undefined) return { outcome: 'unchanged', reason: ignored };
    return draft.decision();
  } catch (error) {
    if (error instanceof Refused) return { outcome: 'refused', refusal: error.refusal };
    throw error;
  }
}
