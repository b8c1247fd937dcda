import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { randomUUID } from 'node:crypto';
import {
  STEP_CANCEL,
  STEP_EXECUTE,
  agencyQueueName,
  createAgencyWorker,
  parseResultEntry,
  agencyResultsStreamKey,
  stepJobId,
  type AgencyWorkerLogger,
  type FactValue,
  type StepCancelJob,
  type StepJob,
  type StepResult,
} from '#agency-contract';
import { FORMAT_CHECKS } from '#facts';
import { MockAgenciesService } from '../src/adapters/mock-agencies.service.js';
import { MockLedgerRepository, type NewEffect } from '../src/adapters/mock-ledger.repository.js';
import { redisOptions } from '../src/queue/redis-connection.js';
import {
  createTestDatabase,
  sql,
  startTestApp,
  testQueuePrefix,
  testRedisUrl,
  type TestApp,
} from './support/test-env.js';
import { waitUntil } from './support/engine-harness.js';

/**
 * The mock agencies as the engine meets them: StepJobs put on `agency.<code>` directly, answers
 * read from the results stream, the ledgers read from Postgres. Each leo here runs the
 * `adapters` role alone, so no engine consumes the stream.
 */

const PERSON = {
  'person.name': { givenName: 'Anna Maria', surname: 'Lindqvist' },
  'person.personalNumber': '199012119948',
};
const SOLE_TRADER = {
  ...PERSON,
  'business.name': 'Lindqvist Programutveckling',
  'business.legalForm': 'enskild-naringsidkare',
  'business.sniCode': '62010',
};
const LIMITED_COMPANY = {
  ...PERSON,
  'person.address': { street: 'Storgatan 12', postalCode: '352 30', town: 'Växjö' },
  'business.name': 'Lindqvist Programutveckling AB',
  'business.legalForm': 'aktiebolag',
  'business.sniCode': '62010',
  'business.shareCapital': 25000,
};
const ALCOHOL_LICENCE = {
  'business.orgNumber': '199012119948',
  'business.name': 'Krogen Lindqvist',
  ...PERSON,
  'business.premisesAddress': { street: 'Kungsgatan 3', postalCode: '352 33', town: 'Växjö' },
  'business.premisesMunicipalityCode': '0780',
};

function stepJob(
  action: string,
  facts: Record<string, FactValue>,
  overrides: Partial<StepJob> = {},
): StepJob {
  return {
    caseId: randomUUID(),
    stepRunId: randomUUID(),
    stepId: action,
    action,
    attempt: 1,
    idempotencyKey: randomUUID(),
    facts,
    ...overrides,
  };
}

/** An entry of the results stream: its id, its fields as written, and the result in its body. */
interface StreamEntry {
  id: string;
  fields: string[];
  data: StepResult;
}

/** The agencies whose results streams the engine side reads. */
const AGENCIES = [
  'arbetsformedlingen',
  'bolagsverket',
  'forsakringskassan',
  // Växjö, where the jobs below go: each municipality is an agency of its own (decision 0024).
  'kommun-0780',
  'pensionsmyndigheten',
  'skatteverket',
  'testverket',
  'transportstyrelsen',
];

/**
 * What the engine side sees: results as they arrive on the agencies' results streams (read from
 * their start with XREAD, no consumer group, so nothing is taken from anyone), and a way to send
 * jobs.
 */
class EngineSide {
  readonly results: StreamEntry[] = [];
  private readonly queues = new Map<string, Queue>();
  readonly redis = new Redis(redisOptions(testRedisUrl()));
  private readonly reader = new Redis(redisOptions(testRedisUrl()));
  private closed = false;
  private readonly reading: Promise<void>;

  constructor(readonly prefix: string) {
    this.reading = this.read();
  }

  /** The results stream of `agency`. */
  streamOf(agency: string): string {
    return agencyResultsStreamKey(this.prefix, agency);
  }

