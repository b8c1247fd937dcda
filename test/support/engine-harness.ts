import { readFileSync } from 'node:fs';
import {
  ENGINE_RESULTS_QUEUE,
  STEP_CANCEL,
  STEP_EXECUTE,
  STEP_RESULT,
  agencyQueueName,
  resultJobId,
  type AgencyJobs,
  type ResultJobs,
  type StepCancelJob,
  type StepJob,
  type StepOutcome,
  type StepResult,
} from '#agency-contract';
import type { QueueService } from '../../src/queue/queue.service.js';
import { sql, type TestDatabase } from './test-env.js';

export { sql };

/**
 * The standard workload's facts (shared/bench/WORKLOAD.md): a sole trader, as the citizen gives
 * them. One fixture file, shared with libs/facts' tests and (later) the benchmark.
 */
export const WORKLOAD_FACTS = JSON.parse(
  readFileSync(new URL('../fixtures/workload-facts.json', import.meta.url), 'utf8'),
) as Record<string, unknown>;

/** A sole trader's organisation number is their personal identity number. */
export const WORKLOAD_ORG_NUMBER = '19901211-9948';

export const F_TAX_STATUS = { taxForm: 'F', validFrom: '2026-12-01' };

const DEFAULT_ANSWERS: Record<string, () => StepOutcome> = {
  'register-sole-trader': () => ({
    outcome: 'completed',
    produced: { 'business.orgNumber': WORKLOAD_ORG_NUMBER },
    reference: 'BV-1',
  }),
  'register-f-tax': () => ({
    outcome: 'completed',
    produced: { 'business.fTaxStatus': F_TAX_STATUS },
    reference: 'SKV-F-1',
  }),
  'register-vat': () => ({
    outcome: 'completed',
    produced: { 'business.vatNumber': 'SE901211994801' },
  }),
  'register-employer': () => ({
    outcome: 'completed',
    produced: { 'business.employerId': WORKLOAD_ORG_NUMBER },
  }),
  'notify-new-business': () => ({ outcome: 'completed', produced: {}, reference: 'K-1' }),
};

/**
 * How a scripted agency answers a job: undefined means the default answer for its action, null
 * means no answer at all (the job is lost, as when Redis loses its data).
 */
export type Script = (job: StepJob) => StepOutcome | undefined | null;

export interface ScriptedAgencies {
  received: StepJob[];
  cancelled: StepCancelJob[];
  setScript(script: Script): void;
}

/**
 * Agencies that answer as a test scripts them, on the real agency queues: to provoke retries,
 * rejections, pending decisions and protocol violations at will.
 */
export function scriptedAgencies(queues: QueueService, agencies: string[]): ScriptedAgencies {
  const state: ScriptedAgencies & { script: Script } = {
    received: [],
    cancelled: [],
    script: () => undefined,
    setScript(script) {
      state.script = script;
    },
  };
  for (const agency of agencies) {
    queues.worker<AgencyJobs, undefined>(agencyQueueName(agency), {
      [STEP_EXECUTE]: async (job) => {
        state.received.push(job);
        const scripted = state.script(job);
        if (scripted === null) return undefined;
        const answer = scripted ?? DEFAULT_ANSWERS[job.action]?.();
        if (answer) {
          const result: StepResult = {
            stepRunId: job.stepRunId,
            attempt: job.attempt,
            agency,
            result: answer,
            reportedAt: new Date().toISOString(),
          };
          await queues
            .queue<ResultJobs>(ENGINE_RESULTS_QUEUE)
            .add(STEP_RESULT, result, { jobId: resultJobId(result) });
        }
      },
      [STEP_CANCEL]: async (job) => {
        state.cancelled.push(job);
      },
    });
  }
  return state;
}

async function poll<T>(
  what: () => Promise<T>,
  done: (value: T) => boolean,
  describe: (value: T) => string,
  timeoutMs: number,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await what();
    if (done(value)) return value;
    if (Date.now() > deadline) throw new Error(describe(value));
    await new Promise((r) => setTimeout(r, 50));
  }
}

export async function waitForCase(
  database: TestDatabase,
  caseId: string,
  statuses: string[],
  timeoutMs = 20_000,
): Promise<string> {
  const row = await poll(
    async () =>
      (
        await sql<{ status: string }>(database, 'SELECT status FROM cases WHERE id = $1', [caseId])
      )[0],
    (r) => r !== undefined && statuses.includes(r.status),
    (r) => `case is ${r?.status ?? 'missing'}, not ${statuses.join('/')}`,
    timeoutMs,
  );
  return row?.status ?? '';
}

export async function waitForStep(
  database: TestDatabase,
  caseId: string,
  stepId: string,
  state: string,
  timeoutMs = 20_000,
): Promise<void> {
  await poll(
    async () =>
      (
        await sql<{ state: string }>(
          database,
          'SELECT state FROM step_runs WHERE case_id = $1 AND step_id = $2',
          [caseId, stepId],
        )
      )[0],
    (r) => r?.state === state,
    (r) => `step ${stepId} is ${r?.state ?? 'missing'}, not ${state}`,
    timeoutMs,
  );
}
