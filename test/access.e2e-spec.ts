import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import request from 'supertest';
import { openApiDocument } from '../src/http/create-app.js';
import { WORKLOAD_ANSWERS, sql as query, waitForStep } from './support/engine-harness.js';
import { deleteAgencyUsers, startTestApp, type TestApp } from './support/test-env.js';

/**
 * Invariant 7, route by route: a citizen reads and changes only their own cases, facts,
 * disclosures and messages; an agency decides only its own steps; only administrators reach
 * the admin routes. The table must name every route the API serves (checked against the
 * OpenAPI document), and every denied call must get 401, 403 or 404 and change nothing.
 */

type Caller = 'anonymous' | 'citizenA' | 'citizenB' | 'admin' | 'skatteverket' | 'bolagsverket';

interface Ids {
  caseA: string;
  openCaseA: string;
  messageA: string;
  stepRunA: string;
}

interface Route {
  /** Who may call it; everyone else is refused. */
  allowed: Caller[] | 'public';
  path: (ids: Ids) => string;
  body?: (ids: Ids) => object;
  /** A citizen's route about citizen A's own resource: citizen B gets 404. */
  ofCitizenA?: boolean;
}

const CITIZENS: Caller[] = ['citizenA', 'citizenB'];
const AGENCIES: Caller[] = ['skatteverket', 'bolagsverket'];
const ADMIN: Caller[] = ['admin'];
const EVERYONE_SIGNED_IN: Caller[] = [...CITIZENS, ...AGENCIES, ...ADMIN];

const DEFINITION = {
  key: 'access-errand',
  version: 1,
  title: { sv: 'T', en: 'T' },
  description: { sv: 'T', en: 'T' },
  inputs: ['business.name'],
  steps: [],
};

