import { CONFIGURATION_FAULTS } from '#agency-contract';
import type { StepState } from '#workflow';

/**
 * The records of a case as the engine keeps them: the case, its step runs, its look-ups and the
 * fact records of its subject. Plain data, no behaviour: the case machine reads and returns them,
 * the repositories store them.
 */

export const CASE_STATUSES = [
  'open',
  'running',
  'action-required',
  'completed',
  'failed',
  'cancelled',
] as const;
/**
 * open: created, not yet submitted; running: steps in flight; action-required: a step failed and
 * an administrator must retry it or cancel the case; completed / failed / cancelled: final.
 */
export type CaseStatus = (typeof CASE_STATUSES)[number];

export const FINAL_CASE_STATUSES: readonly CaseStatus[] = ['completed', 'failed', 'cancelled'];
export const FINAL_STEP_STATES: readonly StepState[] = [
  'completed',
  'failed',
  'skipped',
  'cancelled',
];
/** Open (not final, started) step states: those a deadline still concerns. */
export const OPEN_STEP_STATES: readonly StepState[] = [
  'ready',
  'dispatched',
  'awaiting-decision',
  'awaiting-citizen',
];

/**
 * A step still open whose last attempt the adapter could not do at all (no handler, no mock
 * configured): it is retried until someone configures the action, and the citizen sees it delayed.
 */
export function isHeldByConfigurationFault(
  run: Pick<StepRunRecord, 'state' | 'lastError'>,
): boolean {
  return (
    run.lastError !== null &&
    CONFIGURATION_FAULTS.has(run.lastError) &&
    // Once the agency has the step (awaiting its decision), it is no longer held by leo's side.
    (run.state === 'ready' || run.state === 'dispatched')
  );
}

export interface CaseRecord {
  id: string;
  subjectId: string;
  lifeEventKey: string;
  definitionId: string;
  definitionVersion: number;
  status: CaseStatus;
  revision: number;
  createdAt: Date;
  updatedAt: Date;
  submittedAt: Date | null;
  finishedAt: Date | null;
  /** The checksum of the preview the citizen consented to when submitting, and when. */
  consentChecksum: string | null;
  consentedAt: Date | null;
}

export interface StepRunRecord {
  id: string;
  caseId: string;
  stepId: string;
  agency: string;
  action: string;
  kind: string;
  state: StepState;
  attempt: number;
  maxAttempts: number;
  disclosedFactIds: string[];
  result: unknown;
  agencyReference: string | null;
  expectedDecisionAt: Date | null;
  deadlineAt: Date | null;
  /** The deadline a timer job has been written for (armed lazily: decision 0015), if any. */
  timerArmedFor: Date | null;
  overdue: boolean;
  lastError: string | null;
  /** When the current attempt became ready, was handed to the queue, and when the step ended. */
  readyAt: Date | null;
  dispatchedAt: Date | null;
  finishedAt: Date | null;
  updatedAt: Date;
}

export const FACT_RECORD_SOURCES = ['citizen', 'e-identification', 'agency', 'lookup'] as const;
/**
 * Where a record came from: given by the citizen (in case `caseId`), read from their
 * e-identification, produced by `agency` in step run `stepRunId`, or looked up from `agency`'s
 * register (look-up `lookupId`).
 */
export type FactRecordSource = (typeof FACT_RECORD_SOURCES)[number];

export interface FactRecord {
  id: string;
  subjectId: string;
  factKey: string;
  value: unknown;
  source: FactRecordSource;
  agency: string | null;
  caseId: string | null;
  stepRunId: string | null;
  lookupId: string | null;
  /** The record this one replaced as the subject's current value of the fact. */
  supersedes: string | null;
  createdAt: Date;
}

/** A request to an authoritative agency for facts of its register about the case's subject. */
export interface LookupRecord {
  id: string;
  caseId: string;
  subjectId: string;
  agency: string;
  factKeys: string[];
  /** pending: asked; answered: `foundKeys` recorded, `unavailableKeys` to be asked; failed: all to be asked. */
  state: 'pending' | 'answered' | 'failed';
  foundKeys: string[];
  unavailableKeys: string[];
  attempt: number;
  maxAttempts: number;
  disclosedFactIds: string[];
  lastError: string | null;
  createdAt: Date;
  updatedAt: Date;
  answeredAt: Date | null;
}

export const MESSAGE_KINDS = ['decision', 'request', 'receipt', 'notice'] as const;
export type MessageKind = (typeof MESSAGE_KINDS)[number];

/**
 * What a message says, rendered in the reader's language by the citizen API. Parameters are
 * codes, references and dates: never personal data.
 */
export const MESSAGE_TEMPLATES = [
  'case-submitted',
  'step-awaiting-decision',
  'step-granted',
  'step-refused',
  'task-waiting',
  'step-overdue',
  'case-action-required',
  'case-completed',
  'case-failed',
  'case-cancelled',
  'fewer-answers',
] as const;
export type MessageTemplate = (typeof MESSAGE_TEMPLATES)[number];

export interface NewMessage {
  subjectId: string;
  caseId?: string;
  stepId?: string;
  /** `leo`, or the code of the agency that sends it. */
  sender: string;
  kind: MessageKind;
  template: MessageTemplate;
  params?: Record<string, unknown>;
}

/** One sharing of fact records with an agency, written with the change that made it. */
export interface NewDisclosure {
  subjectId: string;
  caseId: string;
  stepRunId?: string;
  lookupId?: string;
  agency: string;
  factRecordIds: string[];
  factKeys: string[];
  basis: 'consent' | 'lookup';
}
