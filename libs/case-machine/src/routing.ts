import { AGENCY_NOT_ONBOARDED } from '#agency-contract';
import { routeStep, type StepWithDefaults } from '#workflow';
import type { Draft } from './draft.js';
import type { FactRecord, StepRunRecord } from './records.js';

/**
 * Which agency a step's attempt goes to (decision 0024). A step to an agency of many parties (the
 * municipalities) goes to the instance its routing need names (`kommun-0180`), chosen at its
 * first dispatch and kept for every later attempt: a retry never sends the application to
 * another municipality because a fact changed meanwhile. Any other step goes to its agency.
 */
export function destinationOf(
  draft: Draft,
  run: StepRunRecord,
  step: StepWithDefaults,
  facts: ReadonlyMap<string, FactRecord>,
): { code: string; onboarded: boolean } {
  if (run.agency !== step.agency) return { code: run.agency, onboarded: true };
  return routeStep(draft.env.catalogue, step.agency, step.needs, (key) => facts.get(key)?.value);
}

/**
 * The step goes to an instance leo cannot reach (not onboarded): nothing leaves leo. The step
 * waits, ready, with the fault as its last error (the citizen sees it delayed, the administrator
 * an error naming the instance), its deadline running as for any step, until `releaseHeld` finds
 * the instance onboarded.
 */
export function holdNotOnboarded(
  draft: Draft,
  run: StepRunRecord,
  step: StepWithDefaults,
  how: { attempt: number; code: string; deadlineAt: Date | null },
): void {
  draft.setRun(run, {
    state: 'ready',
    attempt: how.attempt,
    deadlineAt: how.deadlineAt,
    lastError: AGENCY_NOT_ONBOARDED,
    disclosedFactIds: [],
  });
  draft.event({
    type: 'step-configuration-fault',
    stepId: step.id,
    data: {
      code: AGENCY_NOT_ONBOARDED,
      agency: how.code,
      action: step.action,
      attempt: how.attempt,
      delayMs: 0,
    },
  });
}

/** Whether a run waits for its agency's instance to be onboarded (see `holdNotOnboarded`). */
export function isHeldNotOnboarded(run: Pick<StepRunRecord, 'state' | 'lastError'>): boolean {
  return run.state === 'ready' && run.lastError === AGENCY_NOT_ONBOARDED;
}