  private async read(): Promise<void> {
    const keys = AGENCIES.map((agency) => this.streamOf(agency));
    const last = new Map(keys.map((key) => [key, '0-0']));
    while (!this.closed) {
      const reply = await this.reader
        .xread(
          'COUNT',
          100,
          'BLOCK',
          100,
          'STREAMS',
          ...keys,
          ...keys.map((k) => last.get(k) ?? '0-0'),
        )
        .catch(() => null);
      for (const [key, entries] of reply ?? []) {
        for (const [id, fields] of entries) {
          last.set(key, id);
          const parsed = parseResultEntry(fields);
          if (parsed.ok && parsed.entry.kind === 'step.result') {
            this.results.push({ id, fields, data: parsed.entry.result });
          }
        }
      }
    }
  }

  /** The entries on `agency`'s stream now, read afresh. */
  async entries(agency: string): Promise<Array<[string, string[]]>> {
    return this.redis.xrange(this.streamOf(agency), '-', '+');
  }

  queue(agency: string): Queue {
    let queue = this.queues.get(agency);
    if (!queue) {
      queue = new Queue(agencyQueueName(agency), {
        connection: redisOptions(testRedisUrl()),
        prefix: this.prefix,
      });
      this.queues.set(agency, queue);
    }
    return queue;
  }

  async send(
    agency: string,
    job: StepJob,
    jobId = stepJobId(job.stepRunId, job.attempt),
  ): Promise<void> {
    await this.queue(agency).add(STEP_EXECUTE, job, { jobId });
  }

  async cancel(agency: string, job: StepCancelJob): Promise<void> {
    await this.queue(agency).add(STEP_CANCEL, job, { jobId: `${job.stepRunId}.cancel` });
  }

  /** The results for a step run (and attempt), once `count` have arrived. */
  async waitFor(stepRunId: string, count = 1, timeoutMs = 15_000): Promise<StepResult[]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.results.filter((r) => r.data.stepRunId === stepRunId).map((r) => r.data);
      if (found.length >= count) return found;
      if (Date.now() > deadline) {
        throw new Error(
          `${found.length} of ${count} results for ${stepRunId}: ${JSON.stringify(found)}`,
        );
      }
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.reading;
    this.reader.disconnect();
    this.redis.disconnect();
    await Promise.all([...this.queues.values()].map((q) => q.close()));
  }
}

const ledger = async (leo: TestApp, idempotencyKey: string) => ({
  requests: await sql<{ step_run_id: string; attempt: number; action: string; facts: unknown }>(
    leo.database,
    'SELECT step_run_id, attempt, action, facts FROM mock_agency_requests WHERE idempotency_key = $1 ORDER BY id',
    [idempotencyKey],
  ),
  effects: await sql<{
    agency: string;
    outcome: { outcome: string };
    decision: unknown;
    attempt: number;
  }>(
    leo.database,
    'SELECT agency, outcome, decision, attempt FROM mock_agency_effects WHERE idempotency_key = $1',
    [idempotencyKey],
  ),
});

/** leo in the `adapters` role on its own database and prefix, with an engine side to drive it. */
async function startAdapters(
  overrides: Record<string, string> = {},
): Promise<{ leo: TestApp; engine: EngineSide }> {
  const leo = await startTestApp({ LEO_ROLE: 'adapters', ...overrides });
  return { leo, engine: new EngineSide(leo.config.queue.prefix) };
}

