import { deadlineJobId, type StepDeadlineJob } from '#case-machine';
import type { OutboxMessage } from './engine.types.js';

/**
 * The engine's own queue (not part of the agency contract): timers, as delayed jobs written
 * through the outbox like every other job. Postgres keeps the deadline itself; a lost timer is
 * caught by the periodic sweep (EngineService.escalateOverdue). A timer is written when its step
 * has been open a while, or at once when its deadline is near (decision 0015).
 */
export const ENGINE_TIMERS_QUEUE = 'engine.timers';
export const STEP_DEADLINE = 'step.deadline';

export type { StepDeadlineJob };

export interface TimerJobs {
  [STEP_DEADLINE]: StepDeadlineJob;
}

/** The outbox row of the delayed job that fires when a step run's deadline passes. */
export function deadlineTimer(
  run: { id: string; caseId: string },
  deadlineAt: Date,
): OutboxMessage {
  const job: StepDeadlineJob = {
    caseId: run.caseId,
    stepRunId: run.id,
    deadline: deadlineAt.toISOString(),
  };
  return {
    queue: ENGINE_TIMERS_QUEUE,
    jobName: STEP_DEADLINE,
    jobId: deadlineJobId(run.id, deadlineAt),
    payload: job,
    availableAt: deadlineAt,
  };
}
