import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import request from 'supertest';
import { WORKLOAD_ANSWERS, sql as query, waitForCase } from './support/engine-harness.js';
import { startTestApp, type TestApp } from './support/test-env.js';

/**
 * The citizen API end to end, as a front-end uses it, on leo's own mock agencies (role `all`):
 * reuse and look-ups before asking, preview and consent, live events, and the citizen's view of
 * their facts, disclosures and messages. Decisions come at once (no pending) to keep it quick.
 */

// Test personal identity numbers (birth numbers 980–999, as Skatteverket's test numbers).
const ANNA = '199012119948';
const ERIK = '197311249986';

interface CaseView {
  id: string;
  status: string;
  revision: number;
  resolution?: {
    state: string;
    questions: Array<{ key: string }>;
    facts: Array<{ key: string; status: string; agency?: string; caseId?: string }>;
  };
  steps: Array<{ stepId: string; state: string; agencyReference: string | null }>;
}

interface Preview {
  checksum: string;
  agencies: Array<{
    agency: string;
    steps: Array<{
      stepId: string;
      facts: Array<{ key: string; value?: unknown; source: { kind: string; agency?: string } }>;
    }>;
  }>;
}

describe('the citizen API', () => {
  let leo: TestApp;
  const tokens = new Map<string, string>();
  const server = (): Parameters<typeof request>[0] =>
    leo.app.getHttpServer() as Parameters<typeof request>[0];
  const sql = <T extends import('pg').QueryResultRow>(text: string, values: unknown[] = []) =>
    query<T>(leo.database, text, values);

  async function tokenFor(personalNumber: string): Promise<string> {
    const cached = tokens.get(personalNumber);
    if (cached) return cached;
    const response = await request(server())
      .post('/v1/dev/token')
      .send({ role: 'citizen', personalNumber })
      .expect(200);
    const token = `Bearer ${(response.body as { accessToken: string }).accessToken}`;
    tokens.set(personalNumber, token);
    return token;
  }

  const as = async (
    personalNumber: string,
  ): Promise<{
    get: (url: string) => request.Test;
    post: (url: string, body?: object) => request.Test;
  }> => {
    const token = await tokenFor(personalNumber);
    return {
      get: (url) => request(server()).get(url).set('Authorization', token),
      post: (url, body = {}) => request(server()).post(url).set('Authorization', token).send(body),
    };
  };

  async function openBusiness(
    personalNumber: string,
    answers: Record<string, unknown> = WORKLOAD_ANSWERS,
  ): Promise<CaseView> {
    const citizen = await as(personalNumber);
    const response = await citizen
      .post('/v1/cases', { lifeEvent: 'start-business', answers })
      .set('Prefer', 'wait=10')
      .expect(201);
    expect(response.headers['preference-applied']).toBe('wait=10');
    return response.body as CaseView;
  }

  beforeAll(async () => {
    leo = await startTestApp({
      LEO_ROLE: 'all',
      MOCK_DECISION_DELAY_MS: '0',
      MOCK_AGENCY_FAILURE_RATE: '0',
      MOCK_REJECTION_RATE: '0',
    });
  });
  afterAll(async () => {
    await leo.close();
  });

  it('lists the life events with what each would ask, look up and reuse', async () => {
    const citizen = await as(ERIK);
    const response = await citizen.get('/v1/life-events').expect(200);
    const events = response.body as Array<{ key: string; questions: number; lookups: number }>;
    expect(events.map((e) => e.key).sort()).toEqual([
      'become-parent',
      'death-of-relative',
      'move-house',
      'start-business',
    ]);
    const business = events.find((e) => e.key === 'start-business');
    // Name and address come from the population register, the identity from the sign-in.
    expect(business?.lookups).toBeGreaterThan(0);
  });

  it('looks up what the register holds, asks only the rest, and says where each fact came from', async () => {
    const opened = await openBusiness(ANNA);
    expect(opened.status).toBe('open');
    expect(opened.resolution?.state).toBe('ready');
    expect(opened.resolution?.questions).toEqual([]);
    const status = Object.fromEntries(
      (opened.resolution?.facts ?? []).map((f) => [f.key, f.status]),
    );
    expect(status).toMatchObject({
      'person.personalNumber': 'from-e-identification',
      'person.name': 'looked-up',
      'business.name': 'given',
      'business.sniCode': 'given',
    });
    expect(opened.resolution?.facts.find((f) => f.key === 'person.name')?.agency).toBe(
      'skatteverket',
    );
    // Only the identity number left leo for the look-up, and it is in the disclosure log.
    const lookups = await sql<{ agency: string; fact_keys: string[] }>(
      'SELECT agency, fact_keys FROM disclosures WHERE case_id = $1 AND lookup_id IS NOT NULL',
      [opened.id],
    );
    expect(lookups).toEqual([{ agency: 'skatteverket', fact_keys: ['person.personalNumber'] }]);
  });

  it('asks only what is missing: an incomplete case needs answers, and an answer resolves it', async () => {
    const withoutSni = Object.fromEntries(
      Object.entries(WORKLOAD_ANSWERS).filter(([key]) => key !== 'business.sniCode'),
    );
    const opened = await openBusiness(ERIK, withoutSni);
    expect(opened.resolution?.state).toBe('needs-answers');
    expect(opened.resolution?.questions.map((q) => q.key)).toEqual(['business.sniCode']);
    const citizen = await as(ERIK);
    const preview = await citizen.get(`/v1/cases/${opened.id}/preview`).expect(409);
    expect(preview.body).toMatchObject({ code: 'answers-missing' });
    const bad = await citizen
      .post(`/v1/cases/${opened.id}/answers`, { answers: { 'business.sniCode': '6201' } })
      .expect(400);
    expect(bad.body.errors).toEqual([
      expect.objectContaining({ path: 'answers.business.sniCode', code: 'invalid-value' }),
    ]);
    const answered = await citizen
      .post(`/v1/cases/${opened.id}/answers`, { answers: { 'business.sniCode': '62010' } })
      .expect(200);
    expect((answered.body as CaseView).resolution?.state).toBe('ready');
  });

  it('shows each agency exactly what it will receive, and refuses a stale consent', async () => {
    const opened = await openBusiness(ANNA, {
      ...WORKLOAD_ANSWERS,
      'business.name': 'Anna AB-fri',
    });
    const citizen = await as(ANNA);
    const preview = (await citizen.get(`/v1/cases/${opened.id}/preview`).expect(200))
      .body as Preview;
    const steps = Object.fromEntries(
      preview.agencies.flatMap((a) => a.steps.map((s) => [s.stepId, { agency: a.agency, ...s }])),
    );
    expect(Object.keys(steps).sort()).toEqual([
      'business-notice',
      'employer-registration',
      'f-tax',
      'register-sole-trader',
      'vat-registration',
    ]);
    const registration = steps['register-sole-trader'];
    expect(registration?.agency).toBe('bolagsverket');
    expect(registration?.facts.map((f) => f.key).sort()).toEqual([
      'business.legalForm',
      'business.name',
      'business.sniCode',
      'person.name',
      'person.personalNumber',
    ]);
    expect(registration?.facts.find((f) => f.key === 'person.name')?.source).toMatchObject({
      kind: 'lookup',
      agency: 'skatteverket',
    });
    expect(registration?.facts.find((f) => f.key === 'business.name')?.value).toBe('Anna AB-fri');
    expect(steps['f-tax']?.facts.find((f) => f.key === 'business.orgNumber')?.source).toEqual({
      kind: 'will-be-produced',
      agency: 'bolagsverket',
      stepId: 'register-sole-trader',
    });

    // The citizen changes an answer after the preview: the consent no longer matches.
    await citizen
      .post(`/v1/cases/${opened.id}/answers`, { answers: { 'business.name': 'Anna Nyföretag' } })
      .expect(200);
    const stale = await citizen
      .post(`/v1/cases/${opened.id}/submit`, { previewChecksum: preview.checksum })
      .expect(409);
    expect(stale.body).toMatchObject({ code: 'preview-stale' });
    const dispatched = await sql<{ n: string }>(
      `SELECT count(*) AS n FROM outbox WHERE payload->>'caseId' = $1 AND job_name = 'step.execute'`,
      [opened.id],
    );
    expect(dispatched).toEqual([{ n: '0' }]);
    const state = await sql<{ status: string }>('SELECT status FROM cases WHERE id = $1', [
      opened.id,
    ]);
    expect(state).toEqual([{ status: 'open' }]);
  });

  it('runs a submitted case to completion, and the citizen follows it, reads the decisions and sees who got what', async () => {
    const opened = await openBusiness(ANNA, { ...WORKLOAD_ANSWERS, 'business.name': 'Annas Kod' });
    const citizen = await as(ANNA);
    const preview = (await citizen.get(`/v1/cases/${opened.id}/preview`).expect(200))
      .body as Preview;
    const submitted = await citizen
      .post(`/v1/cases/${opened.id}/submit`, { previewChecksum: preview.checksum })
      .expect(202);
    expect((submitted.body as CaseView).status).toBe('running');

    const events = await readStream(leo, await tokenFor(ANNA), opened.id);
    expect(events.at(-1)).toEqual({ event: 'end', data: { status: 'completed' } });
    const types = events.map((e) => e.event);
    expect(types).toContain('case-submitted');
    expect(types.filter((t) => t === 'step-completed')).toHaveLength(5);

    await waitForCase(leo.database, opened.id, ['completed']);
    const view = (await citizen.get(`/v1/cases/${opened.id}`).expect(200)).body as CaseView;
    expect(view.status).toBe('completed');
    // Followed again once finished: the whole history, then the end, with nothing to wait for.
    const replayed = await readStream(leo, await tokenFor(ANNA), opened.id);
    expect(replayed.map((e) => e.event)).toEqual(types);
    // Where each fact came from is still shown once the case has run; nothing is asked.
    const resolution = (
      view as unknown as {
        resolution?: { questions: unknown[]; facts: Array<{ key: string; status: string }> };
      }
    ).resolution;
    expect(resolution?.questions).toEqual([]);
    expect(resolution?.facts.find((f) => f.key === 'business.name')?.status).toBe('given');
    expect(resolution?.facts.find((f) => f.key === 'person.address')?.status).toMatch(
      /^(looked-up|reused)$/,
    );
    // The same submit again (a retry whose answer was lost) is accepted and changes nothing;
    // a submit with another consent is refused.
    const again = await citizen
      .post(`/v1/cases/${opened.id}/submit`, { previewChecksum: preview.checksum })
      .expect(202);
    expect((again.body as CaseView).revision).toBe(view.revision);
    const other = await citizen
      .post(`/v1/cases/${opened.id}/submit`, { previewChecksum: 'another-checksum' })
      .expect(409);
    expect(other.body).toMatchObject({ code: 'case-not-open' });
    for (const step of view.steps.filter((s) => s.state === 'completed')) {
      expect(step.agencyReference).toEqual(expect.any(String));
    }

    // Messages: the receipt, the four decisions, the completion; markable read.
    const messages = (await citizen.get(`/v1/me/messages?caseId=${opened.id}`).expect(200))
      .body as {
      messages: Array<{
        id: string;
        template: string;
        sender: string;
        read: boolean;
        subject: { sv: string };
      }>;
    };
    expect(messages.messages.map((m) => m.template).sort()).toEqual([
      'case-completed',
      'case-submitted',
      'step-granted',
      'step-granted',
      'step-granted',
      'step-granted',
    ]);
    const granted = messages.messages.find((m) => m.template === 'step-granted');
    expect(granted?.subject.sv).toMatch(/^Beslut: /);
    await citizen.post(`/v1/me/messages/${granted?.id ?? ''}/read`).expect(204);
    const unread = (
      await citizen.get(`/v1/me/messages?unread=true&caseId=${opened.id}`).expect(200)
    ).body as { messages: Array<{ id: string }> };
    expect(unread.messages.map((m) => m.id)).not.toContain(granted?.id);

    // Disclosures: the look-up and the five steps, each matching what the agency's ledger got.
    const disclosures = (await citizen.get(`/v1/me/disclosures?caseId=${opened.id}`).expect(200))
      .body as {
      disclosures: Array<{
        agency: string;
        purpose: string;
        stepId: string | null;
        factKeys: string[];
      }>;
    };
    // The five steps; the register facts were looked up by the earlier case and are reused.
    expect(disclosures.disclosures.filter((d) => d.purpose === 'step')).toHaveLength(5);
    const ledger = await sql<{ agency: string; keys: string[]; step_id: string | null }>(
      `SELECT r.agency, ARRAY(SELECT jsonb_object_keys(r.facts) ORDER BY 1) AS keys, s.step_id
         FROM mock_agency_requests r
         LEFT JOIN step_runs s ON s.id = r.step_run_id
         LEFT JOIN lookups l ON l.id = r.lookup_id
        WHERE s.case_id = $1 OR l.case_id = $1`,
      [opened.id],
    );
    expect(ledger).toHaveLength(disclosures.disclosures.length);
    for (const entry of ledger) {
      const disclosed = disclosures.disclosures.find(
        (d) => d.agency === entry.agency && d.stepId === entry.step_id,
      );
      expect([...(disclosed?.factKeys ?? [])].sort()).toEqual(entry.keys);
    }

    // My facts: the organisation number Bolagsverket produced, and who has received it since.
    const facts = (await citizen.get('/v1/me/facts').expect(200)).body as {
      facts: Array<{
        key: string;
        source: string;
        agency: string | null;
        sentTo: Array<{ agency: string }>;
      }>;
    };
    const org = facts.facts.find((f) => f.key === 'business.orgNumber');
    expect(org).toMatchObject({ source: 'agency', agency: 'bolagsverket' });
    // The municipality it went to is the citizen's own, each municipality an agency of its own.
    const home = facts.facts.find((f) => f.key === 'person.municipalityCode') as
      { value?: unknown } | undefined;
    expect(typeof home?.value).toBe('string');
    expect(new Set(org?.sentTo.map((s) => s.agency))).toEqual(
      new Set(['skatteverket', `kommun-${String(home?.value)}`]),
    );
  });

  it('asks nothing twice: a second life event reuses what was given and produced', async () => {
    const citizen = await as(ANNA);
    const opened = (
      await citizen
        .post('/v1/cases', { lifeEvent: 'become-parent', answers: {} })
        .set('Prefer', 'wait=10')
        .expect(201)
    ).body as CaseView;
    expect(opened.resolution?.state).toBe('needs-answers');
    const asked = (opened.resolution?.questions ?? []).map((q) => q.key);
    // Everything given before, or held by an agency, is not asked.
    const given = await sql<{ fact_key: string }>(
      `SELECT DISTINCT f.fact_key FROM fact_records f JOIN cases c ON c.subject_id = f.subject_id
        WHERE c.id = $1 AND f.case_id <> $1`,
      [opened.id],
    );
    for (const { fact_key } of given) expect(asked).not.toContain(fact_key);
    expect(asked).not.toContain('child.personalNumber');
    expect(asked).not.toContain('person.municipalityCode');
    expect(asked).toEqual(expect.arrayContaining(['person.bankAccount', 'parentalBenefit.period']));
  });

  it('tells a citizen, once a case has completed, which life events now need fewer answers', async () => {
    const citizen = await as(ERIK);
    const opened = (
      await citizen
        .post('/v1/cases', {
          lifeEvent: 'become-parent',
          answers: {
            'person.bankAccount': { kind: 'swedish', account: '8424-4, 983 189 224-6' },
            'child.preschoolStartDate': '2028-01-10',
            'parentalBenefit.period': { from: '2027-01-04', to: '2027-03-26' },
            'parentalBenefit.extent': 'full',
          },
        })
        .set('Prefer', 'wait=10')
        .expect(201)
    ).body as CaseView;
    expect(opened.resolution?.state).toBe('ready');
    const preview = (await citizen.get(`/v1/cases/${opened.id}/preview`).expect(200))
      .body as Preview;
    await citizen
      .post(`/v1/cases/${opened.id}/submit`, { previewChecksum: preview.checksum })
      .expect(202);
    await waitForCase(leo.database, opened.id, ['completed']);
    const messages = (await citizen.get(`/v1/me/messages?caseId=${opened.id}`).expect(200))
      .body as { messages: Array<{ template: string; params: { lifeEvents?: unknown } }> };
    const fewer = messages.messages.find((m) => m.template === 'fewer-answers');
    // The bank account is on file now: a survivor's pension would not ask for it again.
    expect(fewer?.params.lifeEvents).toEqual([
      expect.objectContaining({ lifeEvent: 'death-of-relative' }),
    ]);
    const list = (await citizen.get('/v1/life-events').expect(200)).body as Array<{
      key: string;
      reused: number;
    }>;
    expect(list.find((e) => e.key === 'become-parent')?.reused).toBeGreaterThan(1);
  });

  it('refuses bad input with the field and the reason, and changes nothing', async () => {
    const citizen = await as(ERIK);
    const before = await sql<{ n: string }>('SELECT count(*) AS n FROM cases');
    const unknown = await citizen.post('/v1/cases', { lifeEvent: 'win-the-lottery' }).expect(404);
    expect(unknown.body).toMatchObject({ code: 'life-event-not-found' });
    const malformed = await citizen.post('/v1/cases', { lifeEvent: 'Start Business!' }).expect(400);
    expect(malformed.body.errors).toEqual([expect.objectContaining({ path: 'lifeEvent' })]);
    const extra = await citizen
      .post('/v1/cases', { lifeEvent: 'start-business', answers: {}, sneaky: true })
      .expect(400);
    expect(extra.body.errors).toEqual([expect.objectContaining({ path: 'sneaky' })]);
    const notYours = await citizen
      .post('/v1/cases', {
        lifeEvent: 'start-business',
        answers: { 'person.address': { street: 'x 1', postalCode: '111 22', town: 'y' } },
      })
      .expect(400);
    expect(notYours.body.errors).toEqual([
      expect.objectContaining({ path: 'answers.person.address', code: 'provided-by-agency' }),
    ]);
    await citizen.get('/v1/cases/not-a-uuid').expect(400);
    await citizen.get('/v1/cases/00000000-0000-4000-8000-000000000000').expect(404);
    await citizen.get('/v1/me/messages?cursor=nonsense').expect(400);
    expect(await sql('SELECT count(*) AS n FROM cases')).toEqual(before);
  });

  it('lets a citizen cancel their open case, once', async () => {
    const opened = await openBusiness(ERIK);
    const citizen = await as(ERIK);
    const cancelled = await citizen
      .post(`/v1/cases/${opened.id}/cancel`, { reason: 'changed my mind' })
      .expect(200);
    expect((cancelled.body as CaseView).status).toBe('cancelled');
    await citizen.post(`/v1/cases/${opened.id}/cancel`).expect(409);
  });
});

