import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Worker, UnrecoverableError } from 'bullmq';
import request from 'supertest';
import { STEP_EXECUTE, agencyQueueName, type AgencyJobs } from '#agency-contract';
import { queuedAgencies, type Agency } from '#workflow';
import { EngineRepository } from '../src/engine/engine.repository.js';
import { EngineService } from '../src/engine/engine.service.js';
import { HousekeepingRepository } from '../src/engine/housekeeping.repository.js';
import { QueueService } from '../src/queue/queue.service.js';
import { redisOptions } from '../src/queue/redis-connection.js';
import {
  openResolvedCase,
  seedRegisterFacts,
  sql,
  submitWithConsent,
  waitForCase,
  waitForStep,
} from './support/engine-harness.js';
import { scrape, scrapeUntil, type Exposition } from './support/metrics.js';
import { startTestApp, type TestApp } from './support/test-env.js';

/** The administrator these tests act as. */
const ADMIN = 'admin-test';
const BY_ADMIN = { role: 'admin', actor: ADMIN } as const;

const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/i;
/** Ten or twelve digits, with or without a separator: what a personnummer looks like. */
const PERSONAL_NUMBER = /(?:^|\D)(?:\d{2})?\d{6}[-+]?\d{4}(?:\D|$)/;

type Http = Parameters<typeof request>[0];
const http = (leo: TestApp): Http => leo.app.getHttpServer() as Http;

async function token(leo: TestApp, body: Record<string, string>): Promise<string> {
  const response = await request(http(leo)).post('/v1/dev/token').send(body).expect(200);
  return (response.body as { accessToken: string }).accessToken;
}

/** Every label value of a scrape, for the checks that none is personal data or an id. */
function labelValues(metrics: Exposition): string[] {
  return metrics.samples.flatMap((s) => Object.values(s.labels));
}

