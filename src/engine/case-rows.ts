import type { StepState } from '#workflow';
import type {
  CaseRecord,
  CaseStatus,
  FactRecord,
  LookupRecord,
  StepRunRecord,
} from './engine.types.js';

/*
 * The engine's tables as the driver returns their rows (snake_case columns), and the records
 * the engine works with (camelCase). Shared by the repositories that read these tables.
 */

export interface CaseRow {
  id: string;
  subject_id: string;
  life_event_key: string;
  definition_id: string;
  definition_version: number;
  status: CaseStatus;
  revision: number;
  created_at: Date;
  updated_at: Date;
  submitted_at: Date | null;
  finished_at: Date | null;
  consent_checksum: string | null;
  consented_at: Date | null;
}

export interface StepRunRow {
  id: string;
  case_id: string;
  step_id: string;
  agency: string;
  action: string;
  kind: string;
  state: StepState;
  attempt: number;
  max_attempts: number;
  disclosed_fact_ids: string[];
  result: unknown;
  agency_reference: string | null;
  expected_decision_at: Date | null;
  deadline_at: Date | null;
  timer_armed_for: Date | null;
  overdue: boolean;
  last_error: string | null;
  ready_at: Date | null;
  dispatched_at: Date | null;
  finished_at: Date | null;
  updated_at: Date;
}

export interface FactRow {
  id: string;
  subject_id: string;
  fact_key: string;
  value: unknown;
  source: FactRecord['source'];
  agency: string | null;
  case_id: string | null;
  step_run_id: string | null;
  lookup_id: string | null;
  supersedes: string | null;
  created_at: Date;
}

export interface LookupRow {
  id: string;
  case_id: string;
  subject_id: string;
  agency: string;
  fact_keys: string[];
  state: LookupRecord['state'];
  found_keys: string[];
  unavailable_keys: string[];
  attempt: number;
  max_attempts: number;
  disclosed_fact_ids: string[];
  last_error: string | null;
  created_at: Date;
  updated_at: Date;
  answered_at: Date | null;
}

export const toLookup = (r: LookupRow): LookupRecord => ({
  id: r.id,
  caseId: r.case_id,
  subjectId: r.subject_id,
  agency: r.agency,
  factKeys: r.fact_keys,
  state: r.state,
  foundKeys: r.found_keys,
  unavailableKeys: r.unavailable_keys,
  attempt: r.attempt,
  maxAttempts: r.max_attempts,
  disclosedFactIds: r.disclosed_fact_ids,
  lastError: r.last_error,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
  answeredAt: r.answered_at,
});

export const toCase = (r: CaseRow): CaseRecord => ({
  id: r.id,
  subjectId: r.subject_id,
  lifeEventKey: r.life_event_key,
  definitionId: r.definition_id,
  definitionVersion: r.definition_version,
  status: r.status,
  revision: r.revision,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
  submittedAt: r.submitted_at,
  finishedAt: r.finished_at,
  consentChecksum: r.consent_checksum,
  consentedAt: r.consented_at,
});

export const toStepRun = (r: StepRunRow): StepRunRecord => ({
  id: r.id,
  caseId: r.case_id,
  stepId: r.step_id,
  agency: r.agency,
  action: r.action,
  kind: r.kind,
  state: r.state,
  attempt: r.attempt,
  maxAttempts: r.max_attempts,
  disclosedFactIds: r.disclosed_fact_ids,
  result: r.result,
  agencyReference: r.agency_reference,
  expectedDecisionAt: r.expected_decision_at,
  deadlineAt: r.deadline_at,
  timerArmedFor: r.timer_armed_for,
  overdue: r.overdue,
  lastError: r.last_error,
  readyAt: r.ready_at,
  dispatchedAt: r.dispatched_at,
  finishedAt: r.finished_at,
  updatedAt: r.updated_at,
});

export const toFact = (r: FactRow): FactRecord => ({
  id: r.id,
  subjectId: r.subject_id,
  factKey: r.fact_key,
  value: r.value,
  source: r.source,
  agency: r.agency,
  caseId: r.case_id,
  stepRunId: r.step_run_id,
  lookupId: r.lookup_id,
  supersedes: r.supersedes,
  createdAt: r.created_at,
});

/** Columns that JSON (row_to_json) carries as text and the records hold as dates. */
export const DATE_COLUMNS = [
  'created_at',
  'updated_at',
  'submitted_at',
  'finished_at',
  'consented_at',
  'expected_decision_at',
  'deadline_at',
  'timer_armed_for',
  'ready_at',
  'dispatched_at',
  'answered_at',
] as const;

/**
 * The row with its date columns as dates, in place: the rows come fresh from the driver's JSON
 * parse, one per request, so nothing else holds them (a copy per row was 3% of a busy engine).
 */
export function withDates(row: Record<string, unknown>): Record<string, unknown> {
  for (const key of DATE_COLUMNS) {
    const value = row[key];
    if (typeof value === 'string') row[key] = new Date(value);
  }
  return row;
}
