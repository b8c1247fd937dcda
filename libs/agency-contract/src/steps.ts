/**
 * What travels between leo and an agency's adapter. Wire format: JSON. Every name and field here
 * is permanent; add optional fields, never rename or remove.
 */

/** Job names on an agency queue (`agency.<code>`). */
export const STEP_EXECUTE = 'step.execute';
export const STEP_CANCEL = 'step.cancel';
export const FACT_LOOKUP = 'fact.lookup';
/** Result kinds: the `kind` field of an agency's results-stream entry. */
export const STEP_RESULT = 'step.result';
export const LOOKUP_RESULT = 'lookup.result';

/** A fact value as JSON: what the fact catalogue's JSON Schema of that fact allows. */
export type FactValue =
  string | number | boolean | null | FactValue[] | { [key: string]: FactValue };

/** Do this step: the one job leo sends an agency for one attempt of one step. */
export interface StepJob {
  caseId: string;
  stepRunId: string;
  /** The step's id in its life-event definition, e.g. `f-tax`. */
  stepId: string;
  /** One of the agency's actions, e.g. `register-f-tax`. */
  action: string;
  /** 1 for the first attempt; retries after a retryable error count up. */
  attempt: number;
  /**
   * The same for every attempt and every re-delivery of this step: an adapter must perform the
   * step's effect at most once per key (and answer a repeat with what it answered before).
   */
  idempotencyKey: string;
  /** Exactly the facts the step needs, by fact key: nothing more leaves leo. */
  facts: Record<string, FactValue>;
  /** ISO 8601 time by which leo expects a final answer, when the step has a deadline. */
  deadline?: string;
}

/** Stop working on this step: its case was cancelled. */
export interface StepCancelJob {
  caseId: string;
  stepRunId: string;
  action: string;
  idempotencyKey: string;
  reason: string;
}

/** The adapter's answer to one attempt. */
export type StepOutcome =
  /** Done. `produced` may set only the facts the step declares it produces. */
  | { outcome: 'completed'; produced: Record<string, FactValue>; reference?: string }
  /** Accepted; a decision comes later (as another result for the same attempt, or over REST). */
  | { outcome: 'pending'; reference: string; expectedDecisionAt?: string }
  /** Refused on its merits: retrying will not help. */
  | { outcome: 'rejected'; code: string; reason: string; reference?: string }
  /** Failed for a passing reason (unavailable, timeout): leo retries per the step's policy. */
  | { outcome: 'retryable-error'; code: string; reason: string };

/**
 * The adapter cannot do this action at all (no handler, nothing configured): a fault of
 * configuration, not the agency's decision. Answered as a `retryable-error`, it is retried until
 * someone fixes the configuration; the citizen sees the step delayed, never refused.
 */
export const UNKNOWN_ACTION = 'unknown-action';
/**
 * The adapter is set up wrongly for this action (leo's configured mock makes a value the fact's
 * schema refuses): a configuration fault too, retried until fixed.
 */
export const ADAPTER_MISCONFIGURED = 'adapter-misconfigured';
/**
 * leo's own: the step goes to an instance of an agency of many (a municipality) that is not
 * onboarded, so no job leaves leo; it waits, shown as delayed, until the instance is onboarded.
 */
export const AGENCY_NOT_ONBOARDED = 'agency-not-onboarded';
/** Codes of a `retryable-error` (or, from older adapters, a `rejected`) that are configuration faults. */
export const CONFIGURATION_FAULTS: ReadonlySet<string> = new Set([
  UNKNOWN_ACTION,
  ADAPTER_MISCONFIGURED,
  AGENCY_NOT_ONBOARDED,
]);

export interface StepResult {
  stepRunId: string;
  attempt: number;
  /**
   * The agency answering. leo takes the agency from the stream the answer came by (or from the
   * caller's credential, over REST) and refuses an answer that names another.
   */
  agency: string;
  result: StepOutcome;
  /** ISO 8601 time the agency produced the answer. */
  reportedAt: string;
}

/** Queue job ids must not contain ':' (BullMQ), hence the dots. */
export const stepJobId = (stepRunId: string, attempt: number): string => `${stepRunId}.${attempt}`;

/**
 * Tell leo what your register holds about a person: leo asks the agency that is the
 * authoritative source of a fact (the population register at Skatteverket for name and address)
 * instead of asking the citizen. Reading has no effect, so a look-up may be answered any number
 * of times; answer each delivery from the register as it is.
 */
export interface LookupJob {
  caseId: string;
  lookupId: string;
  /** 1 for the first attempt; retries after a retryable error count up. */
  attempt: number;
  /** The look-up's id, the same for every attempt and re-delivery. */
  idempotencyKey: string;
  /** Whom the look-up is about: exactly the facts that identify the person (their personnummer). */
  facts: Record<string, FactValue>;
  /** The facts asked for: only facts this agency is the authoritative source of. */
  factKeys: string[];
}

/** The adapter's answer to one look-up attempt. */
export type LookupOutcome =
  /**
   * What the register holds, by fact key (only keys asked for); `unavailable` names keys the
   * register has no value for (leo then asks the citizen). A key in neither counts as unavailable.
   */
  | { outcome: 'found'; facts: Record<string, FactValue>; unavailable?: string[] }
  /** Failed for a passing reason: leo retries, then asks the citizen. */
  | { outcome: 'retryable-error'; code: string; reason: string };

export interface LookupResult {
  lookupId: string;
  attempt: number;
  /** The agency answering: leo checks it is the one asked. */
  agency: string;
  result: LookupOutcome;
  /** ISO 8601 time the agency produced the answer. */
  reportedAt: string;
}

export const lookupJobId = (lookupId: string, attempt: number): string =>
  `${lookupId}.${attempt}.lookup`;

export interface AgencyJobs {
  [STEP_EXECUTE]: StepJob;
  [STEP_CANCEL]: StepCancelJob;
  [FACT_LOOKUP]: LookupJob;
}

/** What an agency's results stream carries, by entry kind. */
export interface ResultEntries {
  [STEP_RESULT]: StepResult;
  [LOOKUP_RESULT]: LookupResult;
}