describe('/metrics', () => {
  let all: TestApp;

  beforeAll(async () => {
    all = await startTestApp({
      LEO_ROLE: 'all',
      MOCK_DECISION_DELAY_MS: '0',
      MOCK_AGENCY_FAILURE_RATE: '0',
      MOCK_REJECTION_RATE: '0',
    });
  });
  afterAll(async () => {
    await all.close();
  });

  it('exposes every family with its type, in the Prometheus text format', async () => {
    const metrics = await scrape(all.app);
    expect(metrics.contentType).toBe('text/plain; version=0.0.4; charset=utf-8');
    const expected: Record<string, string> = {
      leo_info: 'gauge',
      leo_cases_started_total: 'counter',
      leo_cases_finished_total: 'counter',
      leo_case_duration_seconds: 'histogram',
      leo_steps_finished_total: 'counter',
      leo_step_duration_seconds: 'histogram',
      leo_result_apply_duration_seconds: 'histogram',
      leo_result_apply_lag_seconds: 'histogram',
      leo_db_batch_size: 'histogram',
      leo_case_state_source_total: 'counter',
      leo_case_writes_refused_total: 'counter',
      leo_case_turn_inputs: 'histogram',
      leo_http_request_duration_seconds: 'histogram',
      leo_queue_jobs: 'gauge',
      leo_queue_oldest_waiting_job_age_seconds: 'gauge',
      leo_outbox_unsent_messages: 'gauge',
      leo_outbox_oldest_unsent_age_seconds: 'gauge',
      leo_cases_unfinished: 'gauge',
      leo_steps_overdue: 'gauge',
      leo_metrics_collector_up: 'gauge',
      // Process metrics, prefixed too.
      leo_process_cpu_user_seconds_total: 'counter',
      leo_process_resident_memory_bytes: 'gauge',
      leo_nodejs_eventloop_lag_seconds: 'gauge',
    };
    for (const [name, type] of Object.entries(expected)) {
      expect([name, metrics.types.get(name)]).toEqual([name, type]);
    }
    for (const name of metrics.types.keys()) expect(name).toMatch(/^leo_[a-z0-9_]+$/);
    expect(metrics.value('leo_info', { role: 'all' })).toBe(1);
    expect(metrics.value('leo_metrics_collector_up', { collector: 'queues' })).toBe(1);
    expect(metrics.value('leo_metrics_collector_up', { collector: 'database' })).toBe(1);
    expect(metrics.value('leo_process_resident_memory_bytes')).toBeGreaterThan(0);
  });

  it('counts cases and steps run end to end, by life event, agency, action and outcome', async () => {
    const before = await scrape(all.app);
    const engine = all.app.get(EngineService);
    const repository = all.app.get(EngineRepository);
    const cases: string[] = [];
    for (let i = 0; i < 3; i += 1) {
      cases.push((await openResolvedCase(engine, repository)).caseId);
    }
    // Opened, never submitted: not started, and cancelling it is not a finish.
    const abandoned = await openResolvedCase(engine, repository);
    await engine.cancelCase(abandoned.caseId, 'changed my mind', BY_ADMIN);
    await Promise.all(cases.map((id) => submitWithConsent(engine, id)));
    for (const id of cases) await waitForCase(all.database, id, ['completed']);
    // One process changed these cases from start to end: after the first change, every turn
    // found its case kept in memory, and no write was refused.
    const turns = await scrape(all.app);
    const grew = (name: string, labels: Record<string, string> = {}): number =>
      turns.value(name, labels) - before.value(name, labels);
    expect(grew('leo_case_state_source_total', { source: 'kept' })).toBeGreaterThanOrEqual(
      cases.length * 5,
    );
    expect(grew('leo_case_writes_refused_total')).toBe(0);

    // What Postgres says happened to these cases' steps is what the counters must say.
    const steps = await sql<{
      agency: string;
      action: string;
      state: string;
      n: number;
      timed: number;
    }>(
      all.database,
      `SELECT agency, action, state, count(*)::int AS n, count(ready_at)::int AS timed
       FROM step_runs WHERE case_id = ANY($1::uuid[]) GROUP BY agency, action, state`,
      [cases],
    );
    expect(steps.map((s) => s.state).sort()).toEqual(
      expect.arrayContaining(['completed', 'skipped']),
    );
    const dispatched = steps.filter((s) => s.state === 'completed').reduce((n, s) => n + s.n, 0);
    expect(dispatched).toBe(15); // five agency steps of the sole trader's case, three times
    // Each new citizen's name and address were looked up first (the abandoned case's too).
    const lookups = await sql<{ agency: string; n: number }>(
      all.database,
      `SELECT agency, count(*)::int AS n FROM lookups
        WHERE case_id = ANY($1::uuid[]) AND state = 'answered' GROUP BY agency`,
      [[...cases, abandoned.caseId]],
    );
    const lookedUp = (agency?: string): number =>
      lookups
        .filter((l) => agency === undefined || l.agency === agency)
        .reduce((n, l) => n + l.n, 0);
    expect(lookedUp()).toBe(4);
    const results = dispatched + lookedUp();

    const delta = (m: Exposition, name: string, labels: Record<string, string>): number =>
      m.value(name, labels) - before.value(name, labels);
    const lifeEvent = { life_event: 'start-business' };
    const after = await scrapeUntil(
      all.app,
      (m) =>
        delta(m, 'leo_cases_finished_total', lifeEvent) >= 3 &&
        delta(m, 'leo_result_apply_duration_seconds_count', { outcome: 'applied' }) >= results,
      (m) =>
        `finished ${delta(m, 'leo_cases_finished_total', lifeEvent)}, applied ${delta(m, 'leo_result_apply_duration_seconds_count', { outcome: 'applied' })}`,
    );

    expect(delta(after, 'leo_cases_started_total', lifeEvent)).toBe(3);
    expect(delta(after, 'leo_cases_finished_total', { ...lifeEvent, outcome: 'completed' })).toBe(
      3,
    );
    expect(delta(after, 'leo_cases_finished_total', { ...lifeEvent, outcome: 'cancelled' })).toBe(
      0,
    );
    expect(
      delta(after, 'leo_case_duration_seconds_count', { ...lifeEvent, outcome: 'completed' }),
    ).toBe(3);
    for (const s of steps) {
      const labels = { agency: s.agency, action: s.action, outcome: s.state };
      expect([labels, delta(after, 'leo_steps_finished_total', labels)]).toEqual([labels, s.n]);
      expect([labels, delta(after, 'leo_step_duration_seconds_count', labels)]).toEqual([
        labels,
        s.timed,
      ]);
    }
    // Skipped steps never became ready: counted as finished, not timed.
    const skipped = steps.filter((s) => s.state === 'skipped');
    expect(skipped.length).toBeGreaterThan(0);
    for (const s of skipped) expect(s.timed).toBe(0);

    // One result per dispatched step (decisions are immediate here) and look-up, applied once.
    expect(delta(after, 'leo_result_apply_duration_seconds_count', { outcome: 'applied' })).toBe(
      results,
    );
    for (const agency of new Set(
      steps.filter((s) => s.state === 'completed').map((s) => s.agency),
    )) {
      const completed = steps
        .filter((s) => s.agency === agency && s.state === 'completed')
        .reduce((n, s) => n + s.n, 0);
      expect([agency, delta(after, 'leo_result_apply_lag_seconds_count', { agency })]).toEqual([
        agency,
        completed + lookedUp(agency),
      ]);
    }
    // Buckets are cumulative: the +Inf bucket holds every observation.
    expect(
      after.value('leo_step_duration_seconds_bucket', {
        agency: 'bolagsverket',
        action: 'register-sole-trader',
        outcome: 'completed',
        le: '+Inf',
      }),
    ).toBe(
      after.value('leo_step_duration_seconds_count', {
        agency: 'bolagsverket',
        action: 'register-sole-trader',
        outcome: 'completed',
      }),
    );
  });

  it('labels HTTP requests by route template and status class, never by raw path', async () => {
    const admin = await token(all, { role: 'admin', subject: 'ops-metrics' });
    const id = '3f0c9a4e-0d1b-4c8e-9a57-5b2d1e0c7f11';
    await request(http(all))
      .get(`/v1/admin/cases/${id}`)
      .set('Authorization', `Bearer ${admin}`)
      .expect(404);
    await request(http(all)).get(`/v1/admin/cases/${id}`).expect(401);
    await request(http(all)).get('/v1/no-such-thing/199012119948').expect(404);
    await request(http(all)).get('/health/live').expect(200);

    const route = (m: Exposition, labels: Record<string, string>): number =>
      m.value('leo_http_request_duration_seconds_count', labels);
    const metrics = await scrapeUntil(
      all.app,
      (m) => route(m, { route: 'unmatched', status_class: '4xx' }) >= 1,
      () => 'the 404 was not counted',
    );
    expect(
      route(metrics, { method: 'GET', route: '/v1/admin/cases/:id', status_class: '4xx' }),
    ).toBe(2);
    expect(
      route(metrics, { method: 'POST', route: '/v1/dev/token', status_class: '2xx' }),
    ).toBeGreaterThanOrEqual(1);
    expect(route(metrics, { method: 'GET', route: 'unmatched', status_class: '4xx' })).toBe(1);
    const routes = new Set(
      metrics.samples
        .filter((s) => s.name === 'leo_http_request_duration_seconds_count')
        .map((s) => s.labels.route),
    );
    // Probes and scrapes are not measured.
    for (const r of routes) expect(r).not.toMatch(/^\/(metrics|health)/);
    expect([...routes].filter((r) => r?.includes(id))).toEqual([]);
  });

  it('never has an id or a personal identity number in a label value', async () => {
    const metrics = await scrape(all.app);
    const values = labelValues(metrics);
    expect(values.length).toBeGreaterThan(100);
    expect(values.filter((v) => UUID.test(v))).toEqual([]);
    expect(values.filter((v) => PERSONAL_NUMBER.test(v))).toEqual([]);
    expect(values.filter((v) => v.includes('metrics-'))).toEqual([]); // subject ids
  });
});