describe('the mock agencies, on real Redis and Postgres', () => {
  let leo: TestApp;
  let engine: EngineSide;
  const sent: StepJob[] = [];
  const send = async (agency: string, job: StepJob, jobId?: string): Promise<void> => {
    sent.push(job);
    await engine.send(agency, job, jobId);
  };

  beforeAll(async () => {
    ({ leo, engine } = await startAdapters({
      MOCK_DECISION_DELAY_MS: '300',
      MOCK_REJECTION_RATE: '0',
    }));
  });
  afterAll(async () => {
    await engine.close();
    await leo.close();
  });

  it('serves every mock agency of config/agencies.yaml', () => {
    const service = leo.app.get(MockAgenciesService);
    for (const code of [
      'bolagsverket',
      'skatteverket',
      'kommun-0180',
      'kommun-0780',
      'kommun-1480',
      'forsakringskassan',
      'pensionsmyndigheten',
      'transportstyrelsen',
      'arbetsformedlingen',
    ]) {
      expect(service.worker(code)).toBeDefined();
    }
    // The municipalities' entry has no queue of its own: nothing is ever sent to it.
    expect(service.worker('kommun')).toBeUndefined();
  });

  it('registers a sole trader: completed, with the personnummer as the organisation number', async () => {
    const job = stepJob('register-sole-trader', SOLE_TRADER);
    await send('bolagsverket', job);
    const [result] = await engine.waitFor(job.stepRunId);
    expect(result).toEqual({
      stepRunId: job.stepRunId,
      attempt: 1,
      agency: 'bolagsverket',
      result: {
        outcome: 'completed',
        produced: { 'business.orgNumber': '199012119948' },
        reference: expect.stringMatching(/^BV-\d{4}-[0-9A-F]{10}$/),
      },
      reportedAt: expect.any(String),
    });
    // One stream entry: the kind, then the result as JSON, nothing else.
    const published = engine.results.find((r) => r.data.stepRunId === job.stepRunId);
    expect(published?.fields).toEqual(['kind', 'step.result', 'body', JSON.stringify(result)]);
  });

  it('answers a re-delivered job with the recorded answer, recording the request but making no second effect', async () => {
    const job = stepJob('register-sole-trader', SOLE_TRADER);
    const jobId = stepJobId(job.stepRunId, job.attempt);
    await send('bolagsverket', job);
    const [first] = await engine.waitFor(job.stepRunId);
    // As after Redis lost its data: the agency job and its result are gone, and leo re-dispatches.
    const agencyQueue = engine.queue('bolagsverket');
    await waitUntil(async () => (await agencyQueue.getJobState(jobId)) === 'completed');
    await agencyQueue.remove(jobId);
    const entry = engine.results.find((r) => r.data.stepRunId === job.stepRunId);
    await engine.redis.xdel(engine.streamOf('bolagsverket'), entry?.id ?? '');
    await send('bolagsverket', job);
    const [, second] = await engine.waitFor(job.stepRunId, 2);
    expect(second?.result).toEqual(first?.result);
    const { requests, effects } = await ledger(leo, job.idempotencyKey);
    expect(requests).toHaveLength(2);
    expect(effects).toHaveLength(1);
  });

  it("records deliveries that arrive together in one statement, each key's effect once and each request kept", async () => {
    const repository = leo.app.get(MockLedgerRepository);
    const effect = (job: StepJob, reference: string): NewEffect => {
      sent.push(job); // as every delivery here: the minimisation check below reads them all
      return {
        agency: 'skatteverket',
        job,
        reference,
        outcome: { outcome: 'completed', produced: {}, reference },
      };
    };
    const earlier = stepJob('register-vat', SOLE_TRADER);
    await repository.recordEffect(effect(earlier, 'SKV-earlier'));
    const fresh = [1, 2, 3].map(() => stepJob('register-vat', SOLE_TRADER));
    const twice = stepJob('register-vat', SOLE_TRADER);
    // All in one tick: one batch, with a key already made and a key delivered twice in it.
    const outcomes = await Promise.all([
      ...fresh.map((job, i) => repository.recordEffect(effect(job, `SKV-fresh-${String(i)}`))),
      repository.recordEffect(effect(twice, 'SKV-twice-1')),
      repository.recordEffect(effect({ ...twice, attempt: 2 }, 'SKV-twice-2')),
      repository.recordEffect(effect({ ...earlier, attempt: 2 }, 'SKV-earlier-again')),
    ]);
    expect(outcomes.map((o) => [o.created, o.effect.reference])).toEqual([
      [true, 'SKV-fresh-0'],
      [true, 'SKV-fresh-1'],
      [true, 'SKV-fresh-2'],
      [true, 'SKV-twice-1'],
      [false, 'SKV-twice-1'],
      [false, 'SKV-earlier'],
    ]);
    for (const [job, requests] of [
      [fresh[0], 1],
      [twice, 2],
      [earlier, 2],
    ] as const) {
      const recorded = await ledger(leo, job?.idempotencyKey ?? '');
      expect(recorded.requests).toHaveLength(requests);
      expect(recorded.effects).toHaveLength(1);
    }
  });

  it('gives each limited company a new valid number, the same one for every attempt of one registration', async () => {
    const first = stepJob('register-limited-company', LIMITED_COMPANY);
    const other = stepJob('register-limited-company', LIMITED_COMPANY);
    // The same attempt delivered twice at once (two jobs): one effect, and the same answer to
    // each (two entries: the engine ignores the second).
    const again = `${stepJobId(first.stepRunId, 1)}-again`;
    await Promise.all([
      send('bolagsverket', first),
      send('bolagsverket', first, again),
      send('bolagsverket', other),
    ]);
    const agencyQueue = engine.queue('bolagsverket');
    await waitUntil(async () => {
      const states = await Promise.all(
        [stepJobId(first.stepRunId, 1), again].map((id) => agencyQueue.getJobState(id)),
      );
      return states.every((state) => state === 'completed');
    });
    // Then a second attempt.
    await send('bolagsverket', { ...first, attempt: 2 });
    const answers = await engine.waitFor(first.stepRunId, 3);
    const [otherResult] = await engine.waitFor(other.stepRunId);
    const numberOf = (r: StepResult | undefined): unknown =>
      r?.result.outcome === 'completed' ? r.result.produced['business.orgNumber'] : undefined;
    const number = numberOf(answers[0]);
    expect(typeof number === 'string' && FORMAT_CHECKS.organisationsnummer(number)).toBe(true);
    expect(number).toMatch(/^55[2-9]\d{3}-\d{4}$/);
    expect(answers.map(numberOf)).toEqual([number, number, number]);
    expect(answers.map((r) => r.attempt)).toEqual([1, 1, 2]);
    expect(numberOf(otherResult)).not.toBe(number);
    const { requests, effects } = await ledger(leo, first.idempotencyKey);
    expect(requests).toHaveLength(3);
    expect(effects).toHaveLength(1);
  });

  it('registers VAT (SE + ten digits + 01) and the employer at Skatteverket', async () => {
    const vat = stepJob('register-vat', {
      'business.orgNumber': '199012119948',
      'business.expectedTurnover': 500000,
    });
    const employer = stepJob('register-employer', { 'business.orgNumber': '559100-0004' });
    await send('skatteverket', vat);
    await send('skatteverket', employer);
    const [vatResult] = await engine.waitFor(vat.stepRunId);
    const [employerResult] = await engine.waitFor(employer.stepRunId);
    expect(vatResult?.result).toMatchObject({
      outcome: 'completed',
      produced: { 'business.vatNumber': 'SE901211994801' },
    });
    expect(employerResult?.result).toMatchObject({
      outcome: 'completed',
      produced: { 'business.employerId': '559100-0004' },
    });
  });

  it('answers F-tax pending, then reports the decision for the same attempt', async () => {
    const job = stepJob('register-f-tax', {
      'business.orgNumber': '199012119948',
      'business.expectedTurnover': 500000,
    });
    await send('skatteverket', job);
    const [pending] = await engine.waitFor(job.stepRunId);
    expect(pending?.result).toEqual({
      outcome: 'pending',
      reference: expect.stringMatching(/^SKV-/),
      expectedDecisionAt: expect.any(String),
    });
    const [, decision] = await engine.waitFor(job.stepRunId, 2);
    expect(decision).toMatchObject({
      stepRunId: job.stepRunId,
      attempt: 1,
      agency: 'skatteverket',
    });
    expect(decision?.result).toEqual({
      outcome: 'completed',
      produced: {
        'business.fTaxStatus': {
          taxForm: 'F',
          validFrom: expect.stringMatching(/^\d{4}-\d{2}-\d{2}$/),
        },
      },
      reference: (pending?.result as { reference: string }).reference,
    });
    const [effect] = (await ledger(leo, job.idempotencyKey)).effects;
    expect(effect?.outcome.outcome).toBe('pending');
    expect(effect?.decision).toEqual(decision?.result);
  });

  it('handles the municipality: food premises and the business notice at once, the alcohol licence after review', async () => {
    const food = stepJob('register-food-premises', {
      'business.orgNumber': '199012119948',
      'business.name': 'Krogen Lindqvist',
      'business.sniCode': '56100',
      'business.premisesAddress': ALCOHOL_LICENCE['business.premisesAddress'],
      'business.premisesMunicipalityCode': '0780',
    });
    const notice = stepJob('notify-new-business', {
      'business.orgNumber': '199012119948',
      'person.address': { street: 'Storgatan 12', postalCode: '352 30', town: 'Växjö' },
      'person.municipalityCode': '0780',
    });
    const licence = stepJob('apply-alcohol-licence', ALCOHOL_LICENCE);
    await Promise.all([
      send('kommun-0780', food),
      send('kommun-0780', notice),
      send('kommun-0780', licence),
    ]);
    expect((await engine.waitFor(food.stepRunId))[0]?.result).toMatchObject({
      outcome: 'completed',
      produced: {},
      reference: expect.stringMatching(/^KOM-0780-/),
    });
    expect((await engine.waitFor(notice.stepRunId))[0]?.result).toMatchObject({
      outcome: 'completed',
      produced: {},
    });
    const [pending, decision] = await engine.waitFor(licence.stepRunId, 2);
    expect(pending?.result.outcome).toBe('pending');
    expect(decision?.result).toMatchObject({ outcome: 'completed', produced: {} });
  });

  it('answers an action it cannot do as a configuration fault, never a refusal', async () => {
    const job = stepJob('issue-passport', PERSON);
    await send('kommun-0780', job);
    // The SDK answers first (the mock has no handler for it): leo retries, the citizen waits.
    expect((await engine.waitFor(job.stepRunId))[0]?.result).toEqual({
      outcome: 'retryable-error',
      code: 'unknown-action',
      reason: 'the adapter of kommun-0780 has no handler for issue-passport',
    });
  });

  it('withdraws a pending application when leo cancels the step: no decision is reported', async () => {
    const job = stepJob('register-f-tax', {
      'business.orgNumber': '199012119948',
      'business.expectedTurnover': 500000,
    });
    await send('skatteverket', job);
    await engine.waitFor(job.stepRunId);
    await engine.cancel('skatteverket', {
      caseId: job.caseId,
      stepRunId: job.stepRunId,
      action: job.action,
      idempotencyKey: job.idempotencyKey,
      reason: 'cancelled',
    });
    await waitUntil(
      async () => (await ledger(leo, job.idempotencyKey)).effects[0]?.decision !== null,
    );
    await new Promise((r) => setTimeout(r, 600));
    expect(await engine.waitFor(job.stepRunId)).toHaveLength(1);
    expect((await ledger(leo, job.idempotencyKey)).effects[0]?.decision).toMatchObject({
      code: 'withdrawn',
    });
  });

  it('recorded exactly the facts each job carried, and nothing else (minimisation)', async () => {
    const requests = await sql<{ step_run_id: string; attempt: number; facts: unknown }>(
      leo.database,
      'SELECT step_run_id, attempt, facts FROM mock_agency_requests',
    );
    for (const request of requests) {
      const job = sent.find(
        (j) => j.stepRunId === request.step_run_id && j.attempt === request.attempt,
      );
      expect(job).toBeDefined();
      expect(request.facts).toEqual(job?.facts);
    }
    // Every job for an action the agency has reached the ledger.
    for (const job of sent.filter((j) => j.action !== 'issue-passport')) {
      expect(
        requests.some((r) => r.step_run_id === job.stepRunId && r.attempt === job.attempt),
      ).toBe(true);
    }
  });
});

