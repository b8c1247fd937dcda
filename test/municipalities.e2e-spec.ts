import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Redis } from 'ioredis';
import request from 'supertest';
import {
  STEP_RESULT,
  agencyQueueName,
  agencyResultsStreamKey,
  resultEntryFields,
} from '#agency-contract';
import { MockAgenciesService } from '../src/adapters/mock-agencies.service.js';
import { redisOptions } from '../src/queue/redis-connection.js';
import { sql as query, waitForCase, waitUntil } from './support/engine-harness.js';
import { scrape } from './support/metrics.js';
import { deleteAgencyUsers, startTestApp, testRedisUrl, type TestApp } from './support/test-env.js';

/**
 * The municipalities as separate parties (decision 0024): a life event names "the municipality"
 * once, and each step goes to the one municipality its municipality code names, on that
 * municipality's own queue, answered on its own stream, with a credential of its own. A step to a
 * municipality not onboarded leaves nothing with anyone: the citizen sees it delayed, the
 * operator an error naming the municipality, and it goes as soon as an administrator onboards
 * that municipality, with no restart.
 */

const FOUNDER = '199012119948';
/** Upplands Väsby: a valid municipality code that the seeded catalogue does not onboard. */
const NOT_ONBOARDED = '0114';

/** A sole trader serving food in Upplands Väsby: food premises go to that municipality. */
const ANSWERS = {
  'business.name': 'Väsby Kök',
  'business.legalForm': 'enskild-naringsidkare',
  'business.sniCode': '56100',
  'business.expectedTurnover': 90_000,
  'business.willEmployStaff': false,
  'business.servesFood': true,
  'business.servesAlcohol': false,
  'business.premisesAddress': {
    street: 'Dragonvägen 4',
    postalCode: '194 33',
    town: 'Upplands Väsby',
  },
  'business.premisesMunicipalityCode': NOT_ONBOARDED,
};

interface StepView {
  stepId: string;
  state: string;
  delayed: boolean;
}

interface Issued {
  agency: string;
  username: string;
  password: string;
  prefix: string;
}

