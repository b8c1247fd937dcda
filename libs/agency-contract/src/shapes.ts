/**
 * The shapes of what crosses the queues, checked before use: the jobs leo sends (a job without
 * the fields of its kind is answered `invalid-job` or failed) and the outcomes a handler returns.
 * Fact values are checked by leo, against its catalogue.
 */
import type { LookupJob, LookupOutcome, StepCancelJob, StepJob, StepOutcome } from './steps.js';

const OUTCOMES = new Set(['completed', 'pending', 'rejected', 'retryable-error']);

/**
 * The limits of an answer, the same on the results stream as on leo's REST route for decisions
 * (`POST /v1/agency/decisions`): an answer outside them is refused whichever way it came.
 */
export const ANSWER_LIMITS = {
  /** A stable code (`rejected`, `retryable-error`): kebab-case, 2 to 64 characters. */
  codePattern: /^[a-z][a-z0-9-]{1,63}$/,
  /** The reason shown to the citizen, in characters. */
  reasonMaxLength: 2_000,
  /** The agency's own reference (diarienummer), in characters. */
  referenceMaxLength: 100,
  /** Fact keys in one answer (`produced`, a look-up's `facts` and `unavailable`). */
  maxFacts: 64,
  /** An answer's JSON as it crosses Redis, in characters: anything longer is refused unread. */
  bodyMaxLength: 65_536,
} as const;

const isCode = (value: unknown): value is string =>
  typeof value === 'string' && ANSWER_LIMITS.codePattern.test(value);

const isReason = (value: unknown, required: boolean): value is string =>
  typeof value === 'string' &&
  value.length <= ANSWER_LIMITS.reasonMaxLength &&
  (!required || value.trim().length > 0);

const isReference = (value: unknown): value is string =>
  typeof value === 'string' &&
  value.trim().length > 0 &&
  value.length <= ANSWER_LIMITS.referenceMaxLength;

const isFacts = (value: unknown): value is Record<string, unknown> =>
  isRecord(value) && Object.keys(value).length <= ANSWER_LIMITS.maxFacts;

/** An ISO 8601 time that parses (a date without a time zone counts as UTC, as in JSON). */
export const isTimestamp = (value: unknown): value is string =>
  typeof value === 'string' &&
  value.length <= 40 &&
  /^\d{4}-\d{2}-\d{2}/.test(value) &&
  !Number.isNaN(Date.parse(value));

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

const isNonEmptyString = (value: unknown): value is string =>
  typeof value === 'string' && value.length > 0;

/**
 * Does `value` have the shape of a StepOutcome, within ANSWER_LIMITS? (Fact values are checked by
 * leo, against its catalogue.)
 */
export function isStepOutcome(value: unknown): value is StepOutcome {
  if (!isRecord(value) || typeof value.outcome !== 'string' || !OUTCOMES.has(value.outcome)) {
    return false;
  }
  switch (value.outcome) {
    case 'completed':
      return (
        isFacts(value.produced) && (value.reference === undefined || isReference(value.reference))
      );
    case 'pending':
      return (
        isReference(value.reference) &&
        (value.expectedDecisionAt === undefined || isTimestamp(value.expectedDecisionAt))
      );
    case 'rejected':
      return (
        isCode(value.code) &&
        isReason(value.reason, true) &&
        (value.reference === undefined || isReference(value.reference))
      );
    default:
      return isCode(value.code) && isReason(value.reason, false);
  }
}

/** Does `value` have the shape of a LookupOutcome, within ANSWER_LIMITS? (Fact values are checked by leo.) */
export function isLookupOutcome(value: unknown): value is LookupOutcome {
  if (!isRecord(value)) return false;
  if (value.outcome === 'found') {
    return (
      isFacts(value.facts) &&
      (value.unavailable === undefined ||
        (Array.isArray(value.unavailable) &&
          value.unavailable.length <= ANSWER_LIMITS.maxFacts &&
          value.unavailable.every(isNonEmptyString)))
    );
  }
  return value.outcome === 'retryable-error' && isCode(value.code) && isReason(value.reason, false);
}

export function isLookupJob(value: unknown): value is LookupJob {
  return (
    isRecord(value) &&
    isNonEmptyString(value.lookupId) &&
    isNonEmptyString(value.caseId) &&
    Number.isInteger(value.attempt) &&
    (value.attempt as number) >= 1 &&
    isRecord(value.facts) &&
    Array.isArray(value.factKeys) &&
    value.factKeys.every(isNonEmptyString)
  );
}

/** The ids a result needs; without them a job cannot be answered at all. */
export function hasStepIds(
  value: unknown,
): value is Record<string, unknown> & { stepRunId: string; attempt: number } {
  return (
    isRecord(value) &&
    isNonEmptyString(value.stepRunId) &&
    Number.isInteger(value.attempt) &&
    (value.attempt as number) >= 1
  );
}

export function isStepJob(value: unknown): value is StepJob {
  return (
    hasStepIds(value) &&
    isNonEmptyString(value.caseId) &&
    isNonEmptyString(value.action) &&
    isNonEmptyString(value.idempotencyKey) &&
    isRecord(value.facts)
  );
}

export function isStepCancelJob(value: unknown): value is StepCancelJob {
  return (
    isRecord(value) &&
    isNonEmptyString(value.stepRunId) &&
    isNonEmptyString(value.action) &&
    isNonEmptyString(value.idempotencyKey)
  );
}