describe('the mock agencies, configured to fail, refuse and survive a restart', () => {
  const started: Array<{ leo: TestApp; engine: EngineSide }> = [];
  afterAll(async () => {
    for (const { leo, engine } of started.reverse()) {
      await engine.close();
      await leo.close();
    }
  });

  it('records look-up requests that arrive together in one statement, each one kept', async () => {
    const side = await startAdapters();
    started.push(side);
    const repository = side.leo.app.get(MockLedgerRepository);
    const jobs = [1, 2, 3].map((attempt) => ({
      caseId: randomUUID(),
      lookupId: randomUUID(),
      attempt,
      idempotencyKey: randomUUID(),
      facts: { 'person.personalNumber': PERSON['person.personalNumber'] },
      factKeys: ['person.name'],
    }));
    await Promise.all(jobs.map((job) => repository.recordLookup('skatteverket', job)));
    for (const job of jobs) {
      const rows = await sql<{
        lookup_id: string;
        attempt: number;
        action: string;
        facts: unknown;
      }>(
        side.leo.database,
        'SELECT lookup_id, attempt, action, facts FROM mock_agency_requests WHERE idempotency_key = $1',
        [job.idempotencyKey],
      );
      expect(rows).toEqual([
        { lookup_id: job.lookupId, attempt: job.attempt, action: 'lookup', facts: job.facts },
      ]);
    }
  });

  it('answers retryable-error unavailable at failure rate 1, recording the request but no effect', async () => {
    const run = await startAdapters({ MOCK_AGENCY_FAILURE_RATE: '1' });
    started.push(run);
    const job = stepJob('register-sole-trader', SOLE_TRADER);
    await run.engine.send('bolagsverket', job);
    expect((await run.engine.waitFor(job.stepRunId))[0]?.result).toEqual({
      outcome: 'retryable-error',
      code: 'unavailable',
      reason: 'bolagsverket is temporarily unavailable',
    });
    const { requests, effects } = await ledger(run.leo, job.idempotencyKey);
    expect(requests).toHaveLength(1);
    expect(effects).toHaveLength(0);
  });

  it('refuses the alcohol licence at rejection rate 1: pending, then a rejection', async () => {
    const run = await startAdapters({ MOCK_REJECTION_RATE: '1', MOCK_DECISION_DELAY_MS: '200' });
    started.push(run);
    const job = stepJob('apply-alcohol-licence', ALCOHOL_LICENCE);
    await run.engine.send('kommun-0780', job);
    const [pending, decision] = await run.engine.waitFor(job.stepRunId, 2);
    expect(pending?.result.outcome).toBe('pending');
    expect(decision?.result).toEqual({
      outcome: 'rejected',
      code: 'licence-refused',
      reason: expect.any(String),
      reference: (pending?.result as { reference: string }).reference,
    });
  });

  it('decides at once with MOCK_DECISION_DELAY_MS=0, as the benchmark runs', async () => {
    const run = await startAdapters({ MOCK_DECISION_DELAY_MS: '0' });
    started.push(run);
    const job = stepJob('register-f-tax', {
      'business.orgNumber': '199012119948',
      'business.expectedTurnover': 500000,
    });
    await run.engine.send('skatteverket', job);
    const results = await run.engine.waitFor(job.stepRunId);
    expect(results.map((r) => r.result.outcome)).toEqual(['completed']);
  });

  it('decides a pending application after a restart, from the ledger', async () => {
    const database = await createTestDatabase();
    const settings = { LEO_ROLE: 'adapters', MOCK_DECISION_DELAY_MS: '1500' };
    const first = await startTestApp(settings, { database });
    const prefix = first.config.queue.prefix;
    const engine = new EngineSide(prefix);
    try {
      const job = stepJob('register-f-tax', {
        'business.orgNumber': '199012119948',
        'business.expectedTurnover': 500000,
      });
      await engine.send('skatteverket', job);
      expect((await engine.waitFor(job.stepRunId))[0]?.result.outcome).toBe('pending');
      await first.close(); // the process stops before the decision is due
      const second = await startTestApp({ ...settings, QUEUE_PREFIX: prefix }, { database });
      try {
        const [, decision] = await engine.waitFor(job.stepRunId, 2);
        expect(decision?.result.outcome).toBe('completed');
        expect(decision?.attempt).toBe(1);
      } finally {
        await second.close();
      }
    } finally {
      await engine.close();
      await database.drop();
    }
  });
});

