import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import type { StepResult } from '#agency-contract';
import { FORMAT_NORMALISERS } from '#facts';
import { Redis } from 'ioredis';
import { EngineRepository, type CaseUnit } from '../src/engine/engine.repository.js';
import type { CaseRecord, StepRunRecord } from '../src/engine/engine.types.js';
import { EngineService } from '../src/engine/engine.service.js';
import { HousekeepingRepository } from '../src/engine/housekeeping.repository.js';
import { Reconciler } from '../src/engine/reconciler.js';
import { ENGINE_TIMERS_QUEUE, STEP_DEADLINE, type TimerJobs } from '../src/engine/engine.jobs.js';
import { DefinitionsService } from '../src/definitions/definitions.service.js';
import { redisOptions } from '../src/queue/redis-connection.js';
import { QueueService } from '../src/queue/queue.service.js';
import {
  WORKLOAD_ANSWERS,
  WORKLOAD_ORG_NUMBER as ORG,
  F_TAX_STATUS as F_TAX,
  openResolvedCase,
  scriptedAgencies,
  startCase,
  submitWithConsent,
  sql as query,
  waitForCase as waitForCaseIn,
  waitForStep as waitForStepIn,
  type ScriptedAgencies,
} from './support/engine-harness.js';
import { startTestApp, type TestApp } from './support/test-env.js';

/** The administrator these tests act as. */
const ADMIN = 'admin-test';
const BY_ADMIN = { role: 'admin', actor: ADMIN } as const;

/**
 * A change to one case as the repository commits it: `runs` (their whole state) and one event,
 * computed from `expectedRevision`, nothing else.
 */
function change(
  caseRecord: CaseRecord,
  expectedRevision: number,
  event: { type: string; stepId: string; seq: number },
  runs: StepRunRecord[] = [],
): CaseUnit {
  return {
    caseRecord: { ...caseRecord, revision: expectedRevision + 1 },
    expectedRevision,
    runs,
    events: [{ ...event, data: {} }],
    facts: [],
    newLookups: [],
    changedLookups: [],
    disclosures: [],
    messages: [],
    outbox: [],
  };
}

/**
 * The engine on real Postgres, Redis and BullMQ, driven by scripted agencies: each test says how
 * the agency answers, so retries, rejections and refusals can be provoked at will. (The shipped
 * mock agencies are tested on their own.)
 */