describe('each municipality an agency of its own', () => {
  let leo: TestApp;
  let adminToken = '';
  let citizenToken = '';
  const connections: Redis[] = [];
  const http = (): Parameters<typeof request>[0] =>
    leo.app.getHttpServer() as Parameters<typeof request>[0];
  const as = (token: () => string) => ({
    get: (url: string) => request(http()).get(url).set('Authorization', token()),
    put: (url: string, body: object) =>
      request(http()).put(url).set('Authorization', token()).send(body),
    post: (url: string, body: object = {}) =>
      request(http()).post(url).set('Authorization', token()).send(body),
  });
  const admin = as(() => adminToken);
  const citizen = as(() => citizenToken);
  const sql = <T extends import('pg').QueryResultRow>(text: string, values: unknown[] = []) =>
    query<T>(leo.database, text, values);

  async function token(body: Record<string, string>): Promise<string> {
    const response = await request(http()).post('/v1/dev/token').send(body).expect(200);
    return `Bearer ${(response.body as { accessToken: string }).accessToken}`;
  }

  async function foodPremises(caseId: string) {
    const [run] = await sql<{ id: string; agency: string; state: string; last_error: string }>(
      `SELECT id, agency, state, last_error FROM step_runs
        WHERE case_id = $1 AND step_id = 'food-premises'`,
      [caseId],
    );
    if (!run) throw new Error('no food-premises step');
    return run;
  }

  beforeAll(async () => {
    leo = await startTestApp({
      LEO_ROLE: 'all',
      MOCK_DECISION_DELAY_MS: '0',
      MOCK_AGENCY_FAILURE_RATE: '0',
      MOCK_REJECTION_RATE: '0',
      // The sweep that sends held steps once their municipality is onboarded.
      LEO_RECONCILE_INTERVAL_MS: '500',
    });
    adminToken = await token({ role: 'admin', subject: 'admin-maja' });
    citizenToken = await token({ role: 'citizen', personalNumber: FOUNDER });
  });
  afterAll(async () => {
    for (const client of connections) client.disconnect();
    await leo.close();
    await deleteAgencyUsers(leo.config.queue.prefix);
  });

  it('serves each onboarded municipality on its own queue, and the municipalities as a whole on none', async () => {
    const mocks = leo.app.get(MockAgenciesService);
    await waitUntil(async () => Promise.resolve(mocks.worker('kommun-0180') !== undefined));
    const stockholm = await admin.get('/v1/admin/agencies/kommun-0180/service').expect(200);
    expect(stockholm.body).toMatchObject({
      agency: 'kommun-0180',
      adapter: 'mock',
      queue: { name: agencyQueueName('kommun-0180') },
      actions: expect.arrayContaining([
        { name: 'register-food-premises', servedBy: 'built-in-mock' },
      ]) as unknown,
    });
    const family = await admin.get('/v1/admin/agencies/kommun/service').expect(404);
    expect(family.body).toMatchObject({
      code: 'agency-not-found',
      detail: expect.stringContaining('many agencies') as unknown,
    });
    await admin.get(`/v1/admin/agencies/kommun-${NOT_ONBOARDED}/service`).expect(404);
    expect(mocks.worker('kommun')).toBeUndefined();
  });

  let caseId = '';

  it('holds a step to a municipality not onboarded: delayed for the citizen, an error for the operator, nothing shared', async () => {
    const opened = await citizen
      .post('/v1/cases', { lifeEvent: 'start-business', answers: ANSWERS })
      .set('Prefer', 'wait=10')
      .expect(201);
    caseId = (opened.body as { id: string }).id;
    const preview = await citizen.get(`/v1/cases/${caseId}/preview`).expect(200);
    const previewed = preview.body as {
      checksum: string;
      agencies: Array<{ agency: string; name: { sv: string } }>;
    };
    // The preview names the municipality each step will go to.
    expect(previewed.agencies.map((a) => a.agency)).toContain(`kommun-${NOT_ONBOARDED}`);
    await citizen
      .post(`/v1/cases/${caseId}/submit`, { previewChecksum: previewed.checksum })
      .expect(202);

    await waitUntil(async () => (await foodPremises(caseId)).last_error === 'agency-not-onboarded');
    const held = await foodPremises(caseId);
    expect(held).toMatchObject({ agency: 'kommun', state: 'ready' });

    const view = await citizen.get(`/v1/cases/${caseId}`).expect(200);
    const step = (view.body as { steps: StepView[] }).steps.find(
      (s) => s.stepId === 'food-premises',
    );
    expect(step).toMatchObject({ state: 'ready', delayed: true });
    const adminView = await admin.get(`/v1/admin/cases/${caseId}`).expect(200);
    expect(JSON.stringify(adminView.body)).toContain('agency-not-onboarded');
    const metrics = await scrape(leo.app);
    expect(
      metrics.value('leo_step_configuration_faults_total', {
        agency: `kommun-${NOT_ONBOARDED}`,
        action: 'register-food-premises',
      }),
    ).toBe(1);

    // Nothing of it left leo: no job, no disclosure; and the sweeps keep it so, quietly.
    await new Promise((r) => setTimeout(r, 1_500));
    const sent = await sql<{ n: string }>(
      `SELECT count(*)::text AS n FROM outbox WHERE queue = $1`,
      [agencyQueueName(`kommun-${NOT_ONBOARDED}`)],
    );
    expect(sent).toEqual([{ n: '0' }]);
    const shared = await sql<{ n: string }>(
      'SELECT count(*)::text AS n FROM disclosures WHERE step_run_id = $1',
      [held.id],
    );
    expect(shared).toEqual([{ n: '0' }]);
    const faults = await sql<{ n: string }>(
      `SELECT count(*)::text AS n FROM case_events
        WHERE case_id = $1 AND type = 'step-configuration-fault'`,
      [caseId],
    );
    expect(faults).toEqual([{ n: '1' }]);
    expect((await foodPremises(caseId)).state).toBe('ready');
  });

  it('sends the held step once an administrator onboards the municipality, with no restart', async () => {
    const current = await admin.get('/v1/admin/agencies/kommun').expect(200);
    const entry = (current.body as { entry: { instances: { onboarded: object[] } } }).entry;
    entry.instances.onboarded.push({
      id: NOT_ONBOARDED,
      name: { sv: 'Upplands Väsby kommun', en: 'Upplands Väsby Municipality' },
    });
    const mocks = leo.app.get(MockAgenciesService);
    const stockholm = mocks.worker('kommun-0180');
    await admin.put('/v1/admin/agencies/kommun', entry).expect(200);

    await waitForCase(leo.database, caseId, ['completed'], 30_000);
    // Onboarding one municipality leaves the others' workers as they were.
    expect(mocks.worker(`kommun-${NOT_ONBOARDED}`)).toBeDefined();
    expect(mocks.worker('kommun-0180')).toBe(stockholm);
    expect(await foodPremises(caseId)).toMatchObject({
      agency: `kommun-${NOT_ONBOARDED}`,
      state: 'completed',
      last_error: null,
    });
    // Done by Upplands Väsby's own mock, and shared with it alone, logged under its name.
    const effects = await sql<{ agency: string }>(
      `SELECT e.agency FROM mock_agency_effects e JOIN step_runs s ON s.id = e.step_run_id
        WHERE s.case_id = $1 AND e.action = 'register-food-premises'`,
      [caseId],
    );
    expect(effects).toEqual([{ agency: `kommun-${NOT_ONBOARDED}` }]);
    const disclosures = await citizen.get(`/v1/me/disclosures?caseId=${caseId}`).expect(200);
    const food = (
      disclosures.body as {
        disclosures: Array<{ stepId: string | null; agency: string; agencyName: { sv: string } }>;
      }
    ).disclosures.find((d) => d.stepId === 'food-premises');
    expect(food).toMatchObject({
      agency: `kommun-${NOT_ONBOARDED}`,
      agencyName: { sv: 'Upplands Väsby kommun' },
    });
  });

  it('gives each municipality a credential of its own: one cannot read or answer for another', async () => {
    const issue = async (agency: string): Promise<Issued> =>
      (await admin.post(`/v1/admin/agencies/${agency}/credentials`, { label: 'test' }).expect(201))
        .body as Issued;
    const stockholm = await issue('kommun-0180');
    await issue('kommun-1480');
    // Not one for every municipality at once.
    const family = await admin.post('/v1/admin/agencies/kommun/credentials', {}).expect(404);
    expect((family.body as { code: string }).code).toBe('agency-not-found');

    const client = new Redis({
      ...redisOptions(testRedisUrl()),
      username: stockholm.username,
      password: stockholm.password,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
    });
    client.on('error', () => undefined);
    connections.push(client);
    const refusal = async (command: Promise<unknown>): Promise<string> =>
      command.then(
        () => 'allowed',
        (error: unknown) => (error instanceof Error ? error.message : String(error)),
      );
    const prefix = stockholm.prefix;
    const gothenburgQueue = `${prefix}:${agencyQueueName('kommun-1480')}`;
    const [run] = await sql<{ id: string; case_id: string; attempt: number }>(
      "SELECT id, case_id, attempt FROM step_runs WHERE case_id = $1 AND step_id = 'food-premises'",
      [caseId],
    );
    if (!run) throw new Error('no step run');
    const forged = resultEntryFields({
      kind: STEP_RESULT,
      result: {
        stepRunId: run.id,
        attempt: run.attempt,
        agency: `kommun-${NOT_ONBOARDED}`,
        result: { outcome: 'rejected', code: 'refused', reason: 'forged' },
        reportedAt: new Date().toISOString(),
      },
    });
    // Gothenburg's jobs and stream, and Upplands Väsby's: not Stockholm's to read or write.
    expect(await refusal(client.lrange(`${gothenburgQueue}:wait`, 0, -1))).toMatch(/NOPERM/);
    expect(await refusal(client.hgetall(`${gothenburgQueue}:1`))).toMatch(/NOPERM/);
    for (const municipality of ['kommun-1480', `kommun-${NOT_ONBOARDED}`]) {
      expect(
        await refusal(
          client.xadd(
            agencyResultsStreamKey(prefix, municipality),
            '*',
            ...Object.entries(forged).flat(),
          ),
        ),
      ).toMatch(/NOPERM/);
    }
    // Over REST, another municipality's step is not found for Stockholm.
    const before = await sql('SELECT seq FROM case_events WHERE case_id = $1 ORDER BY seq', [
      caseId,
    ]);
    const basic = `Basic ${Buffer.from(`${stockholm.username}:${stockholm.password}`).toString('base64')}`;
    await request(http())
      .post('/v1/agency/decisions')
      .set('Authorization', basic)
      .send({ stepRunId: run.id, outcome: 'rejected', code: 'refused', reason: 'forged' })
      .expect(404);
    expect(
      await sql('SELECT seq FROM case_events WHERE case_id = $1 ORDER BY seq', [caseId]),
    ).toEqual(before);
  });
});