describe('the adapter SDK (createAgencyWorker)', () => {
  const prefix = testQueuePrefix();
  const connection = redisOptions(testRedisUrl());
  let engine: EngineSide;
  const logged: Array<{ level: string; fields: Record<string, unknown>; message: string }> = [];
  const log: AgencyWorkerLogger = {
    info: (fields, message) => void logged.push({ level: 'info', fields, message }),
    warn: (fields, message) => void logged.push({ level: 'warn', fields, message }),
    error: (fields, message) => void logged.push({ level: 'error', fields, message }),
  };
  let cancelled: StepCancelJob[] = [];
  const waiting: Array<() => void> = [];
  const release = (): void => {
    for (const resolve of waiting.splice(0)) resolve();
  };
  let abortedBy: unknown;

  const sdk = () =>
    createAgencyWorker({
      agency: 'testverket',
      connection,
      prefix,
      timeoutMs: 300,
      log,
      handlers: {
        echo: async (job) => ({
          outcome: 'completed',
          produced: { 'test.echo': job.facts['test.value'] ?? null },
        }),
        explode: async (job) => {
          throw new Error(`cannot handle ${JSON.stringify(job.facts['person.personalNumber'])}`);
        },
        hang: async (_job, { signal }) =>
          new Promise((_, reject) => {
            signal.addEventListener('abort', () => {
              abortedBy = signal.reason;
              reject(new Error('aborted'));
            });
          }),
        slow: async () => {
          await new Promise<void>((resolve) => waiting.push(resolve));
          return { outcome: 'completed', produced: {} };
        },
        malformed: async () => ({ outcome: 'done' }) as never,
      },
      onCancel: async (job) => {
        cancelled.push(job);
      },
    });
  let worker: ReturnType<typeof createAgencyWorker>;

  beforeAll(async () => {
    engine = new EngineSide(prefix);
    worker = sdk();
    await worker.worker.waitUntilReady();
  });
  afterAll(async () => {
    await worker.close();
    await engine.close();
  });

  it('refuses bad options before connecting', () => {
    expect(() => createAgencyWorker({ agency: 'Test Verket', connection, handlers: {} })).toThrow(
      /invalid agency code/,
    );
    expect(() =>
      createAgencyWorker({ agency: 'testverket', connection, handlers: {}, concurrency: 0 }),
    ).toThrow(/concurrency must be a positive integer/);
  });

  it('answers with the handler for the action, and an unknown action as a configuration fault', async () => {
    const job = stepJob('echo', { 'test.value': 42 });
    const unknown = stepJob('dance', {});
    await engine.send('testverket', job);
    await engine.send('testverket', unknown);
    expect((await engine.waitFor(job.stepRunId))[0]).toMatchObject({
      agency: 'testverket',
      attempt: 1,
      result: { outcome: 'completed', produced: { 'test.echo': 42 } },
    });
    expect((await engine.waitFor(unknown.stepRunId))[0]?.result).toMatchObject({
      outcome: 'retryable-error',
      code: 'unknown-action',
    });
  });

  it('turns a failing handler into a retryable adapter-error, without the fact values in the reason or the logs', async () => {
    const job = stepJob('explode', { 'person.personalNumber': '199012119948' });
    await engine.send('testverket', job);
    const [result] = await engine.waitFor(job.stepRunId);
    expect(result?.result).toEqual({
      outcome: 'retryable-error',
      code: 'adapter-error',
      reason: 'the adapter failed while handling explode',
    });
    const entry = logged.find((l) => l.fields.stepRunId === job.stepRunId);
    expect(entry).toMatchObject({
      level: 'error',
      fields: { errorName: 'Error', action: 'explode' },
    });
    expect(JSON.stringify(logged)).not.toContain('199012119948');
    expect(JSON.stringify(logged)).not.toContain('9012119948');
  });

  it('answers a handler past its time limit with retryable-error timeout, aborting its signal', async () => {
    const job = stepJob('hang', {});
    await engine.send('testverket', job);
    expect((await engine.waitFor(job.stepRunId))[0]?.result).toMatchObject({
      outcome: 'retryable-error',
      code: 'timeout',
    });
    expect(abortedBy).toBeInstanceOf(Error);
  });

  it('answers a handler that returns no outcome with an adapter-error', async () => {
    const job = stepJob('malformed', {});
    await engine.send('testverket', job);
    expect((await engine.waitFor(job.stepRunId))[0]?.result).toMatchObject({
      outcome: 'retryable-error',
      code: 'adapter-error',
    });
  });

  it('passes step.cancel to onCancel and stops the attempt in flight, which then answers nothing', async () => {
    const job = stepJob('slow', {});
    await engine.send('testverket', job);
    await waitUntil(
      async () =>
        (await engine.queue('testverket').getJobState(stepJobId(job.stepRunId, 1))) === 'active',
    );
    const cancel: StepCancelJob = {
      caseId: job.caseId,
      stepRunId: job.stepRunId,
      action: job.action,
      idempotencyKey: job.idempotencyKey,
      reason: 'cancelled',
    };
    cancelled = [];
    await engine.cancel('testverket', cancel);
    await waitUntil(async () => cancelled.length === 1);
    expect(cancelled).toEqual([cancel]);
    await waitUntil(
      async () =>
        (await engine.queue('testverket').getJobState(stepJobId(job.stepRunId, 1))) !== 'active',
    );
    release();
    await new Promise((r) => setTimeout(r, 200));
    expect(engine.results.filter((r) => r.data.stepRunId === job.stepRunId)).toEqual([]);
  });

  it('reports a later decision as another result for the same attempt', async () => {
    const stepRunId = randomUUID();
    const decision: StepResult = {
      stepRunId,
      attempt: 1,
      agency: 'testverket',
      result: { outcome: 'completed', produced: {}, reference: 'TV-1' },
      reportedAt: new Date().toISOString(),
    };
    await worker.report(decision);
    expect(await engine.waitFor(stepRunId)).toEqual([decision]);
    expect(engine.results.find((r) => r.data.stepRunId === stepRunId)?.fields).toEqual([
      'kind',
      'step.result',
      'body',
      JSON.stringify(decision),
    ]);
    await expect(worker.report({ ...decision, agency: 'bolagsverket' })).rejects.toThrow(
      /reports for testverket/,
    );
  });

  it('has the answer on the stream by the time the agency job completes (at least once)', async () => {
    const jobs = Array.from({ length: 5 }, (_, i) => stepJob('echo', { 'test.value': i }));
    await Promise.all(jobs.map((job) => engine.send('testverket', job)));
    for (const job of jobs) {
      const jobId = stepJobId(job.stepRunId, 1);
      await waitUntil(
        async () => (await engine.queue('testverket').getJobState(jobId)) === 'completed',
      );
      // Read afresh at once, not from the background reader: the entry is already there.
      const bodies = (await engine.entries('testverket')).map(([, fields]) =>
        parseResultEntry(fields),
      );
      expect(
        bodies.filter(
          (b) =>
            b.ok && b.entry.kind === 'step.result' && b.entry.result.stepRunId === job.stepRunId,
        ),
      ).toHaveLength(1);
    }
  });

  it('fails the agency job when the answer cannot be stored, so it is delivered again', async () => {
    const otherPrefix = testQueuePrefix();
    const failing = createAgencyWorker({
      agency: 'testverket',
      connection,
      prefix: otherPrefix,
      log,
      handlers: { echo: async () => ({ outcome: 'completed', produced: {} }) },
    });
    const side = new EngineSide(otherPrefix);
    try {
      await failing.worker.waitUntilReady();
      // The stream's key holds something else: every XADD fails (WRONGTYPE).
      await side.redis.set(side.streamOf('testverket'), 'not a stream');
      const job = stepJob('echo', {});
      const queue = side.queue('testverket');
      await queue.add(STEP_EXECUTE, job, {
        jobId: stepJobId(job.stepRunId, 1),
        attempts: 5,
        backoff: { type: 'fixed', delay: 300 },
      });
      await waitUntil(
        async () => (await queue.getJob(stepJobId(job.stepRunId, 1)))?.attemptsMade === 1,
      );
      expect(await queue.getJobState(stepJobId(job.stepRunId, 1))).not.toBe('completed');
      // Redis is itself again: the next delivery stores its answer and completes.
      await side.redis.del(side.streamOf('testverket'));
      expect((await side.waitFor(job.stepRunId))[0]?.result.outcome).toBe('completed');
      await waitUntil(
        async () => (await queue.getJobState(stepJobId(job.stepRunId, 1))) === 'completed',
      );
    } finally {
      await failing.close();
      await side.close();
    }
  });

  it('lets the jobs in flight finish and report when it closes', async () => {
    const other = sdk();
    await other.worker.waitUntilReady();
    const jobs = [stepJob('slow', {}), stepJob('slow', {})];
    for (const job of jobs) await engine.send('testverket', job);
    await waitUntil(async () => {
      const states = await Promise.all(
        jobs.map((j) => engine.queue('testverket').getJobState(stepJobId(j.stepRunId, 1))),
      );
      return states.every((s) => s === 'active');
    });
    const closing = Promise.all([other.close(), worker.close()]);
    await new Promise((r) => setTimeout(r, 100));
    release();
    await closing;
    for (const job of jobs) {
      expect((await engine.waitFor(job.stepRunId))[0]?.result.outcome).toBe('completed');
    }
    worker = sdk(); // for afterAll
  });
});