describe('/metrics on roles without workers', () => {
  let api: TestApp;
  let engineOnly: TestApp;
  let adapters: TestApp;
  let caseEngine: TestApp | undefined;

  beforeAll(async () => {
    // No engine and no adapters: what is put on a queue or in the outbox stays there.
    api = await startTestApp({ LEO_ROLE: 'api' });
    // The other roles on databases and queues of their own, in the same process.
    engineOnly = await startTestApp({ LEO_ROLE: 'engine' });
    adapters = await startTestApp({ LEO_ROLE: 'adapters' });
  });
  afterAll(async () => {
    await caseEngine?.close();
    await adapters.close();
    await engineOnly.close();
    await api.close();
  });

  it('reports the jobs actually on each queue, and how long the oldest has waited', async () => {
    const queues = api.app.get(QueueService);
    const transport = queues.queue<AgencyJobs>(agencyQueueName('transportstyrelsen'));
    const job = (n: number): AgencyJobs[typeof STEP_EXECUTE] => ({
      caseId: `c${String(n)}`,
      stepRunId: `s${String(n)}`,
      stepId: 'register-vehicle',
      action: 'register-vehicle',
      attempt: 1,
      idempotencyKey: `s${String(n)}`,
      facts: {},
    });
    await transport.add(STEP_EXECUTE, job(1), { jobId: 'old', timestamp: Date.now() - 90_000 });
    await transport.add(STEP_EXECUTE, job(2), { jobId: 'new' });
    await transport.add(STEP_EXECUTE, job(3), { jobId: 'later', delay: 3_600_000 });

    // A job that failed, on a queue of its own.
    const pension = agencyQueueName('pensionsmyndigheten');
    await queues.queue<AgencyJobs>(pension).add(STEP_EXECUTE, job(4), { jobId: 'doomed' });
    const failing = new Worker(
      pension,
      async () => {
        throw new UnrecoverableError('refused');
      },
      { connection: redisOptions(api.config.redis.url), prefix: api.config.queue.prefix },
    );
    const failed = new Promise<void>((resolve) => {
      failing.once('failed', () => {
        resolve();
      });
    });
    await failed;
    await failing.close();

    const jobs = (m: Exposition, queue: string, state: string): number =>
      m.value('leo_queue_jobs', { queue, state });
    const metrics = await scrapeUntil(
      api.app,
      (m) =>
        jobs(m, 'agency.transportstyrelsen', 'waiting') === 2 &&
        jobs(m, 'agency.pensionsmyndigheten', 'failed') === 1,
      (m) =>
        `transportstyrelsen waiting ${jobs(m, 'agency.transportstyrelsen', 'waiting')}, pensionsmyndigheten failed ${jobs(m, 'agency.pensionsmyndigheten', 'failed')}`,
    );
    expect(jobs(metrics, 'agency.transportstyrelsen', 'delayed')).toBe(1);
    expect(jobs(metrics, 'agency.transportstyrelsen', 'active')).toBe(0);
    expect(jobs(metrics, 'agency.pensionsmyndigheten', 'waiting')).toBe(0);
    const oldest = (queue: string): number =>
      metrics.value('leo_queue_oldest_waiting_job_age_seconds', { queue });
    expect(oldest('agency.transportstyrelsen')).toBeGreaterThanOrEqual(90);
    expect(oldest('agency.transportstyrelsen')).toBeLessThan(3_600);
    expect(oldest('agency.pensionsmyndigheten')).toBe(0);
    // Every seeded agency's queue is watched, and its results stream.
    const watched = new Set(
      metrics.samples.filter((s) => s.name === 'leo_queue_jobs').map((s) => s.labels.queue),
    );
    const entries = await sql<{ key: string; body: Agency }>(
      api.database,
      "SELECT key, body FROM catalogue_entries WHERE kind = 'agency'",
    );
    expect(entries.length).toBe(7);
    // Each municipality onboarded has a queue and a stream of its own (decision 0024).
    const agencies = queuedAgencies(entries.map((e) => e.body)).map((a) => ({ key: a.code }));
    expect(agencies.map((a) => a.key)).toContain('kommun-0180');
    expect([...watched].sort()).toEqual(agencies.map((a) => `agency.${a.key}`).sort());
    const streams = new Set(
      metrics.samples
        .filter((s) => s.name === 'leo_results_stream_entries')
        .map((s) => s.labels.agency),
    );
    expect([...streams].sort()).toEqual(agencies.map((a) => a.key).sort());
  });

  it('reports unsent outbox rows and the age of the oldest', async () => {
    await sql(
      api.database,
      `INSERT INTO outbox (queue, job_name, job_id, payload, created_at)
       VALUES ('agency.kommun-0180', 'step.execute', 'metrics-test.1', '{}', now() - interval '2 minutes')`,
    );
    const metrics = await scrapeUntil(
      api.app,
      (m) => m.value('leo_outbox_unsent_messages') >= 1,
      (m) => `unsent ${m.value('leo_outbox_unsent_messages')}`,
    );
    const [unsent] = await sql<{ n: number }>(
      api.database,
      'SELECT count(*)::int AS n FROM outbox WHERE sent_at IS NULL',
    );
    expect(metrics.value('leo_outbox_unsent_messages')).toBe(unsent?.n);
    expect(metrics.value('leo_outbox_oldest_unsent_age_seconds')).toBeGreaterThanOrEqual(120);
    expect(metrics.value('leo_outbox_oldest_unsent_age_seconds')).toBeLessThan(3_600);
  });

  it('reports unfinished cases by status and overdue steps by agency', async () => {
    // The case is opened and submitted through the api replica; an engine replica on its
    // database owns the case's partition and makes the changes (decision 0020).
    caseEngine = await startTestApp(
      { LEO_ROLE: 'engine', QUEUE_PREFIX: api.config.queue.prefix },
      { database: api.database },
    );
    const engine = api.app.get(EngineService);
    const repository = api.app.get(EngineRepository);
    // The api role alone has no agency answering look-ups: the register facts are on file.
    const subjectId = await repository.createSubject();
    await seedRegisterFacts(repository, api.app.get(HousekeepingRepository), subjectId);
    const { caseId } = await openResolvedCase(engine, repository, { subjectId });
    await submitWithConsent(engine, caseId);
    const opened = { id: caseId };
    await waitForStep(api.database, opened.id, 'register-sole-trader', 'dispatched');
    await sql(
      api.database,
      "UPDATE step_runs SET overdue = true, deadline_at = now() - interval '1 hour' WHERE case_id = $1 AND step_id = 'register-sole-trader'",
      [opened.id],
    );
    const metrics = await scrapeUntil(
      api.app,
      (m) => m.value('leo_steps_overdue', { agency: 'bolagsverket' }) === 1,
      (m) => `overdue ${m.value('leo_steps_overdue', { agency: 'bolagsverket' })}`,
    );
    const [running] = await sql<{ n: number }>(
      api.database,
      "SELECT count(*)::int AS n FROM cases WHERE status = 'running'",
    );
    expect(running?.n).toBeGreaterThanOrEqual(1);
    expect(metrics.value('leo_cases_unfinished', { status: 'running' })).toBe(running?.n);
    expect(metrics.value('leo_cases_unfinished', { status: 'action-required' })).toBe(0);
    // The engine that made the change counted the case started; the api replica did not.
    const engineMetrics = await scrape(caseEngine.app);
    expect(engineMetrics.value('leo_cases_started_total')).toBe(1);
    await caseEngine.close();
    caseEngine = undefined;
  });

  it('is served by every role, each from its own registry', async () => {
    const apiMetrics = await scrape(api.app);
    expect(apiMetrics.value('leo_info', { role: 'api' })).toBe(1);
    expect(apiMetrics.value('leo_info')).toBe(1);
    // The api replica took a case's submit above, but its owning engine made the change.
    expect(apiMetrics.value('leo_cases_started_total')).toBe(0);
    for (const [other, role] of [
      [engineOnly, 'engine'],
      [adapters, 'adapters'],
    ] as const) {
      const metrics = await scrape(other.app);
      expect([role, metrics.value('leo_info', { role }), metrics.value('leo_info')]).toEqual([
        role,
        1,
        1,
      ]);
      expect(metrics.value('leo_cases_started_total')).toBe(0);
      expect(metrics.types.get('leo_queue_jobs')).toBe('gauge');
    }
  });

  it('keeps serving when a source fails, and says which', async () => {
    await sql(engineOnly.database, 'ALTER TABLE outbox RENAME TO outbox_away');
    try {
      const metrics = await scrapeUntil(
        engineOnly.app,
        (m) => m.value('leo_metrics_collector_up', { collector: 'database' }) === 0,
        () => 'the database collector did not report its failure',
      );
      expect(metrics.value('leo_outbox_unsent_messages')).toBeNaN();
      expect(metrics.value('leo_outbox_oldest_unsent_age_seconds')).toBeNaN();
      expect(metrics.samples.filter((s) => s.name === 'leo_cases_unfinished')).toEqual([]);
      expect(metrics.value('leo_metrics_collector_up', { collector: 'queues' })).toBe(1);
      expect(
        metrics.value('leo_queue_jobs', { queue: 'agency.bolagsverket', state: 'waiting' }),
      ).toBe(0);
      expect(metrics.value('leo_process_resident_memory_bytes')).toBeGreaterThan(0);
    } finally {
      await sql(engineOnly.database, 'ALTER TABLE outbox_away RENAME TO outbox');
    }
    const recovered = await scrapeUntil(
      engineOnly.app,
      (m) => m.value('leo_metrics_collector_up', { collector: 'database' }) === 1,
      () => 'the database collector did not recover',
    );
    expect(recovered.value('leo_outbox_unsent_messages')).toBe(0);
    expect(recovered.value('leo_cases_unfinished', { status: 'running' })).toBe(0);
  });
});
