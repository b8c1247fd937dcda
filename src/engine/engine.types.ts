import type { StepState } from '#workflow';

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
  overdue: boolean;
  lastError: string | null;
  /** When the current attempt became ready, was handed to the queue, and when the step ended. */
  readyAt: Date | null;
  dispatchedAt: Date | null;
  finishedAt: Date | null;
  updatedAt: Date;
}

export interface FactRecord {
  id: string;
  subjectId: string;
  factKey: string;
  value: unknown;
  source: 'citizen' | 'agency' | 'lookup';
  agency: string | null;
  caseId: string | null;
  stepRunId: string | null;
  createdAt: Date;
}

export interface CaseEvent {
  type: string;
  stepId?: string;
  /** Never personal data: ids, codes, fact keys, states. */
  data?: Record<string, unknown>;
}

export interface OutboxMessage {
  queue: string;
  jobName: string;
  jobId: string;
  payload: object;
  availableAt?: Date;
}
