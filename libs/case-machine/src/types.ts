import type {
  FactValue,
  LookupJob,
  LookupResult,
  StepCancelJob,
  StepJob,
  StepOutcome,
  StepResult,
} from '#agency-contract';
import type { FactValidator } from '#facts';
import type { Catalogue, DefinitionWithDefaults } from '#workflow';
import type {
  CaseRecord,
  FactRecord,
  LookupRecord,
  NewDisclosure,
  NewMessage,
  StepRunRecord,
} from './records.js';

/** One case as the machine sees it: the case, its step runs and look-ups, its subject's facts. */
export interface CaseState {
  caseRecord: CaseRecord;
  /** Every step run of the case, in any order (one per step of its definition). */
  runs: readonly StepRunRecord[];
  lookups: readonly LookupRecord[];
  /** The subject's newest record of each fact, by fact key. */
  facts: ReadonlyMap<string, FactRecord>;
}

/**
 * What a decision may use besides the case: the definition it runs, the catalogue, the clock,
 * randomness and ids. Passed in, so that a decision is a function of its arguments alone.
 */
export interface Environment {
  definition: DefinitionWithDefaults;
  catalogue: Catalogue;
  validator: FactValidator;
  now: Date;
  /** A number in [0, 1): the jitter of retry delays. */
  random: () => number;
  /** A new unique id for a record the decision creates (the engine mints version 7 UUIDs). */
  newId: () => string;
  /** When deadline timers are written (decision 0015). */
  timers: { armAfterMs: number; sweepIntervalMs: number };
  /** The current version of every published life event (for the fewer-answers message). */
  published: readonly DefinitionWithDefaults[];
}

/** A field's problem, with its path and a stable code. */
export interface Problem {
  path: string;
  reason: string;
  code?: string;
}

/** The timer job that fires when a step run's deadline passes (the engine's own queue). */
export interface StepDeadlineJob {
  caseId: string;
  stepRunId: string;
  /** ISO 8601: the deadline this timer was set for; a timer for a deadline since moved does nothing. */
  deadline: string;
}

export const deadlineJobId = (stepRunId: string, deadline: Date): string =>
  `${stepRunId}.deadline.${String(deadline.getTime())}`;

// ---- inputs ---------------------------------------------------------------------------------

/** Opens a case: its id, whose it is, the identity from their e-identification, their answers. */
export interface OpenInput {
  type: 'open';
  caseId: string;
  subjectId: string;
  definitionId: string;
  definitionVersion: number;
  personalNumber: string;
  answers: Record<string, unknown>;
}

/** Every input that changes an existing case. */
export type CaseInput =
  | { type: 'answer'; answers: Record<string, unknown> }
  | { type: 'submit'; previewChecksum: string }
  | { type: 'lookup-result'; result: LookupResult }
  | { type: 'step-result'; result: StepResult }
  | {
      type: 'decision';
      agency: string;
      stepRunId: string;
      decision: Extract<StepOutcome, { outcome: 'completed' | 'rejected' }>;
    }
  | { type: 'task-completed'; stepId: string; produced: Record<string, FactValue> }
  | { type: 'timer-fired'; stepRunId: string; deadline: string }
  | { type: 'escalate-overdue' }
  /** Dispatches the steps waiting for their agency's instance, where it is now onboarded. */
  | { type: 'route-held' }
  /** `actor`: who of the administrators did it (their subject), recorded in the history. */
  | { type: 'cancel'; reason: string; by: 'admin' | 'citizen'; actor?: string }
  | { type: 'retry-step'; stepId: string; actor?: string };

// ---- events ---------------------------------------------------------------------------------

