import { readFileSync } from 'node:fs';
import {
  FACT_LOOKUP,
  LOOKUP_RESULT,
  RESULTS_STREAM_MAXLEN,
  STEP_CANCEL,
  STEP_EXECUTE,
  STEP_RESULT,
  agencyQueueName,
  resultEntryFields,
  agencyResultsStreamKey,
  type AgencyJobs,
  type FactValue,
  type LookupJob,
  type LookupOutcome,
  type LookupResult,
  type ResultEntry,
  type StepCancelJob,
  type StepJob,
  type StepOutcome,
  type StepResult,
} from '#agency-contract';
import type { EngineRepository } from '../../src/engine/engine.repository.js';
import type { EngineService } from '../../src/engine/engine.service.js';
import type { HousekeepingRepository } from '../../src/engine/housekeeping.repository.js';
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

/** The workload's personal identity number: what the citizen's e-identification carries. */
export const WORKLOAD_PERSONAL_NUMBER = WORKLOAD_FACTS['person.personalNumber'] as string;

/** What the population register holds of the workload's citizen: looked up, never asked. */
export const WORKLOAD_REGISTER: Record<string, FactValue> = {
  'person.name': WORKLOAD_FACTS['person.name'] as FactValue,
  'person.address': WORKLOAD_FACTS['person.address'] as FactValue,
  'person.municipalityCode': '0780',
};

/** The workload's answers: what the citizen gives (everything but identity and register facts). */
export const WORKLOAD_ANSWERS: Record<string, unknown> = Object.fromEntries(
  Object.entries(WORKLOAD_FACTS).filter(
    ([key]) => key !== 'person.personalNumber' && !(key in WORKLOAD_REGISTER),
  ),
);

export const F_TAX_STATUS = { taxForm: 'F', validFrom: '2026-12-01' };

/** What the population register answers a look-up: WORKLOAD_REGISTER's values, the rest unavailable. */
export function registerAnswer(job: LookupJob): LookupOutcome {
  return {
    outcome: 'found',
    facts: Object.fromEntries(
      job.factKeys
        .filter((k) => k in WORKLOAD_REGISTER)
        .map((k) => [k, WORKLOAD_REGISTER[k] as FactValue]),
    ),
    unavailable: job.factKeys.filter((k) => !(k in WORKLOAD_REGISTER)),
  };
}

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

/** How a scripted agency answers a look-up: undefined means from WORKLOAD_REGISTER, null none. */
export type LookupScript = (job: LookupJob) => LookupOutcome | undefined | null;

export interface ScriptedAgencies {
  received: StepJob[];
  cancelled: StepCancelJob[];
  lookups: LookupJob[];
  setScript(script: Script): void;
  setLookupScript(script: LookupScript): void;
}

/**
 * Appends a result to an agency's results stream as its adapter does (the SDK's XADD), on the
 * connection of leo's own queues; resolves with the entry's id. The stream is `via`'s, by default
 * the agency the result names (an adapter answering as itself).
 */
export async function publishResult(
  queues: QueueService,
  entry: ResultEntry,
  via: string = entry.result.agency,
): Promise<string> {
  const client = await queues.queue(agencyQueueName(via)).raw.getBackend().client;
  return client.xadd(agencyResultsStreamKey(queues.prefix, via), '*', resultEntryFields(entry), {
    MAXLEN: RESULTS_STREAM_MAXLEN,
    approximate: true,
  });
}

/**
 * Agencies that answer as a test scripts them, on the real agency queues: to provoke retries,
 * rejections, pending decisions and protocol violations at will.
 */
export function scriptedAgencies(queues: QueueService, agencies: string[]): ScriptedAgencies {
  const state: ScriptedAgencies & { script: Script; lookupScript: LookupScript } = {
    received: [],
    cancelled: [],
    lookups: [],
    script: () => undefined,
    lookupScript: () => undefined,
    setScript(script) {
      state.script = script;
    },
    setLookupScript(script) {
      state.lookupScript = script;
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
          await publishResult(queues, { kind: STEP_RESULT, result });
        }
      },
      [STEP_CANCEL]: async (job) => {
        state.cancelled.push(job);
      },
      [FACT_LOOKUP]: async (job) => {
        state.lookups.push(job);
        const scripted = state.lookupScript(job);
        if (scripted === null) return undefined;
        const answer: LookupOutcome = scripted ?? registerAnswer(job);
        const result: LookupResult = {
          lookupId: job.lookupId,
          attempt: job.attempt,
          agency,
          result: answer,
          reportedAt: new Date().toISOString(),
        };
        await publishResult(queues, { kind: LOOKUP_RESULT, result });
        return undefined;
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

/** Waits until `condition` holds, asking every `everyMs`; fails after `timeoutMs`. */
export async function waitUntil(
  condition: () => Promise<boolean>,
  timeoutMs = 20_000,
  everyMs = 50,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, everyMs));
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

/**
 * Opens a case for a new subject as the citizen API does (identity from e-identification,
 * answers validated, look-ups dispatched) and waits until it is resolved (nothing is being
 * looked up); returns its id and subject.
 */
export async function openResolvedCase(
  engine: EngineService,
  repository: EngineRepository,
  input: {
    lifeEventKey?: string;
    answers?: Record<string, unknown>;
    personalNumber?: string;
    subjectId?: string;
  } = {},
  timeoutMs = 20_000,
): Promise<{ caseId: string; subjectId: string }> {
  const subjectId = input.subjectId ?? (await repository.createSubject());
  const opened = await engine.openCase({
    subjectId,
    lifeEventKey: input.lifeEventKey ?? 'start-business',
    personalNumber: input.personalNumber ?? WORKLOAD_PERSONAL_NUMBER,
    answers: input.answers ?? WORKLOAD_ANSWERS,
  });
  await poll(
    () => engine.resolution(opened.id),
    (r) => r.resolution.state !== 'resolving',
    (r) => `case ${opened.id} is still ${r.resolution.state}`,
    timeoutMs,
  );
  return { caseId: opened.id, subjectId };
}

/**
 * Records what the population register holds of a subject as if looked up earlier, so a case
 * needs no look-up (for a leo without agencies answering, e.g. the api role alone).
 */
export async function seedRegisterFacts(
  repository: EngineRepository,
  housekeeping: HousekeepingRepository,
  subjectId: string,
): Promise<void> {
  await housekeeping.transaction((manager) =>
    repository.insertFacts(
      manager,
      Object.entries(WORKLOAD_REGISTER).map(([factKey, value]) => ({
        subjectId,
        factKey,
        value,
        source: 'lookup' as const,
        agency: 'skatteverket',
      })),
    ),
  );
}

/** Submits a resolved case with consent to its current preview. */
export async function submitWithConsent(engine: EngineService, caseId: string): Promise<void> {
  const { resolution, preview } = await engine.resolution(caseId);
  if (!preview)
    throw new Error(`case ${caseId} is ${resolution.state}: ${resolution.toAsk.join(', ')}`);
  await engine.submitCase(caseId, { previewChecksum: preview.checksum });
}

/** Opens, resolves and submits a case: the engine-level path of a citizen's whole errand. */
export async function startCase(
  engine: EngineService,
  repository: EngineRepository,
  input: Parameters<typeof openResolvedCase>[2] = {},
): Promise<string> {
  const { caseId } = await openResolvedCase(engine, repository, input);
  await submitWithConsent(engine, caseId);
  return caseId;
}