const ROUTES: Record<string, Route> = {
  'GET /health/live': { allowed: 'public', path: () => '/health/live' },
  'GET /health/ready': { allowed: 'public', path: () => '/health/ready' },
  'GET /metrics': { allowed: 'public', path: () => '/metrics' },
  'POST /v1/admin/queue-dashboard/session': {
    allowed: ADMIN,
    path: () => '/v1/admin/queue-dashboard/session',
  },
  'DELETE /v1/admin/queue-dashboard/session': {
    allowed: ADMIN,
    path: () => '/v1/admin/queue-dashboard/session',
  },
  'POST /v1/dev/token': { allowed: 'public', path: () => '/v1/dev/token' },
  'GET /v1/me': { allowed: EVERYONE_SIGNED_IN, path: () => '/v1/me' },

  'GET /v1/admin/life-events': { allowed: ADMIN, path: () => '/v1/admin/life-events' },
  'POST /v1/admin/life-events': {
    allowed: ADMIN,
    path: () => '/v1/admin/life-events',
    body: () => DEFINITION,
  },
  'POST /v1/admin/life-events/validate': {
    allowed: ADMIN,
    path: () => '/v1/admin/life-events/validate',
    body: () => DEFINITION,
  },
  'GET /v1/admin/life-events/{key}/versions': {
    allowed: ADMIN,
    path: () => '/v1/admin/life-events/start-business/versions',
  },
  'GET /v1/admin/life-events/{key}/versions/{version}': {
    allowed: ADMIN,
    path: () => '/v1/admin/life-events/start-business/versions/1',
  },
  'GET /v1/admin/life-events/{key}/versions/{version}/diagram': {
    allowed: ADMIN,
    path: () => '/v1/admin/life-events/start-business/versions/1/diagram',
  },
  'POST /v1/admin/life-events/{key}/versions/{version}/deprecate': {
    allowed: ADMIN,
    path: () => '/v1/admin/life-events/start-business/versions/1/deprecate',
  },
  'GET /v1/admin/life-events/{key}/draft': {
    allowed: ADMIN,
    path: () => '/v1/admin/life-events/start-business/draft',
  },
  'PUT /v1/admin/life-events/{key}/draft': {
    allowed: ADMIN,
    path: () => '/v1/admin/life-events/start-business/draft',
    body: () => ({ ...DEFINITION, key: 'start-business' }),
  },
  'DELETE /v1/admin/life-events/{key}/draft': {
    allowed: ADMIN,
    path: () => '/v1/admin/life-events/start-business/draft',
  },
  'POST /v1/admin/life-events/{key}/draft/publish': {
    allowed: ADMIN,
    path: () => '/v1/admin/life-events/start-business/draft/publish',
  },
  'GET /v1/admin/fact-types': { allowed: ADMIN, path: () => '/v1/admin/fact-types' },
  'GET /v1/admin/fact-types/{key}': {
    allowed: ADMIN,
    path: () => '/v1/admin/fact-types/person.name',
  },
  'PUT /v1/admin/fact-types/{key}': {
    allowed: ADMIN,
    path: () => '/v1/admin/fact-types/person.name',
    body: () => ({ key: 'person.name' }),
  },
  'GET /v1/admin/fact-types/{key}/revisions': {
    allowed: ADMIN,
    path: () => '/v1/admin/fact-types/person.name/revisions',
  },
  'GET /v1/admin/agencies': { allowed: ADMIN, path: () => '/v1/admin/agencies' },
  'GET /v1/admin/agencies/{code}': { allowed: ADMIN, path: () => '/v1/admin/agencies/kommun' },
  'PUT /v1/admin/agencies/{code}': {
    allowed: ADMIN,
    path: () => '/v1/admin/agencies/kommun',
    body: () => ({ code: 'kommun' }),
  },
  'POST /v1/admin/agencies/{code}/credentials': {
    allowed: ADMIN,
    path: () => '/v1/admin/agencies/kommun-0180/credentials',
    body: () => ({ label: 'access test' }),
  },
  'GET /v1/admin/agencies/{code}/credentials': {
    allowed: ADMIN,
    path: () => '/v1/admin/agencies/kommun-0180/credentials',
  },
  'GET /v1/admin/agencies/{code}/service': {
    allowed: ADMIN,
    path: () => '/v1/admin/agencies/kommun-0180/service',
  },
  'GET /v1/admin/agency-credentials': {
    allowed: ADMIN,
    path: () => '/v1/admin/agency-credentials',
  },
  'DELETE /v1/admin/agency-credentials/{id}': {
    allowed: ADMIN,
    path: () => '/v1/admin/agency-credentials/0123456789ab',
  },
  'GET /v1/admin/agencies/{code}/revisions': {
    allowed: ADMIN,
    path: () => '/v1/admin/agencies/kommun/revisions',
  },
  'GET /v1/admin/cases': { allowed: ADMIN, path: () => '/v1/admin/cases' },
  'GET /v1/admin/cases/{id}': { allowed: ADMIN, path: (ids) => `/v1/admin/cases/${ids.caseA}` },
  'POST /v1/admin/cases/{id}/steps/{stepId}/retry': {
    allowed: ADMIN,
    path: (ids) => `/v1/admin/cases/${ids.caseA}/steps/register-sole-trader/retry`,
  },
  'POST /v1/admin/cases/{id}/cancel': {
    allowed: ADMIN,
    path: (ids) => `/v1/admin/cases/${ids.caseA}/cancel`,
    body: () => ({ reason: 'not allowed to' }),
  },

  // Citizen A's F-tax application awaits Skatteverket's decision: only Skatteverket may report it.
  'POST /v1/agency/decisions': {
    allowed: ['skatteverket'],
    path: () => '/v1/agency/decisions',
    body: (ids) => ({
      stepRunId: ids.stepRunA,
      outcome: 'rejected',
      code: 'not-yours',
      reason: 'an agency deciding another agency’s step',
    }),
  },

  'GET /v1/life-events': { allowed: CITIZENS, path: () => '/v1/life-events' },
  'POST /v1/cases': {
    allowed: CITIZENS,
    path: () => '/v1/cases',
    body: () => ({ lifeEvent: 'start-business', answers: WORKLOAD_ANSWERS }),
  },
  'GET /v1/cases': { allowed: CITIZENS, path: () => '/v1/cases' },
  'GET /v1/cases/{id}': {
    allowed: ['citizenA'],
    ofCitizenA: true,
    path: (ids) => `/v1/cases/${ids.caseA}`,
  },
  'POST /v1/cases/{id}/answers': {
    allowed: ['citizenA'],
    ofCitizenA: true,
    path: (ids) => `/v1/cases/${ids.openCaseA}/answers`,
    body: () => ({ answers: { 'business.name': 'Kapat av B' } }),
  },
  'GET /v1/cases/{id}/preview': {
    allowed: ['citizenA'],
    ofCitizenA: true,
    path: (ids) => `/v1/cases/${ids.openCaseA}/preview`,
  },
  'POST /v1/cases/{id}/submit': {
    allowed: ['citizenA'],
    ofCitizenA: true,
    path: (ids) => `/v1/cases/${ids.openCaseA}/submit`,
    body: () => ({ previewChecksum: 'guessed' }),
  },
  'POST /v1/cases/{id}/cancel': {
    allowed: ['citizenA'],
    ofCitizenA: true,
    path: (ids) => `/v1/cases/${ids.caseA}/cancel`,
    body: () => ({ reason: 'B cancels A' }),
  },
  'POST /v1/cases/{id}/tasks/{stepId}/complete': {
    allowed: ['citizenA'],
    ofCitizenA: true,
    path: (ids) => `/v1/cases/${ids.caseA}/tasks/register-sole-trader/complete`,
    body: () => ({ facts: {} }),
  },
  'GET /v1/cases/{id}/events': {
    allowed: ['citizenA'],
    ofCitizenA: true,
    path: (ids) => `/v1/cases/${ids.caseA}/events`,
  },
  'GET /v1/me/facts': { allowed: CITIZENS, path: () => '/v1/me/facts' },
  'GET /v1/me/disclosures': { allowed: CITIZENS, path: () => '/v1/me/disclosures' },
  'GET /v1/me/messages': { allowed: CITIZENS, path: () => '/v1/me/messages' },
  'POST /v1/me/messages/{id}/read': {
    allowed: ['citizenA'],
    ofCitizenA: true,
    path: (ids) => `/v1/me/messages/${ids.messageA}/read`,
  },
};

