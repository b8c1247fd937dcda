import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import request from 'supertest';
import { createAgencyWorker, type AgencyWorker } from '#agency-contract';
import { MockAgenciesService } from '../src/adapters/mock-agencies.service.js';
import { redisOptions } from '../src/queue/redis-connection.js';
import { sql as query, waitForCase, waitForStep, waitUntil } from './support/engine-harness.js';
import { scrape } from './support/metrics.js';
import { deleteAgencyUsers, startTestApp, testRedisUrl, type TestApp } from './support/test-env.js';

/**
 * A new life event tried end to end by an administrator, through the API only and with no
 * restart (decision 0023): an agency and its action added to the catalogue, the action's mock
 * configured as data, the life event published and run; a configuration fault shown to the
 * citizen as a delay and to the operator as an error, never as the agency's refusal; then the
 * agency switched to an external adapter, whose queue is an alert until one connects.
 */

const OWNER = '199012119948';
const AGENCY = 'jordbruksverket';
const ACTION = 'register-dog-owner';

const FACT_TYPES = [
  {
    key: 'dog.name',
    label: { sv: 'Hundens namn', en: "The dog's name" },
    sensitivity: 'public',
    source: 'citizen',
    schema: { type: 'string', minLength: 1, maxLength: 100 },
  },
  {
    key: 'dog.ownerRegistrationNumber',
    label: { sv: 'Ägarregistreringsnummer', en: 'Dog-owner registration number' },
    sensitivity: 'personal',
    source: 'produced',
    schema: { type: 'string', minLength: 1, maxLength: 100 },
  },
];

/** A mock whose register numbers fit the pattern a later test gives the fact. */
const FITTING = {
  requires: ['dog.name'],
  produce: { 'dog.ownerRegistrationNumber': { template: 'DOG-{digits:4}' } },
  decidedAfter: 'PT1S',
};

const MOCK = {
  requires: ['dog.name'],
  produce: { 'dog.ownerRegistrationNumber': { generate: 'reference' } },
  decidedAfter: 'PT1S',
};

function agency(adapter: 'mock' | 'external', mock?: object): Record<string, unknown> {
  return {
    code: AGENCY,
    name: { sv: 'Jordbruksverket', en: 'Swedish Board of Agriculture' },
    adapter,
    actions: [
      {
        name: ACTION,
        title: { sv: 'Registrera hundägare', en: 'Register as a dog owner' },
        produces: ['dog.ownerRegistrationNumber'],
        ...(mock ? { mock } : {}),
      },
    ],
    lookups: [],
  };
}

const LIFE_EVENT = {
  key: 'get-a-dog',
  version: 1,
  title: { sv: 'Skaffa hund', en: 'Get a dog' },
  description: { sv: 'Registrera dig som hundägare.', en: 'Register as a dog owner.' },
  inputs: ['person.personalNumber', 'dog.name'],
  steps: [
    {
      id: 'register-owner',
      agency: AGENCY,
      action: ACTION,
      kind: 'decision',
      needs: ['person.personalNumber', 'dog.name'],
      produces: ['dog.ownerRegistrationNumber'],
      // Two attempts only: a configuration fault must still never exhaust them.
      retry: {
        attempts: 2,
        backoff: {
          type: 'exponential',
          initialDelayMs: 300,
          maxDelayMs: 600,
          multiplier: 2,
          jitter: 0,
        },
      },
    },
  ],
};

interface StepView {
  stepId: string;
  state: string;
  delayed: boolean;
  agencyReference: string | null;
}