/**
 * Reads a case's server-sent events until the stream ends. A finished case's stream ends as soon
 * as its history is sent: waiting 5 s is well past that, and well short of the 15 s keep-alive
 * whose re-read once was what ended it.
 */
async function readStream(
  leo: TestApp,
  token: string,
  caseId: string,
): Promise<Array<{ event: string; data: unknown }>> {
  const server = leo.app.getHttpServer() as http.Server;
  if (!server.listening)
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return new Promise((resolve, reject) => {
    const events: Array<{ event: string; data: unknown }> = [];
    const timer = setTimeout(() => {
      req.destroy();
      reject(new Error(`the stream did not end: ${JSON.stringify(events.map((e) => e.event))}`));
    }, 5_000);
    const req = http.get(
      {
        host: '127.0.0.1',
        port,
        path: `/v1/cases/${caseId}/events`,
        headers: { authorization: token },
      },
      (res) => {
        expect(res.headers['content-type']).toMatch(/^text\/event-stream/);
        let buffer = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          buffer += chunk;
          let end = buffer.indexOf('\n\n');
          while (end >= 0) {
            const block = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            const event = /^event: (.*)$/m.exec(block)?.[1];
            const data = /^data: (.*)$/m.exec(block)?.[1];
            if (event && data) events.push({ event, data: JSON.parse(data) as unknown });
            end = buffer.indexOf('\n\n');
          }
        });
        res.on('end', () => {
          clearTimeout(timer);
          resolve(events);
        });
      },
    );
    req.on('error', reject);
  });
}