const A_NUMBER = '199012119948';
const B_NUMBER = '197311249986';

describe('who may do what, route by route', () => {
  let leo: TestApp;
  let ids: Ids;
  const tokens = new Map<Caller, string>();
  const server = (): Parameters<typeof request>[0] =>
    leo.app.getHttpServer() as Parameters<typeof request>[0];
  const sql = <T extends import('pg').QueryResultRow>(text: string, values: unknown[] = []) =>
    query<T>(leo.database, text, values);

  /** Everything a denied call could have changed. */
  const snapshot = (): Promise<unknown[]> =>
    sql(`SELECT
      (SELECT count(*) FROM cases) AS cases,
      (SELECT coalesce(sum(revision), 0) FROM cases) AS revisions,
      (SELECT string_agg(status, ',' ORDER BY id) FROM cases) AS statuses,
      (SELECT count(*) FROM fact_records) AS facts,
      (SELECT count(*) FROM outbox) AS outbox,
      (SELECT count(*) FROM disclosures) AS disclosures,
      (SELECT count(*) FROM messages WHERE read_at IS NOT NULL) AS read,
      (SELECT count(*) FROM life_event_definitions) AS definitions,
      (SELECT string_agg(status, ',' ORDER BY id) FROM life_event_definitions) AS definition_statuses,
      (SELECT count(*) FROM catalogue_revisions) AS catalogue`);

  function call(caller: Caller, method: string, url: string, body?: object): request.Test {
    const agent = request(server());
    const test =
      method === 'GET'
        ? agent.get(url)
        : method === 'PUT'
          ? agent.put(url)
          : method === 'DELETE'
            ? agent.delete(url)
            : agent.post(url);
    const token = tokens.get(caller);
    if (token) void test.set('Authorization', token);
    return body ? test.send(body) : test;
  }

  beforeAll(async () => {
    // Decisions take ten minutes: citizen A's case waits for Skatteverket's F-tax decision.
    leo = await startTestApp({
      LEO_ROLE: 'all',
      MOCK_DECISION_DELAY_MS: '600000',
      MOCK_AGENCY_FAILURE_RATE: '0',
    });
    const issue = async (caller: Caller, body: object): Promise<void> => {
      const response = await request(server()).post('/v1/dev/token').send(body).expect(200);
      tokens.set(caller, `Bearer ${(response.body as { accessToken: string }).accessToken}`);
    };
    await issue('citizenA', { role: 'citizen', personalNumber: A_NUMBER });
    await issue('citizenB', { role: 'citizen', personalNumber: B_NUMBER });
    await issue('admin', { role: 'admin' });
    await issue('skatteverket', { role: 'agency', agency: 'skatteverket' });
    await issue('bolagsverket', { role: 'agency', agency: 'bolagsverket' });

    const open = async (caller: Caller, name: string): Promise<string> => {
      const response = await call(caller, 'POST', '/v1/cases', {
        lifeEvent: 'start-business',
        answers: { ...WORKLOAD_ANSWERS, 'business.name': name },
      })
        .set('Prefer', 'wait=10')
        .expect(201);
      return (response.body as { id: string }).id;
    };
    const caseA = await open('citizenA', 'A:s företag');
    const preview = await call('citizenA', 'GET', `/v1/cases/${caseA}/preview`).expect(200);
    await call('citizenA', 'POST', `/v1/cases/${caseA}/submit`, {
      previewChecksum: (preview.body as { checksum: string }).checksum,
    }).expect(202);
    await waitForStep(leo.database, caseA, 'f-tax', 'awaiting-decision');
    // The rest of what can run has run: nothing moves while the table is checked.
    await waitForStep(leo.database, caseA, 'vat-registration', 'completed');
    await waitForStep(leo.database, caseA, 'employer-registration', 'completed');
    const openCaseA = await open('citizenA', 'A:s andra företag');
    await open('citizenB', 'B:s företag');
    const [message] = await sql<{ id: string }>(
      'SELECT id FROM messages WHERE case_id = $1 LIMIT 1',
      [caseA],
    );
    const [run] = await sql<{ id: string }>(
      "SELECT id FROM step_runs WHERE case_id = $1 AND step_id = 'f-tax'",
      [caseA],
    );
    ids = { caseA, openCaseA, messageA: message?.id ?? '', stepRunA: run?.id ?? '' };
  });
  afterAll(async () => {
    // The agency users the admin's calls made in Redis go with this run.
    await deleteAgencyUsers(leo.config.queue.prefix);
    await leo.close();
  });

  it('covers every route the API serves', () => {
    const served = Object.entries(openApiDocument(leo.app).paths).flatMap(([path, operations]) =>
      Object.keys(operations as object).map((method) => `${method.toUpperCase()} ${path}`),
    );
    expect([...served].sort()).toEqual(Object.keys(ROUTES).sort());
  });

  const cases = Object.entries(ROUTES).flatMap(([route, spec]) => {
    if (spec.allowed === 'public') return [];
    const allowed = spec.allowed;
    const callers: Caller[] = ['anonymous', ...EVERYONE_SIGNED_IN];
    return callers
      .filter((caller) => !allowed.includes(caller))
      .map((caller) => ({ route, caller, spec }));
  });

  it.each(cases)('$route refuses $caller and changes nothing', async ({ route, caller, spec }) => {
    const [method] = route.split(' ');
    const before = await snapshot();
    const response = await call(caller, method ?? 'GET', spec.path(ids), spec.body?.(ids));
    const expected =
      caller === 'anonymous'
        ? [401]
        : spec.ofCitizenA && caller === 'citizenB'
          ? [404]
          : route === 'POST /v1/agency/decisions' && AGENCIES.includes(caller)
            ? [404]
            : [403];
    expect({ status: response.status, code: (response.body as { code?: string }).code }).toEqual({
      status: expected[0],
      code: expect.any(String),
    });
    expect(await snapshot()).toEqual(before);
  });

  it.each([
    '/v1/cases',
    '/v1/me/facts',
    '/v1/me/disclosures',
    '/v1/me/messages',
    '/v1/life-events',
  ])('%s shows citizen B nothing of citizen A', async (url) => {
    const response = await call('citizenB', 'GET', url).expect(200);
    const text = JSON.stringify(response.body);
    for (const secret of [ids.caseA, ids.openCaseA, ids.messageA, A_NUMBER, 'A:s företag']) {
      expect(text).not.toContain(secret);
    }
    const own = await call('citizenA', 'GET', url).expect(200);
    if (url !== '/v1/life-events') {
      expect(JSON.stringify(own.body)).toMatch(new RegExp(`${ids.caseA}|${ids.openCaseA}`));
    }
  });
});
