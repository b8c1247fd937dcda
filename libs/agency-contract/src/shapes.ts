/**
 * The shapes of what crosses the queues, checked before use: the jobs leo sends (a job without
 * the fields of its kind is answered `invalid-job` or failed) and the outcomes a handler returns.
 * Fact values are checked by leo, against its catalogue.
 */
import type { LookupJob, LookupOutcome, StepCancelJob, StepJob, StepOutcome } from './steps.js';

const OUTCOMES = new Set(['completed', 'pending', 'rejected', 'retryable-error']);

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

const isNonEmptyString = (value: unknown): value is string =>
  typeof value === 'string' && value.length > 0;

/** Does `value` have the shape of a StepOutcome? (Fact values are checked by leo.) */
export function isStepOutcome(value: unknown): value is StepOutcome {
  if (!isRecord(value) || typeof value.outcome !== 'string' || !OUTCOMES.has(value.outcome)) {
    return false;
  }
  switch (value.outcome) {
    case 'completed':
      return (
        isRecord(value.produced) &&
        (value.reference === undefined || isNonEmptyString(value.reference))
      );
    case 'pending':
      return (
        isNonEmptyString(value.reference) &&
        (value.expectedDecisionAt === undefined ||
          (typeof value.expectedDecisionAt === 'string' &&
            !Number.isNaN(Date.parse(value.expectedDecisionAt))))
      );
    case 'rejected':
      return (
        isNonEmptyString(value.code) &&
        typeof value.reason === 'string' &&
        (value.reference === undefined || isNonEmptyString(value.reference))
      );
    default:
      return isNonEmptyString(value.code) && typeof value.reason === 'string';
  }
}

/** Does `value` have the shape of a LookupOutcome? (Fact values are checked by leo.) */
export function isLookupOutcome(value: unknown): value is LookupOutcome {
  if (!isRecord(value)) return false;
  if (value.outcome === 'found') {
    return (
      isRecord(value.facts) &&
      (value.unavailable === undefined ||
        (Array.isArray(value.unavailable) && value.unavailable.every(isNonEmptyString)))
    );
  }
  return (
    value.outcome === 'retryable-error' &&
    isNonEmptyString(value.code) &&
    typeof value.reason === 'string'
  );
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