describe('the engine', () => {
  let leo: TestApp;
  let engine: EngineService;
  let agencies: ScriptedAgencies;
  const received = (): ScriptedAgencies['received'] => agencies.received;
  const sql = <T extends import('pg').QueryResultRow>(
    text: string,
    values: unknown[] = [],
  ): Promise<T[]> => query<T>(leo.database, text, values);
  const waitForCase = (caseId: string, statuses: string[]): Promise<string> =>
    waitForCaseIn(leo.database, caseId, statuses);
  const waitForStep = (caseId: string, stepId: string, state: string): Promise<void> =>
    waitForStepIn(leo.database, caseId, stepId, state);

  const steps = (
    caseId: string,
  ): Promise<
    Array<{ step_id: string; state: string; attempt: number; last_error: string | null }>
  > =>
    sql(
      'SELECT step_id, state, attempt, last_error FROM step_runs WHERE case_id = $1 ORDER BY step_id',
      [caseId],
    );

  const events = (
    caseId: string,
  ): Promise<
    Array<{ seq: number; type: string; step_id: string | null; data: Record<string, unknown> }>
  > =>
    sql('SELECT seq, type, step_id, data FROM case_events WHERE case_id = $1 ORDER BY seq', [
      caseId,
    ]);

  async function newCase(answers: Record<string, unknown> = WORKLOAD_ANSWERS): Promise<string> {
    return startCase(engine, leo.app.get(EngineRepository), { answers });
  }

  beforeAll(async () => {
    // The engine role alone: no mock agencies competing with the scripted ones.
    leo = await startTestApp({ LEO_ROLE: 'engine' });
    engine = leo.app.get(EngineService);
    agencies = scriptedAgencies(leo.app.get(QueueService), [
      'bolagsverket',
      'skatteverket',
      // The workload's citizen lives in Växjö: the municipality's step goes there (decision 0024).
      'kommun-0780',
    ]);
  });
  beforeEach(() => {
    agencies.setScript(() => undefined);
  });
  afterAll(async () => {
    await leo.close();
  });

  it('runs start a business end to end: fan-out after the organisation number, fan-in before the notice', async () => {
    const caseId = await newCase();
    await waitForCase(caseId, ['completed']);
    expect(await steps(caseId)).toEqual([
      { step_id: 'alcohol-licence', state: 'skipped', attempt: 0, last_error: null },
      { step_id: 'business-notice', state: 'completed', attempt: 1, last_error: null },
      { step_id: 'employer-registration', state: 'completed', attempt: 1, last_error: null },
      { step_id: 'f-tax', state: 'completed', attempt: 1, last_error: null },
      { step_id: 'food-premises', state: 'skipped', attempt: 0, last_error: null },
      { step_id: 'register-limited-company', state: 'skipped', attempt: 0, last_error: null },
      { step_id: 'register-sole-trader', state: 'completed', attempt: 1, last_error: null },
      { step_id: 'vat-registration', state: 'completed', attempt: 1, last_error: null },
    ]);

    const history = await events(caseId);
    const at = (type: string, stepId: string): number =>
      history.find((e) => e.type === type && e.step_id === stepId)?.seq ?? Number.NaN;
    for (const fanOut of ['f-tax', 'vat-registration', 'employer-registration']) {
      expect(at('step-dispatched', fanOut)).toBeGreaterThan(
        at('step-completed', 'register-sole-trader'),
      );
      expect(at('step-dispatched', 'business-notice')).toBeGreaterThan(
        at('step-completed', fanOut),
      );
    }
    // B, C and D go out together, in the transaction that applied A's result.
    const fanOutSeqs = ['f-tax', 'vat-registration', 'employer-registration'].map((s) =>
      at('step-dispatched', s),
    );
    expect(Math.max(...fanOutSeqs) - Math.min(...fanOutSeqs)).toBe(2);
    expect(history.map((e) => e.type)).toContain('case-completed');

    // The organisation number produced by Bolagsverket is what Skatteverket and the municipality received.
    const jobs = received().filter((j) => j.caseId === caseId);
    expect(jobs.map((j) => j.stepId).sort()).toEqual([
      'business-notice',
      'employer-registration',
      'f-tax',
      'register-sole-trader',
      'vat-registration',
    ]);
    // Stored (and passed on) in its canonical form: a sole trader's is the 12-digit personnummer.
    for (const job of jobs.filter((j) => j.stepId !== 'register-sole-trader')) {
      expect(job.facts['business.orgNumber']).toBe(FORMAT_NORMALISERS.organisationsnummer(ORG));
    }
    const produced = await sql<{ fact_key: string; source: string; agency: string }>(
      "SELECT fact_key, source, agency FROM fact_records WHERE case_id = $1 AND source = 'agency' ORDER BY fact_key",
      [caseId],
    );
    expect(produced).toEqual([
      { fact_key: 'business.employerId', source: 'agency', agency: 'skatteverket' },
      { fact_key: 'business.fTaxStatus', source: 'agency', agency: 'skatteverket' },
      { fact_key: 'business.orgNumber', source: 'agency', agency: 'bolagsverket' },
      { fact_key: 'business.vatNumber', source: 'agency', agency: 'skatteverket' },
    ]);
    // Every step had a deadline weeks away and was answered at once: no timer was ever written
    // (a timer is armed only for a step still open after LEO_TIMER_ARM_AFTER_MS), and none will
    // be, as no step is open.
    const timers = async (): Promise<unknown[]> =>
      sql("SELECT id FROM outbox WHERE queue = 'engine.timers' AND payload->>'caseId' = $1", [
        caseId,
      ]);
    expect(await timers()).toEqual([]);
    await leo.app.get(Reconciler).armTimers(0);
    expect(await timers()).toEqual([]);
  });

  it('sends each agency exactly the facts its step needs, and logs every sharing', async () => {
    const caseId = await newCase();
    await waitForCase(caseId, ['completed']);
    const jobs = received().filter((j) => j.caseId === caseId);
    const expectedNeeds: Record<string, string[]> = {
      'register-sole-trader': [
        'business.legalForm',
        'business.name',
        'business.sniCode',
        'person.name',
        'person.personalNumber',
      ],
      'f-tax': ['business.expectedTurnover', 'business.orgNumber'],
      'vat-registration': ['business.expectedTurnover', 'business.orgNumber'],
      'employer-registration': ['business.orgNumber'],
      'business-notice': ['business.orgNumber', 'person.address', 'person.municipalityCode'],
    };
    for (const job of jobs)
      expect(Object.keys(job.facts).sort()).toEqual(expectedNeeds[job.stepId]);
    const disclosures = await sql<{
      step_id: string;
      agency: string;
      fact_keys: string[];
      n: number;
    }>(
      `SELECT s.step_id, d.agency, d.fact_keys, cardinality(d.fact_record_ids) AS n
       FROM disclosures d JOIN step_runs s ON s.id = d.step_run_id WHERE d.case_id = $1`,
      [caseId],
    );
    expect(disclosures).toHaveLength(jobs.length);
    // Each sharing is logged with the agency that received it: Växjö's own, for the notice.
    expect(disclosures.find((d) => d.step_id === 'business-notice')?.agency).toBe('kommun-0780');
    for (const d of disclosures) {
      expect([...d.fact_keys].sort()).toEqual(expectedNeeds[d.step_id]);
      expect(d.n).toBe(d.fact_keys.length);
    }
  });

  it('retries a transient error with backoff, and the retry succeeds', async () => {
    agencies.setScript((job) =>
      job.stepId === 'employer-registration' && job.attempt === 1
        ? { outcome: 'retryable-error', code: 'unavailable', reason: 'Skatteverket is unavailable' }
        : undefined,
    );
    const caseId = await newCase();
    await waitForCase(caseId, ['completed']);
    const employer = (await steps(caseId)).find((s) => s.step_id === 'employer-registration');
    expect(employer).toMatchObject({ state: 'completed', attempt: 2 });
    const history = await events(caseId);
    expect(history).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ type: 'step-retry-scheduled', step_id: 'employer-registration' }),
      ]),
    );
    const attempts = received().filter(
      (j) => j.caseId === caseId && j.stepId === 'employer-registration',
    );
    expect(attempts.map((j) => j.attempt)).toEqual([1, 2]);
    // Both attempts carry the same idempotency key: the agency must not register twice.
    expect(new Set(attempts.map((j) => j.idempotencyKey)).size).toBe(1);
  });

  it('fails a rejected step, asks for action, and completes after an administrator retries it', async () => {
    let rejected = false;
    agencies.setScript((job) => {
      if (job.stepId === 'f-tax' && !rejected) {
        rejected = true;
        return {
          outcome: 'rejected',
          code: 'incomplete',
          reason: 'Preliminary income declaration missing',
        };
      }
      return undefined;
    });
    const caseId = await newCase();
    await waitForCase(caseId, ['action-required']);
    await waitForStep(caseId, 'vat-registration', 'completed');
    await waitForStep(caseId, 'employer-registration', 'completed');
    expect((await steps(caseId)).find((s) => s.step_id === 'f-tax')).toMatchObject({
      state: 'failed',
      last_error: 'incomplete',
    });
    // The notice waits for F-tax, which failed: it must not go out.
    expect((await steps(caseId)).find((s) => s.step_id === 'business-notice')?.state).toBe(
      'pending',
    );

    await engine.retryStep(caseId, 'f-tax', ADMIN);
    await waitForCase(caseId, ['completed']);
    expect((await steps(caseId)).find((s) => s.step_id === 'f-tax')).toMatchObject({
      state: 'completed',
      attempt: 2,
    });
    await expect(engine.retryStep(caseId, 'f-tax', ADMIN)).rejects.toThrow(/Only a failed step/);
  });

  it('applies a result exactly once: a duplicate or stale one changes nothing', async () => {
    const caseId = await newCase();
    await waitForCase(caseId, ['completed']);
    const before = await events(caseId);
    const job = received().find((j) => j.caseId === caseId && j.stepId === 'f-tax');
    if (!job) throw new Error('no f-tax job');
    const duplicate: StepResult = {
      stepRunId: job.stepRunId,
      attempt: job.attempt,
      agency: 'skatteverket',
      result: {
        outcome: 'completed',
        produced: { 'business.fTaxStatus': { taxForm: 'FA', validFrom: '2027-01-01' } },
      },
      reportedAt: new Date().toISOString(),
    };
    await expect(engine.applyResult(duplicate)).resolves.toBe('ignored');
    await expect(engine.applyResult({ ...duplicate, attempt: 7 })).resolves.toBe('ignored');
    await expect(engine.applyResult({ ...duplicate, agency: 'bolagsverket' })).resolves.toBe(
      'ignored',
    );
    expect(await events(caseId)).toEqual(before);
    const fTax = await sql<{ value: unknown }>(
      "SELECT value FROM fact_records WHERE case_id = $1 AND fact_key = 'business.fTaxStatus'",
      [caseId],
    );
    expect(fTax).toEqual([{ value: { taxForm: 'F', validFrom: '2026-12-01' } }]);
  });

  it('keeps a dispatched step dispatched when a change computed before the relay marked it writes it back', async () => {
    agencies.setScript(() => null); // Bolagsverket stays silent: the first step stays dispatched.
    const repository = leo.app.get(EngineRepository);
    const caseId = await newCase();
    await waitForStep(caseId, 'register-sole-trader', 'dispatched');
    // A change computed from the state its own commit left (the step 'ready': the relay marks it
    // dispatched afterwards, outside the case's revision) touches the step again.
    const loaded = await repository.loadCase({ caseId });
    if (!loaded) throw new Error('no case');
    const run = loaded.runs.find((r) => r.stepId === 'register-sole-trader');
    if (!run) throw new Error('no step run');
    const stale = { ...run, state: 'ready' as const, overdue: true };
    const revision = loaded.caseRecord.revision;
    const written = await repository.commitCase(
      change(
        loaded.caseRecord,
        revision,
        { type: 'step-overdue', stepId: run.stepId, seq: revision + 1 },
        [stale],
      ),
    );
    expect(written.committed).toBe(true);
    const [row] = await sql<{ state: string; overdue: boolean; attempt: number }>(
      'SELECT state, overdue, attempt FROM step_runs WHERE id = $1',
      [run.id],
    );
    expect(row).toEqual({ state: 'dispatched', overdue: true, attempt: run.attempt });

    // A new attempt's 'ready' is written as it is.
    const retried = await repository.commitCase(
      change(
        loaded.caseRecord,
        revision + 1,
        { type: 'step-dispatched', stepId: run.stepId, seq: revision + 2 },
        [{ ...stale, attempt: run.attempt + 1 }],
      ),
    );
    expect(retried.committed).toBe(true);
    const [after] = await sql<{ state: string; attempt: number }>(
      'SELECT state, attempt FROM step_runs WHERE id = $1',
      [run.id],
    );
    expect(after).toEqual({ state: 'ready', attempt: run.attempt + 1 });
    await engine.cancelCase(caseId, 'test over', BY_ADMIN);
  });

  it('commits changes to several cases as one statement, each on its own revision, and a bad one fails alone', async () => {
    agencies.setScript(() => null); // Bolagsverket stays silent: nothing else changes the cases.
    const repository = leo.app.get(EngineRepository);
    const caseIds = await Promise.all([newCase(), newCase(), newCase(), newCase(), newCase()]);
    await Promise.all(caseIds.map((id) => waitForStep(id, 'register-sole-trader', 'dispatched')));
    const sizes: Array<[string, number]> = [];
    const stop = repository.observeBatches((statement, size) => sizes.push([statement, size]));
    try {
      // Read together: one statement, each caller its own copy; a missing case is null.
      const loaded = await Promise.all([
        ...caseIds.map((caseId) => repository.loadCase({ caseId })),
        repository.loadCase({ caseId: '00000000-0000-4000-8000-000000000000' }),
      ]);
      // (Anything else of the engine's read in the same turn would join the batch.)
      expect(Math.max(...sizes.map(([, size]) => size))).toBeGreaterThanOrEqual(6);
      expect(loaded[5]).toBeNull();
      // One case asked for twice in a batch: equal, but two copies (a change mutates its own).
      const [once, twice] = await Promise.all([
        repository.loadCase({ caseId: caseIds[0] }),
        repository.loadCase({ caseId: caseIds[0] }),
      ]);
      expect(once).toEqual(twice);
      expect(once?.caseRecord).not.toBe(twice?.caseRecord);
      expect(once?.runs[0]).not.toBe(twice?.runs[0]);
      const cases = loaded.slice(0, 5).map((l) => {
        if (!l) throw new Error('no case');
        return l;
      });
      // Per case: the revision the change was computed from and its event's number, relative to
      // the case's revision, and whether it commits.
      const plans: Array<{ from: number; seq: number; commits: boolean | 'error' }> = [
        { from: 0, seq: 1, commits: true },
        { from: 0, seq: 1, commits: true },
        // Computed from an older revision: not written, the others are.
        { from: -1, seq: 0, commits: false },
        { from: 0, seq: 1, commits: true },
        // An event number the case has already: the statement fails, so each goes alone.
        { from: 0, seq: 0, commits: 'error' },
      ];
      const planOf = (i: number): (typeof plans)[number] => {
        const plan = plans[i];
        if (!plan) throw new Error(`no plan for case ${String(i)}`);
        return plan;
      };
      sizes.length = 0;
      const outcomes = await Promise.allSettled(
        cases.map(({ caseRecord }, i) => {
          const { from, seq } = planOf(i);
          return repository.commitCase(
            change(caseRecord, caseRecord.revision + from, {
              type: 'step-overdue',
              stepId: 'register-sole-trader',
              seq: caseRecord.revision + seq,
            }),
          );
        }),
      );
      expect(sizes[0]?.[0]).toBe('commit-cases');
      expect(sizes[0]?.[1]).toBeGreaterThanOrEqual(5);
      expect(outcomes.map((o) => (o.status === 'fulfilled' ? o.value.committed : 'error'))).toEqual(
        plans.map((p) => p.commits),
      );
      const rows = await sql<{ id: string; revision: number; overdue: string }>(
        `SELECT c.id, c.revision, count(e.id)::text AS overdue FROM cases c
           LEFT JOIN case_events e ON e.case_id = c.id AND e.type = 'step-overdue'
          WHERE c.id = ANY($1) GROUP BY c.id`,
        [caseIds],
      );
      const byId = new Map(rows.map((r) => [r.id, r]));
      expect(caseIds.map((id) => byId.get(id))).toEqual(
        cases.map(({ caseRecord }, i) => {
          const written = planOf(i).commits === true;
          return {
            id: caseRecord.id,
            revision: caseRecord.revision + (written ? 1 : 0),
            overdue: written ? '1' : '0',
          };
        }),
      );
    } finally {
      stop();
      await Promise.all(caseIds.map((id) => engine.cancelCase(id, 'test over', BY_ADMIN)));
    }
  });

  it("writes a case it kept in memory only at its subject's current facts: an address recorded meanwhile is the one sent", async () => {
    // Bolagsverket stays silent, so the case waits with its state kept after the submit.
    agencies.setScript((job) => (job.stepId === 'register-sole-trader' ? null : undefined));
    const repository = leo.app.get(EngineRepository);
    const subjectId = await repository.createSubject();
    const caseId = await startCase(engine, repository, { subjectId });
    await waitForStep(caseId, 'register-sole-trader', 'dispatched');
    // Another case (here: written directly) records a new address for the same subject.
    const moved = { street: 'Nygatan 3', postalCode: '352 31', town: 'Växjö' };
    const before = await repository.subjectFacts(subjectId);
    await leo.app
      .get(HousekeepingRepository)
      .transaction((manager) =>
        repository.insertFacts(manager, [
          { subjectId, factKey: 'person.address', value: moved, source: 'citizen' },
        ]),
      );
    expect((await repository.subjectFacts(subjectId)).revision).toBe(before.revision + 1);
    // The registration's answer is applied to the kept state first; its write is refused
    // (the subject's facts moved on), so the case is read again and decided on the new facts.
    const [run] = await sql<{ id: string }>(
      "SELECT id FROM step_runs WHERE case_id = $1 AND step_id = 'register-sole-trader'",
      [caseId],
    );
    const applied = await engine.applyResult({
      stepRunId: run?.id ?? '',
      attempt: 1,
      agency: 'bolagsverket',
      result: { outcome: 'completed', produced: { 'business.orgNumber': ORG } },
      reportedAt: new Date().toISOString(),
    });
    expect(applied).toBe('applied');
    await waitForCase(caseId, ['completed']);
    const notice = received().filter((j) => j.caseId === caseId && j.stepId === 'business-notice');
    expect(notice.map((j) => j.facts['person.address'])).toEqual([moved]);
  });

  it('reads the facts and revisions of many subjects together, each caller getting its own', async () => {
    const repository = leo.app.get(EngineRepository);
    const [moving, staying] = [await repository.createSubject(), await repository.createSubject()];
    const address = { street: 'Storgatan 1', postalCode: '111 22', town: 'Stockholm' };
    await leo.app
      .get(HousekeepingRepository)
      .transaction((manager) =>
        repository.insertFacts(manager, [
          { subjectId: moving, factKey: 'person.address', value: address, source: 'citizen' },
        ]),
      );
    // In one tick, so in one batch: one subject twice, another without facts, and none at all.
    const [first, second, empty, missing, revisions] = await Promise.all([
      repository.subjectFacts(moving),
      repository.subjectFacts(moving),
      repository.subjectFacts(staying),
      repository.subjectFacts('no-such-subject'),
      Promise.all([moving, staying, 'no-such-subject'].map((id) => repository.factsRevision(id))),
    ]);
    expect(first.facts.get('person.address')?.value).toEqual(address);
    expect(first.revision).toBeGreaterThan(0);
    expect(second.revision).toBe(first.revision);
    expect(second.facts).not.toBe(first.facts);
    expect([empty.facts.size, empty.revision]).toEqual([0, 0]);
    expect([missing.facts.size, missing.revision]).toEqual([0, 0]);
    expect(revisions).toEqual([first.revision, 0, -1]);
  });

  it('finds or creates the subjects of many identities together, one subject per identity', async () => {
    const repository = leo.app.get(EngineRepository);
    const known = `digest-${randomUUID()}`;
    const knownId = await repository.subjectByDigest(known);
    const fresh = `digest-${randomUUID()}`;
    // In one tick, so in one batch: a known identity, a new one asked for twice.
    const ids = await Promise.all([
      repository.subjectByDigest(known),
      repository.subjectByDigest(fresh),
      repository.subjectByDigest(fresh),
    ]);
    expect(ids[0]).toBe(knownId);
    expect(ids[1]).toBe(ids[2]);
    expect(ids[1]).not.toBe(knownId);
    const rows = await sql<{ id: string }>(
      'SELECT id FROM subjects WHERE identity_digest = ANY($1::text[]) ORDER BY id',
      [[known, fresh]],
    );
    expect(rows.map((r) => r.id).sort()).toEqual([knownId, ids[1]].sort());
  });

  it('writes the answers of parallel steps that arrive together as one change, each applied once', async () => {
    // Skatteverket stays silent: its three steps' answers are then given at the same moment.
    agencies.setScript((job) =>
      ['f-tax', 'vat-registration', 'employer-registration'].includes(job.stepId)
        ? null
        : undefined,
    );
    const repository = leo.app.get(EngineRepository);
    const caseId = await newCase();
    await waitForStep(caseId, 'employer-registration', 'dispatched');
    const runs = await sql<{ id: string; step_id: string }>(
      "SELECT id, step_id FROM step_runs WHERE case_id = $1 AND agency = 'skatteverket'",
      [caseId],
    );
    const produced: Record<string, StepResult['result']> = {
      'f-tax': { outcome: 'completed', produced: { 'business.fTaxStatus': F_TAX } },
      'vat-registration': {
        outcome: 'completed',
        produced: { 'business.vatNumber': 'SE901211994801' },
      },
      'employer-registration': { outcome: 'completed', produced: { 'business.employerId': ORG } },
    };
    const results: StepResult[] = runs.map((r) => ({
      stepRunId: r.id,
      attempt: 1,
      agency: 'skatteverket',
      result: produced[r.step_id] ?? { outcome: 'completed', produced: {} },
      reportedAt: new Date().toISOString(),
    }));
    const commits: number[] = [];
    const stop = repository.observeBatches((statement, size) => {
      if (statement === 'commit-cases') commits.push(size);
    });
    try {
      // Each twice: the repeat of an answer taken in the same turn changes nothing.
      const outcomes = await Promise.all(
        [...results, ...results].map((r) => engine.applyResult(r)),
      );
      expect(outcomes).toEqual(['applied', 'applied', 'applied', 'ignored', 'ignored', 'ignored']);
      // One write for the three answers (and the notice they made ready), not one each.
      expect(commits).toEqual([1]);
    } finally {
      stop();
    }
    await waitForCase(caseId, ['completed']);
    const history = await events(caseId);
    expect(history.map((e) => e.seq)).toEqual(history.map((_, i) => i + 1));
    expect(history.filter((e) => e.type === 'step-completed')).toHaveLength(5);
  });

  it('refuses a result that sets a fact the step does not produce, and records no fact from it', async () => {
    agencies.setScript((job) =>
      job.stepId === 'register-sole-trader'
        ? {
            outcome: 'completed',
            produced: {
              'business.orgNumber': ORG,
              'person.address': { street: 'Elsewhere 1', postalCode: '111 22', town: 'Stockholm' },
            },
          }
        : undefined,
    );
    const caseId = await newCase();
    await waitForCase(caseId, ['action-required']);
    expect((await steps(caseId)).find((s) => s.step_id === 'register-sole-trader')).toMatchObject({
      state: 'failed',
      last_error: 'invalid-result',
    });
    const history = await events(caseId);
    const refused = history.find((e) => e.type === 'result-refused');
    expect(JSON.stringify(refused?.data)).toContain('person.address');
    expect(JSON.stringify(refused?.data)).not.toContain('Elsewhere'); // no values in the history
    expect(
      await sql("SELECT 1 FROM fact_records WHERE case_id = $1 AND source = 'agency'", [caseId]),
    ).toEqual([]);
  });

  it('parks a step awaiting a decision, and a cancel stops the rest and tells the agency', async () => {
    agencies.setScript((job) =>
      job.stepId === 'f-tax'
        ? { outcome: 'pending', reference: 'SKV-F-77', expectedDecisionAt: '2026-12-24T00:00:00Z' }
        : undefined,
    );
    const caseId = await newCase();
    await waitForStep(caseId, 'f-tax', 'awaiting-decision');
    await waitForStep(caseId, 'vat-registration', 'completed');
    await engine.cancelCase(caseId, 'The citizen withdrew the application', BY_ADMIN);
    expect(await waitForCase(caseId, ['cancelled'])).toBe('cancelled');
    const after = await steps(caseId);
    expect(after.find((s) => s.step_id === 'f-tax')?.state).toBe('cancelled');
    expect(after.find((s) => s.step_id === 'business-notice')?.state).toBe('cancelled');
    expect(after.find((s) => s.step_id === 'vat-registration')?.state).toBe('completed');
    const deadline = Date.now() + 10_000;
    while (!agencies.cancelled.some((c) => c.caseId === caseId) && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 50));
    expect(agencies.cancelled.filter((c) => c.caseId === caseId).map((c) => c.action)).toEqual([
      'register-f-tax',
    ]);

    // A decision arriving after the cancel changes nothing.
    const job = received().find((j) => j.caseId === caseId && j.stepId === 'f-tax');
    if (!job) throw new Error('no f-tax job');
    await expect(
      engine.applyResult({
        stepRunId: job.stepRunId,
        attempt: 1,
        agency: 'skatteverket',
        result: {
          outcome: 'completed',
          produced: { 'business.fTaxStatus': { taxForm: 'F', validFrom: '2026-12-01' } },
        },
        reportedAt: new Date().toISOString(),
      }),
    ).resolves.toBe('ignored');
    await expect(engine.cancelCase(caseId, 'again', BY_ADMIN)).rejects.toThrow(/already cancelled/);
  });

  it('recovers from Redis losing its data: the reconciler re-dispatches from Postgres, the agency sees the same job', async () => {
    let lost = false;
    agencies.setScript((job) => {
      // The first delivery of the employer registration is lost with Redis' data: no answer.
      if (job.stepId === 'employer-registration' && !lost) {
        lost = true;
        return null;
      }
      return undefined;
    });
    const caseId = await newCase();
    await waitForStep(caseId, 'employer-registration', 'dispatched');
    await waitForStep(caseId, 'f-tax', 'completed');
    const redis = new Redis(redisOptions(leo.config.redis.url));
    try {
      let cursor = '0';
      do {
        const [next, keys] = await redis.scan(
          cursor,
          'MATCH',
          `${leo.config.queue.prefix}:agency.*`,
          'COUNT',
          1000,
        );
        cursor = next;
        if (keys.length > 0) await redis.unlink(...keys);
      } while (cursor !== '0');
    } finally {
      redis.disconnect();
    }
    const republished = await leo.app.get(Reconciler).reconcile(0);
    expect(republished).toBe(1);
    await waitForCase(caseId, ['completed']);
    const deliveries = received().filter(
      (j) => j.caseId === caseId && j.stepId === 'employer-registration',
    );
    expect(deliveries).toHaveLength(2);
    expect(deliveries[1]).toEqual(deliveries[0]); // the same job: same attempt, key and facts
    // Nothing else was re-sent: the other steps had answered.
    expect(received().filter((j) => j.caseId === caseId)).toHaveLength(6);
  });

  it('re-delivers a job whose answer was lost though the job completed (it stays in Redis an hour)', async () => {
    let lost = false;
    agencies.setScript((job) => {
      if (job.stepId === 'vat-registration' && !lost) {
        lost = true;
        return null; // the job completes, its answer never reaches the results queue
      }
      return undefined;
    });
    const caseId = await newCase();
    await waitForStep(caseId, 'vat-registration', 'dispatched');
    await waitForStep(caseId, 'f-tax', 'completed');
    expect(await leo.app.get(Reconciler).reconcile(0)).toBeGreaterThanOrEqual(1);
    await waitForCase(caseId, ['completed']);
    expect(
      received().filter((j) => j.caseId === caseId && j.stepId === 'vat-registration'),
    ).toHaveLength(2);
  });

  it('escalates a step past its deadline, once, and keeps waiting for its answer', async () => {
    agencies.setScript((job) =>
      job.stepId === 'f-tax' ? { outcome: 'pending', reference: 'SKV-LATE' } : undefined,
    );
    const caseId = await newCase();
    await waitForStep(caseId, 'f-tax', 'awaiting-decision');
    await sql(
      "UPDATE step_runs SET deadline_at = now() - interval '1 minute' WHERE case_id = $1 AND step_id = 'f-tax'",
      [caseId],
    );
    expect(await engine.escalateOverdue()).toBeGreaterThanOrEqual(1);
    await engine.escalateOverdue();
    const overdue = (await events(caseId)).filter((e) => e.type === 'step-overdue');
    expect(overdue).toHaveLength(1);
    expect(overdue[0]?.step_id).toBe('f-tax');
    const [run] = await sql<{ state: string; overdue: boolean }>(
      "SELECT state, overdue FROM step_runs WHERE case_id = $1 AND step_id = 'f-tax'",
      [caseId],
    );
    expect(run).toEqual({ state: 'awaiting-decision', overdue: true });
  });

  it('refuses invalid answers with every problem named, and opens no case', async () => {
    const before = await sql<{ n: string }>('SELECT count(*) AS n FROM cases');
    await expect(
      openResolvedCase(engine, leo.app.get(EngineRepository), {
        answers: {
          ...WORKLOAD_ANSWERS,
          'business.sniCode': '6201',
          'business.orgNumber': '5560000000',
          'person.personalNumber': '199012119949',
          'person.address': { street: 'Elsewhere 1', postalCode: '111 22', town: 'Stockholm' },
        },
      }),
    ).rejects.toMatchObject({
      problems: expect.arrayContaining([
        expect.objectContaining({ path: expect.stringMatching(/^answers\.business\.sniCode/) }),
        expect.objectContaining({ path: 'answers.business.orgNumber', code: 'unexpected-fact' }),
        expect.objectContaining({
          path: 'answers.person.personalNumber',
          code: 'from-e-identification',
        }),
        expect.objectContaining({ path: 'answers.person.address', code: 'provided-by-agency' }),
      ]),
    });
    expect(await sql('SELECT count(*) AS n FROM cases')).toEqual(before);
  });

  it('arms a deadline timer through the outbox once the step has been open a while, and a timer that fires escalates the step once and tells the citizen', async () => {
    agencies.setScript((job) =>
      job.stepId === 'f-tax' ? { outcome: 'pending', reference: 'SKV-TIMER' } : undefined,
    );
    const caseId = await newCase();
    await waitForStep(caseId, 'f-tax', 'awaiting-decision');
    const timerRows = (): Promise<
      Array<{ job_id: string; available_at: Date; deadline: string; armed: string | null }>
    > =>
      sql(
        `SELECT o.job_id, o.available_at, s.deadline_at AS deadline, s.timer_armed_for AS armed
           FROM outbox o JOIN step_runs s ON s.id::text = o.payload->>'stepRunId'
          WHERE o.queue = 'engine.timers' AND s.case_id = $1 AND s.step_id = 'f-tax'`,
        [caseId],
      );
    // Six weeks away: no timer at dispatch, nor from a sweep before the step has been open
    // LEO_TIMER_ARM_AFTER_MS (a minute).
    const reconciler = leo.app.get(Reconciler);
    await reconciler.armTimers(60_000);
    expect(await timerRows()).toEqual([]);
    // Open long enough (the sweep's threshold lowered to none): armed, once.
    expect(await reconciler.armTimers(0)).toBeGreaterThanOrEqual(1);
    await reconciler.armTimers(0);
    const timers = leo.app.get(QueueService).queue<TimerJobs>(ENGINE_TIMERS_QUEUE);
    const rows = await timerRows();
    expect(rows).toHaveLength(1);
    const [timer] = rows;
    // The timer is due when the step's deadline (six weeks) passes, not before, and it is in
    // Redis as a delayed job.
    expect(timer?.available_at.getTime()).toBe(new Date(timer?.deadline ?? 0).getTime());
    expect(timer?.available_at.getTime() ?? 0).toBeGreaterThan(Date.now() + 41 * 86_400_000);
    expect(new Date(timer?.armed ?? 0).getTime()).toBe(new Date(timer?.deadline ?? 0).getTime());
    const published = Date.now() + 5_000;
    let state = 'unknown';
    while (Date.now() < published) {
      state = await timers.raw.getJobState(timer?.job_id ?? '');
      if (state === 'delayed') break;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(state).toBe('delayed');

    // The deadline comes: moved into the past here, and a timer for it fired now.
    const [run] = await sql<{ id: string; deadline_at: Date }>(
      "UPDATE step_runs SET deadline_at = date_trunc('milliseconds', now()) - interval '1 second' WHERE case_id = $1 AND step_id = 'f-tax' RETURNING id, deadline_at",
      [caseId],
    );
    // A timer for a deadline that has since moved does nothing.
    await timers.add(STEP_DEADLINE, {
      caseId,
      stepRunId: run?.id ?? '',
      deadline: new Date(Date.now() + 3_600_000).toISOString(),
    });
    await timers.add(STEP_DEADLINE, {
      caseId,
      stepRunId: run?.id ?? '',
      deadline: (run?.deadline_at ?? new Date()).toISOString(),
    });
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      const [row] = await sql<{ overdue: boolean }>('SELECT overdue FROM step_runs WHERE id = $1', [
        run?.id,
      ]);
      if (row?.overdue) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    const overdue = (await events(caseId)).filter((e) => e.type === 'step-overdue');
    expect(overdue.map((e) => e.step_id)).toEqual(['f-tax']);
    const notices = await sql<{ template: string; params: { waitingFor: string } }>(
      "SELECT template, params FROM messages WHERE case_id = $1 AND template = 'step-overdue'",
      [caseId],
    );
    expect(notices).toEqual([
      { template: 'step-overdue', params: expect.objectContaining({ waitingFor: 'agency' }) },
    ]);
    // The periodic sweep (the timer's safety net) finds nothing more to escalate for it.
    await engine.escalateOverdue();
    expect((await events(caseId)).filter((e) => e.type === 'step-overdue')).toHaveLength(1);
  });

  it('waits for a citizen task, refuses bad input, then resumes the case', async () => {
    const definitions = leo.app.get(DefinitionsService);
    await definitions.createDraft(
      {
        key: 'sign-errand',
        version: 1,
        title: { sv: 'Signera', en: 'Sign' },
        description: { sv: 'Registrera och signera.', en: 'Register and sign.' },
        inputs: [
          'person.name',
          'person.personalNumber',
          'business.name',
          'business.legalForm',
          'business.sniCode',
          'business.expectedTurnover',
          'person.municipalityCode',
        ],
        steps: [
          {
            id: 'register',
            agency: 'bolagsverket',
            action: 'register-sole-trader',
            kind: 'automatic',
            needs: [
              'person.name',
              'person.personalNumber',
              'business.name',
              'business.legalForm',
              'business.sniCode',
            ],
            produces: ['business.orgNumber'],
          },
          {
            id: 'sign-application',
            agency: 'skatteverket',
            action: 'register-f-tax',
            kind: 'citizen-task',
            needs: ['business.orgNumber'],
            produces: ['business.fTaxStatus'],
            deadline: 'P7D',
          },
          {
            id: 'notice',
            agency: 'kommun',
            action: 'notify-new-business',
            kind: 'automatic',
            after: ['sign-application'],
            needs: ['business.orgNumber', 'person.municipalityCode'],
            produces: [],
          },
        ],
      },
      'test',
    );
    await definitions.publishDraft('sign-errand', 'test');
    const { caseId, subjectId } = await openResolvedCase(engine, leo.app.get(EngineRepository), {
      lifeEventKey: 'sign-errand',
      answers: {
        'business.name': 'Signaturen',
        'business.legalForm': 'enskild-naringsidkare',
        'business.sniCode': '62010',
        'business.expectedTurnover': 200000,
      },
    });
    await submitWithConsent(engine, caseId);
    await waitForStep(caseId, 'sign-application', 'awaiting-citizen');
    expect(await waitForCase(caseId, ['running'])).toBe('running');
    const [request] = await sql<{ template: string; kind: string }>(
      "SELECT template, kind FROM messages WHERE case_id = $1 AND template = 'task-waiting'",
      [caseId],
    );
    expect(request).toEqual({ template: 'task-waiting', kind: 'request' });
    // Nothing reached an agency for the task itself.
    expect(
      received()
        .filter((j) => j.caseId === caseId)
        .map((j) => j.stepId),
    ).toEqual(['register']);

    await expect(
      engine.completeCitizenTask(caseId, subjectId, 'sign-application', {
        'business.fTaxStatus': { taxForm: 'X' },
        'business.vatNumber': 'SE1',
      }),
    ).rejects.toMatchObject({
      code: 'validation-failed',
      problems: expect.arrayContaining([
        expect.objectContaining({ path: 'facts.business.vatNumber', code: 'undeclared' }),
        expect.objectContaining({ path: expect.stringMatching(/^facts\.business\.fTaxStatus/) }),
      ]),
    });
    await expect(
      engine.completeCitizenTask(
        caseId,
        await leo.app.get(EngineRepository).createSubject(),
        'sign-application',
        {
          'business.fTaxStatus': F_TAX,
        },
      ),
    ).rejects.toMatchObject({ code: 'case-not-found' });
    expect((await steps(caseId)).find((s) => s.step_id === 'sign-application')?.state).toBe(
      'awaiting-citizen',
    );

    await engine.completeCitizenTask(caseId, subjectId, 'sign-application', {
      'business.fTaxStatus': F_TAX,
    });
    expect(await waitForCase(caseId, ['completed'])).toBe('completed');
    const [given] = await sql<{ source: string; step_id: string }>(
      `SELECT f.source, s.step_id FROM fact_records f JOIN step_runs s ON s.id = f.step_run_id
        WHERE f.case_id = $1 AND f.fact_key = 'business.fTaxStatus'`,
      [caseId],
    );
    expect(given).toEqual({ source: 'citizen', step_id: 'sign-application' });
    await expect(
      engine.completeCitizenTask(caseId, subjectId, 'sign-application', {
        'business.fTaxStatus': F_TAX,
      }),
    ).rejects.toMatchObject({ code: 'task-not-waiting' });
  });
});