describe('a life event added, mocked and switched through the admin API, with no restart', () => {
  let leo: TestApp;
  let adminToken = '';
  let citizenToken = '';
  let external: AgencyWorker | undefined;
  const http = (): Parameters<typeof request>[0] =>
    leo.app.getHttpServer() as Parameters<typeof request>[0];
  const admin = {
    get: (url: string) => request(http()).get(url).set('Authorization', adminToken),
    put: (url: string, body: object) =>
      request(http()).put(url).set('Authorization', adminToken).send(body),
    post: (url: string, body: object = {}) =>
      request(http()).post(url).set('Authorization', adminToken).send(body),
  };
  const citizen = {
    get: (url: string) => request(http()).get(url).set('Authorization', citizenToken),
    post: (url: string, body: object) =>
      request(http()).post(url).set('Authorization', citizenToken).send(body),
  };
  const sql = <T extends import('pg').QueryResultRow>(text: string, values: unknown[] = []) =>
    query<T>(leo.database, text, values);

  async function token(body: Record<string, string>): Promise<string> {
    const response = await request(http()).post('/v1/dev/token').send(body).expect(200);
    return `Bearer ${(response.body as { accessToken: string }).accessToken}`;
  }

  /** Opens and submits a case of get-a-dog, as a citizen front-end does. */
  async function submitCase(dogName: string): Promise<string> {
    const opened = await citizen
      .post('/v1/cases', { lifeEvent: 'get-a-dog', answers: { 'dog.name': dogName } })
      .set('Prefer', 'wait=10')
      .expect(201);
    const caseId = (opened.body as { id: string }).id;
    const preview = await citizen.get(`/v1/cases/${caseId}/preview`).expect(200);
    await citizen
      .post(`/v1/cases/${caseId}/submit`, {
        previewChecksum: (preview.body as { checksum: string }).checksum,
      })
      .expect(202);
    return caseId;
  }

  async function step(caseId: string): Promise<StepView | undefined> {
    const view = await citizen.get(`/v1/cases/${caseId}`).expect(200);
    return (view.body as { steps: StepView[] }).steps[0];
  }

  async function producedFact(caseId: string) {
    return sql<{ value: unknown; source: string; agency: string | null }>(
      `SELECT value, source, agency FROM fact_records
        WHERE case_id = $1 AND fact_key = 'dog.ownerRegistrationNumber'`,
      [caseId],
    );
  }

  beforeAll(async () => {
    leo = await startTestApp({
      LEO_ROLE: 'all',
      MOCK_DECISION_DELAY_MS: '0',
      MOCK_AGENCY_FAILURE_RATE: '0',
      MOCK_REJECTION_RATE: '0',
      LEO_AGENCY_PICKUP_ALERT_MS: '1000',
    });
    adminToken = await token({ role: 'admin', subject: 'admin-anna' });
    citizenToken = await token({ role: 'citizen', personalNumber: OWNER });
  });
  afterAll(async () => {
    await external?.close();
    await leo.close();
    await deleteAgencyUsers(leo.config.queue.prefix);
  });

  it('refuses to publish a step whose action nobody serves, naming the step and the action', async () => {
    for (const fact of FACT_TYPES)
      await admin.put(`/v1/admin/fact-types/${fact.key}`, fact).expect(200);
    await admin.put(`/v1/admin/agencies/${AGENCY}`, agency('mock')).expect(200);
    const service = await admin.get(`/v1/admin/agencies/${AGENCY}/service`).expect(200);
    expect(service.body).toMatchObject({ actions: [{ name: ACTION, servedBy: 'nobody' }] });
    await admin.get('/v1/admin/agencies/nowhere/service').expect(404);

    const draft = await admin.post('/v1/admin/life-events', LIFE_EVENT).expect(201);
    expect((draft.body as { diagnostics: unknown[] }).diagnostics).toContainEqual(
      expect.objectContaining({
        severity: 'error',
        code: 'action-not-served',
        path: '/steps/0/action',
        message: expect.stringContaining(`step register-owner: nobody serves ${AGENCY}/${ACTION}`),
      }),
    );
    const refused = await admin.post('/v1/admin/life-events/get-a-dog/draft/publish').expect(422);
    expect(refused.body).toMatchObject({ code: 'definition-invalid' });

    // A mock that reads a fact the step does not send is refused too.
    await admin
      .put(`/v1/admin/agencies/${AGENCY}`, agency('mock', { ...MOCK, requires: ['person.name'] }))
      .expect(200);
    const unsent = await admin.get('/v1/admin/life-events/get-a-dog/draft').expect(200);
    expect((unsent.body as { diagnostics: unknown[] }).diagnostics).toContainEqual(
      expect.objectContaining({ code: 'mock-reads-unsent-fact', path: '/steps/0/needs' }),
    );
  });

  it('refuses a mock that is not one, naming the field, and keeps the entry as it was', async () => {
    const before = (await admin.get(`/v1/admin/agencies/${AGENCY}`).expect(200)).body as {
      revision: number;
    };
    const bad = await admin
      .put(
        `/v1/admin/agencies/${AGENCY}`,
        agency('mock', {
          ...MOCK,
          latencyMs: 3_600_000,
          refusal: { rate: 2, code: 'x', reason: '' },
        }),
      )
      .expect(400);
    const paths = (bad.body as { errors: Array<{ path: string }> }).errors.map((e) => e.path);
    expect(paths).toEqual(
      expect.arrayContaining([
        '/actions/0/mock/latencyMs',
        '/actions/0/mock/refusal/rate',
        '/actions/0/mock/refusal/code',
        '/actions/0/mock/refusal/reason',
      ]),
    );
    const after = (await admin.get(`/v1/admin/agencies/${AGENCY}`).expect(200)).body as {
      revision: number;
    };
    expect(after.revision).toBe(before.revision);
  });

  it('serves the configured mock at once and runs a case to completion', async () => {
    await admin.put(`/v1/admin/agencies/${AGENCY}`, agency('mock', MOCK)).expect(200);
    await admin.post('/v1/admin/life-events/get-a-dog/draft/publish').expect(200);
    const mocks = leo.app.get(MockAgenciesService);
    await waitUntil(async () => Promise.resolve(mocks.worker(AGENCY) !== undefined));
    const service = await admin.get(`/v1/admin/agencies/${AGENCY}/service`).expect(200);
    expect(service.body).toMatchObject({
      adapter: 'mock',
      actions: [{ name: ACTION, servedBy: 'configured-mock' }],
      queue: { unserved: false },
    });

    const caseId = await submitCase('Vira');
    // Decided a second after it was received: pending first, then granted by the poller.
    await waitForCase(leo.database, caseId, ['completed']);
    const events = await sql<{ type: string }>(
      'SELECT type FROM case_events WHERE case_id = $1 ORDER BY seq',
      [caseId],
    );
    expect(events.map((e) => e.type)).toEqual(
      expect.arrayContaining(['step-awaiting-decision', 'step-completed', 'case-completed']),
    );
    const view = await step(caseId);
    expect(view?.agencyReference).toMatch(/^JOR-\d{4}-[0-9A-F]{10}$/);
    expect(await producedFact(caseId)).toEqual([
      { value: view?.agencyReference, source: 'agency', agency: AGENCY },
    ]);
  });

  it('shows an action the mock cannot do as delayed, never refused, and completes once it is configured', async () => {
    // The administrator drops the action's mock after publishing: a configuration fault.
    await admin.put(`/v1/admin/agencies/${AGENCY}`, agency('mock')).expect(200);
    const before = (await scrape(leo.app)).value('leo_step_configuration_faults_total', {
      agency: AGENCY,
    });
    // The mocks follow the catalogue every 2 s; a round now, rather than a wait for one.
    await leo.app.get(MockAgenciesService).bind();
    const caseId = await submitCase('Ludde');
    await waitUntil(async () => {
      const rows = await sql<{ n: string }>(
        `SELECT count(*) AS n FROM case_events WHERE case_id = $1 AND type = 'step-configuration-fault'`,
        [caseId],
      );
      return Number(rows[0]?.n) >= 3;
    });
    // Past its two attempts, and still neither failed nor refused: delayed.
    const held = await sql<{ state: string; attempt: number; last_error: string }>(
      'SELECT state, attempt, last_error FROM step_runs WHERE case_id = $1',
      [caseId],
    );
    expect(held[0]?.attempt).toBeGreaterThan(2);
    expect(held[0]?.last_error).toBe('unknown-action');
    expect(['ready', 'dispatched']).toContain(held[0]?.state);
    expect((await step(caseId))?.delayed).toBe(true);
    const status = await sql<{ status: string }>('SELECT status FROM cases WHERE id = $1', [
      caseId,
    ]);
    expect(status).toEqual([{ status: 'running' }]);
    const refusals = await sql<{ n: string }>(
      `SELECT count(*) AS n FROM case_events WHERE case_id = $1 AND type IN ('step-rejected', 'step-failed')`,
      [caseId],
    );
    expect(refusals).toEqual([{ n: '0' }]);
    expect(
      (await scrape(leo.app)).value('leo_step_configuration_faults_total', { agency: AGENCY }),
    ).toBeGreaterThan(before);

    // Configured again: the next retry is served, and the case completes.
    await admin.put(`/v1/admin/agencies/${AGENCY}`, agency('mock', MOCK)).expect(200);
    await waitForCase(leo.database, caseId, ['completed'], 30_000);
    expect((await step(caseId))?.delayed).toBe(false);
  });

  it('treats values that no longer fit their fact as a configuration fault, and refuses such a mock when it is saved', async () => {
    // The register number gets a format of its own after the mock was configured.
    const [, produced] = FACT_TYPES;
    const patterned = {
      ...produced,
      schema: { type: 'string', pattern: '^DOG-[0-9]{4}$' },
    };
    await admin.put('/v1/admin/fact-types/dog.ownerRegistrationNumber', patterned).expect(200);
    await leo.app.get(MockAgenciesService).bind(); // as the next round would, every 2 s
    const caseId = await submitCase('Tass');
    await waitUntil(async () => {
      const rows = await sql<{ n: string }>(
        `SELECT count(*) AS n FROM case_events
          WHERE case_id = $1 AND type = 'step-configuration-fault'
            AND data->>'code' = 'adapter-misconfigured'`,
        [caseId],
      );
      return Number(rows[0]?.n) >= 1;
    });
    expect((await step(caseId))?.delayed).toBe(true);

    // The same mock saved again is refused, naming the rule; one that fits is taken.
    const refused = await admin
      .put(`/v1/admin/agencies/${AGENCY}`, agency('mock', MOCK))
      .expect(422);
    expect(refused.body).toMatchObject({
      code: 'mock-values-invalid',
      errors: [
        expect.objectContaining({ path: '/actions/0/mock/produce/dog.ownerRegistrationNumber' }),
      ],
    });
    await admin.put(`/v1/admin/agencies/${AGENCY}`, agency('mock', FITTING)).expect(200);
    await waitForCase(leo.database, caseId, ['completed'], 30_000);
    expect(await producedFact(caseId)).toEqual([
      { value: expect.stringMatching(/^DOG-\d{4}$/), source: 'agency', agency: AGENCY },
    ]);
  });

  it('lets the mock go when the agency switches to an external adapter, alerts while nobody serves it, and runs the next case through the adapter', async () => {
    // An application the mock has answered pending when the agency switches: the mock still
    // decides it, as it promised, though its worker is gone.
    const mocks = leo.app.get(MockAgenciesService);
    await admin
      .put(`/v1/admin/agencies/${AGENCY}`, agency('mock', { ...FITTING, decidedAfter: 'PT4S' }))
      .expect(200);
    await mocks.bind();
    const pendingCase = await submitCase('Pluto');
    await waitForStep(leo.database, pendingCase, 'register-owner', 'awaiting-decision');

    await admin.put(`/v1/admin/agencies/${AGENCY}`, agency('external')).expect(200);
    await mocks.bind();
    expect(mocks.worker(AGENCY)).toBeUndefined();
    await waitForCase(leo.database, pendingCase, ['completed'], 30_000);
    expect(await producedFact(pendingCase)).toEqual([
      { value: expect.stringMatching(/^DOG-\d{4}$/), source: 'agency', agency: AGENCY },
    ]);

    const caseId = await submitCase('Sixten');
    // The administrator's view of the agency says the same as the alert.
    await waitUntil(async () => {
      const service = await admin.get(`/v1/admin/agencies/${AGENCY}/service`).expect(200);
      return (service.body as { queue: { unserved: boolean } }).queue.unserved;
    });
    expect(
      (await admin.get(`/v1/admin/agencies/${AGENCY}/service`).expect(200)).body,
    ).toMatchObject({
      agency: AGENCY,
      adapter: 'external',
      actions: [{ name: ACTION, servedBy: 'external-adapter' }],
      queue: { name: `agency.${AGENCY}`, workers: 0, waiting: 1, unserved: true },
      standingCredentials: 0,
    });
    await waitUntil(
      async () =>
        (await scrape(leo.app)).value('leo_agency_queue_unserved', { agency: AGENCY }) === 1,
    );

    // The agency's own adapter, with the credential leo issues it.
    const issued = await admin.post(`/v1/admin/agencies/${AGENCY}/credentials`, {
      label: 'test adapter',
    });
    expect(issued.status).toBe(201);
    const credential = issued.body as { username: string; password: string; prefix: string };
    external = createAgencyWorker({
      agency: AGENCY,
      connection: {
        ...redisOptions(testRedisUrl()),
        username: credential.username,
        password: credential.password,
        maxRetriesPerRequest: null,
      },
      prefix: credential.prefix,
      handlers: {
        [ACTION]: (job) =>
          Promise.resolve({
            outcome: 'completed',
            // The register number's format, as the fact type now has it.
            produced: {
              'dog.ownerRegistrationNumber': `DOG-${String(job.attempt).padStart(4, '0')}`,
            },
            reference: 'EXT-1',
          }),
      },
      log: { info: () => undefined, warn: () => undefined, error: () => undefined },
    });
    await waitForCase(leo.database, caseId, ['completed'], 30_000);
    expect(await producedFact(caseId)).toEqual([
      { value: 'DOG-0001', source: 'agency', agency: AGENCY },
    ]);
    await waitUntil(
      async () =>
        (await scrape(leo.app)).value('leo_agency_queue_unserved', { agency: AGENCY }) === 0,
    );
  });
});