/** The data each kind of event carries: ids, codes, fact keys and states, never fact values. */
export interface CaseEventData {
  'case-opened': { lifeEvent: string; version: number; factKeys: string[] };
  'answers-given': { factKeys: string[] };
  'case-submitted': { previewChecksum: string };
  'lookup-requested': { agency: string; factKeys: string[]; attempt: number; delayMs: number };
  'lookup-answered': { agency: string; foundKeys: string[]; unavailableKeys: string[] };
  'lookup-failed': { agency: string; factKeys: string[]; code: string };
  'lookup-result-refused': { agency: string; lookupId: string; problems: Problem[] };
  'step-skipped': undefined;
  'step-dispatched': { attempt: number; agency: string; factKeys: string[]; delayMs: number };
  'step-awaiting-citizen': undefined;
  'step-awaiting-decision': { reference: string; expectedDecisionAt: string | null };
  'step-completed': { attempt: number; producedKeys: string[]; reference: string | null };
  'step-rejected': { code: string; reason: string; reference: string | null };
  'step-retry-scheduled': { code: string; attempt: number; delayMs: number };
  'step-configuration-fault': {
    code: string;
    agency: string;
    action: string;
    attempt: number;
    delayMs: number;
  };
  'step-attempts-exhausted': { code: string };
  'step-failed': { code: string; reason: string };
  'step-cancelled': { inFlight: boolean };
  'step-overdue': { deadline: string; state: string; agency: string };
  'step-retried-by-admin': { actor: string | null };
  'result-refused': { problems: Problem[] };
  'decision-reported': { outcome: 'completed' | 'rejected'; via: 'rest' };
  'citizen-task-completed': { producedKeys: string[] };
  'facts-changed': { agency: string; factKeys: string[] };
  'case-action-required': { code: string };
  'case-completed': undefined;
  'case-cancelled': { reason: string; by: 'admin' | 'citizen'; actor?: string };
}

export type CaseEventType = keyof CaseEventData;

/** An event of a case's history: a tagged union on `type`, its `data` typed by it. */
export type CaseEvent = {
  [T in CaseEventType]: { type: T; stepId?: string } & (CaseEventData[T] extends undefined
    ? { data?: undefined }
    : { data: CaseEventData[T] });
}[CaseEventType];

// ---- effects --------------------------------------------------------------------------------

/** What a change asks of the world; written with the change (the outbox) and done after it. */
export type Effect =
  /** One attempt of a step, to its agency's queue: the job carries exactly the step's needs. */
  | { type: 'dispatch-step'; agency: string; jobId: string; job: StepJob; availableAt: Date }
  /** Ask an authoritative agency for facts of its register (by the identity only). */
  | { type: 'request-lookup'; agency: string; jobId: string; job: LookupJob; availableAt: Date }
  /** Tell an agency working on a step that its case was cancelled. */
  | { type: 'cancel-step'; agency: string; jobId: string; job: StepCancelJob }
  /** A timer that fires at a step's deadline. */
  | { type: 'arm-timer'; jobId: string; job: StepDeadlineJob; at: Date }
  /** A sharing of fact records with an agency, for the subject's disclosure log. */
  | { type: 'disclose'; disclosure: NewDisclosure }
  /** A message to the citizen. */
  | { type: 'notify'; message: NewMessage };

// ---- decisions ------------------------------------------------------------------------------

/** Why an input cannot be taken: not found, in conflict with the case, or invalid. */
export interface Refusal {
  kind: 'not-found' | 'conflict' | 'invalid';
  code: string;
  message: string;
  problems?: Problem[];
}

/** The records a change writes besides its events and effects. */
export interface Writes {
  /** For a new case every step run; else the ones the change touched, as they now are. */
  runs: StepRunRecord[];
  newLookups: LookupRecord[];
  changedLookups: LookupRecord[];
  /** Fact records appended for the subject. */
  facts: FactRecord[];
}

export type Decision =
  /** The case moved on: its new state (revision advanced by the events), what to write and do. */
  | {
      outcome: 'changed';
      state: CaseState;
      events: CaseEvent[];
      effects: Effect[];
      writes: Writes;
    }
  /** Nothing to do (a duplicate, a stale attempt, a timer for a deadline that moved): no events. */
  | { outcome: 'unchanged'; reason: string }
  /** The input is refused, and the caller is told why. */
  | { outcome: 'refused'; refusal: Refusal };
