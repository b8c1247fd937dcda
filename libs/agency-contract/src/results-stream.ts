/**
 * An entry of an agency's results stream (`agencyResultsStreamKey`), as adapters write it and the
 * engine reads it. Two fields, both permanent wire names:
 * - `kind`: `step.result` or `lookup.result` (STEP_RESULT, LOOKUP_RESULT);
 * - `body`: the StepResult or LookupResult as JSON.
 * Anything else in an entry is ignored; an entry without both, or whose body does not check, is
 * dropped by the engine (logged without its body).
 */
import { AGENCY_CODE_PATTERN } from './queues.js';
import { ANSWER_LIMITS, isLookupOutcome, isStepOutcome, isTimestamp } from './shapes.js';
import { LOOKUP_RESULT, STEP_RESULT, type LookupResult, type StepResult } from './steps.js';

export type ResultKind = typeof STEP_RESULT | typeof LOOKUP_RESULT;

export type ResultEntry =
  | { kind: typeof STEP_RESULT; result: StepResult }
  | { kind: typeof LOOKUP_RESULT; result: LookupResult };

/** The stream fields of a result, in order: `kind`, then `body`. */
export function resultEntryFields(entry: ResultEntry): { kind: ResultKind; body: string } {
  return { kind: entry.kind, body: JSON.stringify(entry.result) };
}

/** Why an entry was refused: safe to log (never quotes the body). */
export type EntryProblem =
  | 'unknown-kind'
  | 'no-body'
  | 'body-too-long'
  | 'body-not-json'
  | 'invalid-ids'
  | 'invalid-outcome';

/**
 * Step run and look-up ids are leo's UUIDs: anything else cannot name a step and would only
 * fail the database statement it is read in (and the others read with it).
 */
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function hasIds(body: Record<string, unknown>, id: 'stepRunId' | 'lookupId'): boolean {
  const attempt = body.attempt;
  return (
    typeof body[id] === 'string' &&
    UUID.test(body[id]) &&
    typeof attempt === 'number' &&
    Number.isInteger(attempt) &&
    attempt >= 1 &&
    typeof body.agency === 'string' &&
    AGENCY_CODE_PATTERN.test(body.agency) &&
    isTimestamp(body.reportedAt)
  );
}

/**
 * Reads an entry's fields (a flat list `[field, value, …]`, as XREADGROUP returns them) into a
 * checked result, or the problem that refuses it.
 */
export function parseResultEntry(
  fields: readonly string[],
): { ok: true; entry: ResultEntry } | { ok: false; problem: EntryProblem; kind?: string } {
  let kind: string | undefined;
  let body: string | undefined;
  for (let i = 0; i + 1 < fields.length; i += 2) {
    if (fields[i] === 'kind') kind ??= fields[i + 1];
    else if (fields[i] === 'body') body ??= fields[i + 1];
  }
  if (kind !== STEP_RESULT && kind !== LOOKUP_RESULT) return { ok: false, problem: 'unknown-kind' };
  if (body === undefined) return { ok: false, problem: 'no-body', kind };
  if (body.length > ANSWER_LIMITS.bodyMaxLength)
    return { ok: false, problem: 'body-too-long', kind };
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    return { ok: false, problem: 'body-not-json', kind };
  }
  if (!isRecord(parsed)) return { ok: false, problem: 'body-not-json', kind };
  if (kind === STEP_RESULT) {
    if (!hasIds(parsed, 'stepRunId')) return { ok: false, problem: 'invalid-ids', kind };
    if (!isStepOutcome(parsed.result)) return { ok: false, problem: 'invalid-outcome', kind };
    return { ok: true, entry: { kind, result: parsed as unknown as StepResult } };
  }
  if (!hasIds(parsed, 'lookupId')) return { ok: false, problem: 'invalid-ids', kind };
  if (!isLookupOutcome(parsed.result)) return { ok: false, problem: 'invalid-outcome', kind };
  return { ok: true, entry: { kind, result: parsed as unknown as LookupResult } };
}
