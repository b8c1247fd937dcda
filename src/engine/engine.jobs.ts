/**
 * The engine's own queue (not part of the agency contract): timers, as delayed jobs written
 * through the outbox like every other job. Postgres keeps the deadline itself; a lost timer is
 * caught by the periodic sweep (EngineService.escalateOverdue).
 */
export const ENGINE_TIMERS_QUEUE = 'engine.timers';
export const STEP_DEADLINE = 'step.deadline';

export interface StepDeadlineJob {
  caseId: string;
  stepRunId: string;
  /** ISO 8601: the deadline this timer was set for; a timer for a deadline since moved does nothing. */
  deadline: string;
}

export interface TimerJobs {
  [STEP_DEADLINE]: StepDeadlineJob;
}

export const deadlineJobId = (stepRunId: string, deadline: Date): string =>
  `${stepRunId}.deadline.${String(deadline.getTime())}`;
