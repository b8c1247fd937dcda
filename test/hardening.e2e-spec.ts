import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import request from 'supertest';
import { EngineService } from '../src/engine/engine.service.js';
import { caseIdForKey, keyDigest } from '../src/citizen/idempotency.js';
import { sql as query, waitUntil } from './support/engine-harness.js';
import { startTestApp, withAdmin, type TestApp } from './support/test-env.js';

/**
 * Findings of the issue "Hardening", each fixed with a test that failed before. Input a client
 * can send that once answered 500: a valid `null` answer, a body nested thousands of levels deep,
 * and a cursor whose time Postgres cannot hold; each is answered as what it is, and a refused one
 * changes nothing. Responses with personal data that a cache could keep; a catalogue PUT repeated
 * as is that added a revision each time. A database that refuses connections, once a 500. A
 * citizen leo never saw whose reads made them a subject.
 */

const MOVER = '199012119948';

describe('hardening: what once answered 500, leaked to caches or repeated itself', () => {
  let leo: TestApp;
  let citizenToken = '';
  let adminToken = '';
  const http = (): Parameters<typeof request>[0] =>
    leo.app.getHttpServer() as Parameters<typeof request>[0];
  const sql = <T extends import('pg').QueryResultRow>(text: string, values: unknown[] = []) =>
    query<T>(leo.database, text, values);
  const counts = () =>
    sql<{ cases: string; facts: string; subjects: string }>(
      `SELECT (SELECT count(*) FROM cases)::text AS cases,
              (SELECT count(*) FROM fact_records)::text AS facts,
              (SELECT count(*) FROM subjects)::text AS subjects`,
    );

  async function token(body: Record<string, string>): Promise<string> {
    const response = await request(http()).post('/v1/dev/token').send(body).expect(200);
    return `Bearer ${(response.body as { accessToken: string }).accessToken}`;
  }

  /** `depth` arrays, one inside the next, around `inner`, as JSON text (too deep to stringify). */
  function nested(depth: number, inner = '1'): string {
    return `${'['.repeat(depth)}${inner}${']'.repeat(depth)}`;
  }

  beforeAll(async () => {
    leo = await startTestApp({ LEO_ROLE: 'all' });
    citizenToken = await token({ role: 'citizen', personalNumber: MOVER });
    adminToken = await token({ role: 'admin', subject: 'admin-input' });
  });
  afterAll(async () => {
    await leo.close();
  });

  it('records a valid null answer (a dwelling without an apartment number) as null', async () => {
    const opened = await request(http())
      .post('/v1/cases')
      .set('Authorization', citizenToken)
      .send({
        lifeEvent: 'move-house',
        answers: {
          'move.newAddress': { street: 'Ringvägen 3', postalCode: '753 20', town: 'Uppsala' },
          'move.date': '2026-12-20',
          'move.apartmentNumber': null,
        },
      })
      .expect(201);
    const caseId = (opened.body as { id: string }).id;
    await waitUntil(
      async () =>
        (
          await sql(
            "SELECT 1 FROM fact_records WHERE case_id = $1 AND fact_key = 'move.apartmentNumber'",
            [caseId],
          )
        ).length > 0,
    );
    const [record] = await sql<{ value: unknown; is_json_null: boolean }>(
      `SELECT value, jsonb_typeof(value) = 'null' AS is_json_null FROM fact_records
        WHERE case_id = $1 AND fact_key = 'move.apartmentNumber'`,
      [caseId],
    );
    expect(record).toEqual({ value: null, is_json_null: true });
    // The citizen is not asked it again: it is given, with null.
    const view = await request(http())
      .get(`/v1/cases/${caseId}`)
      .set('Authorization', citizenToken)
      .expect(200);
    const resolution = (
      view.body as {
        resolution?: {
          questions: Array<{ key: string }>;
          facts: Array<{ key: string; status: string }>;
        };
      }
    ).resolution;
    expect(resolution?.questions.map((q) => q.key)).not.toContain('move.apartmentNumber');
    expect(resolution?.facts.find((f) => f.key === 'move.apartmentNumber')?.status).toBe('given');
    // Settled (its look-ups answered) before the next test counts what changes.
    await waitUntil(
      async () =>
        (await sql("SELECT 1 FROM lookups WHERE case_id = $1 AND state = 'pending'", [caseId]))
          .length === 0,
    );
  });

  it('refuses a body nested thousands of levels deep with 400, naming it, and changes nothing', async () => {
    const before = await counts();
    for (const [method, url, body] of [
      ['post', '/v1/cases', `{"lifeEvent":"move-house","answers":{"move.date":${nested(5_000)}}}`],
      ['post', '/v1/cases', nested(5_000, '{"lifeEvent":"move-house"}')],
      [
        'put',
        '/v1/admin/fact-types/person.nickname',
        `{"key":"person.nickname","schema":${nested(5_000)}}`,
      ],
    ] as const) {
      const response = await request(http())
        [method](url)
        .set('Authorization', url.startsWith('/v1/admin') ? adminToken : citizenToken)
        .set('Content-Type', 'application/json')
        .send(body)
        .expect(400);
      expect(response.body).toMatchObject({ code: 'too-deep' });
    }
    expect(await counts()).toEqual(before);
  });

  it('refuses a cursor whose time Postgres cannot hold with 400, on every paged route', async () => {
    const cursor = (at: string, id: string) => Buffer.from(`${at}|${id}`).toString('base64url');
    const uuid = '00000000-0000-4000-8000-000000000000';
    for (const at of ['-010000-01-01T00:00:00.000Z', '+275000-01-01T00:00:00.000Z']) {
      for (const [url, auth] of [
        [`/v1/admin/cases?cursor=${cursor(at, uuid)}`, adminToken],
        [`/v1/me/messages?cursor=${cursor(at, '12')}`, citizenToken],
        [`/v1/me/disclosures?cursor=${cursor(at, '12')}`, citizenToken],
      ] as const) {
        const response = await request(http()).get(url).set('Authorization', auth);
        expect({ url, at, status: response.status }).toEqual({ url, at, status: 400 });
      }
    }
  });

  it('tells every cache not to keep an API answer, which may carry personal data', async () => {
    for (const [url, auth] of [
      ['/v1/me/facts', citizenToken],
      ['/v1/cases', citizenToken],
      ['/v1/admin/cases', adminToken],
      ['/v1/cases/not-a-uuid', citizenToken],
    ] as const) {
      const response = await request(http()).get(url).set('Authorization', auth);
      expect({ url, cache: response.headers['cache-control'] }).toEqual({
        url,
        cache: 'no-store',
      });
    }
  });

  it('adds no revision for a catalogue entry PUT again as it is', async () => {
    const admin = (method: 'get' | 'put', url: string) =>
      request(http())[method](url).set('Authorization', adminToken);
    const current = await admin('get', '/v1/admin/agencies/transportstyrelsen').expect(200);
    const { entry, revision } = current.body as { entry: object; revision: number };
    for (let i = 0; i < 2; i += 1) {
      const again = await admin('put', '/v1/admin/agencies/transportstyrelsen')
        .send(entry)
        .expect(200);
      expect((again.body as { revision: number }).revision).toBe(revision);
    }
    const fact = await admin('get', '/v1/admin/fact-types/person.name').expect(200);
    const factBody = fact.body as { entry: object; revision: number };
    const factAgain = await admin('put', '/v1/admin/fact-types/person.name')
      .send(factBody.entry)
      .expect(200);
    expect((factAgain.body as { revision: number }).revision).toBe(factBody.revision);
    const revisions = await admin('get', '/v1/admin/agencies/transportstyrelsen/revisions').expect(
      200,
    );
    expect(JSON.stringify(revisions.body).match(/"revision":/g)).toHaveLength(revision);
  });

  it('answers 503 with Retry-After while the database refuses connections, and serves again after', async () => {
    const refuse = (allow: boolean) =>
      withAdmin(async (admin) => {
        const name = admin.escapeIdentifier(leo.database.name);
        await admin.query(`ALTER DATABASE ${name} ALLOW_CONNECTIONS ${allow ? 'true' : 'false'}`);
        if (!allow) {
          await admin.query(
            'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1',
            [leo.database.name],
          );
        }
      });
    const facts = () => request(http()).get('/v1/me/facts').set('Authorization', citizenToken);
    await refuse(false);
    try {
      const response = await facts();
      expect(response.status).toBe(503);
      expect(response.headers['retry-after']).toBe('5');
      expect(response.body).toMatchObject({ code: 'database-unavailable' });
    } finally {
      await refuse(true);
    }
    await waitUntil(async () => (await facts()).status === 200);
  });

  it('writes nothing for a citizen leo has never seen who only reads', async () => {
    const stranger = await token({ role: 'citizen', personalNumber: '197311249986' });
    const before = await counts();
    const get = (url: string) => request(http()).get(url).set('Authorization', stranger);
    await get('/v1/cases/00000000-0000-4000-8000-000000000000').expect(404);
    expect((await get('/v1/cases').expect(200)).body).toMatchObject({ cases: [] });
    expect((await get('/v1/me/facts').expect(200)).body).toMatchObject({ facts: [] });
    await get('/v1/me/disclosures').expect(200);
    await get('/v1/me/messages').expect(200);
    await get('/v1/life-events').expect(200);
    await request(http())
      .post('/v1/cases/00000000-0000-4000-8000-000000000000/cancel')
      .set('Authorization', stranger)
      .send({ reason: 'x' })
      .expect(404);
    expect(await counts()).toEqual(before);
  });

  it('shows a fact only the citizen can give as to be asked, never as being looked up', async () => {
    const opened = await request(http())
      .post('/v1/cases')
      .set('Authorization', citizenToken)
      .send({ lifeEvent: 'start-business', answers: {} })
      .expect(201);
    const facts = (
      opened.body as { resolution?: { facts: Array<{ key: string; status: string }> } }
    ).resolution?.facts;
    const citizenFacts = ['business.name', 'business.legalForm', 'business.sniCode'];
    expect(
      facts?.filter((f) => citizenFacts.includes(f.key)).map((f) => [f.key, f.status]),
    ).toEqual(citizenFacts.map((key) => [key, 'to-ask']));
    // What an agency is asked for is shown as being looked up.
    expect(facts?.find((f) => f.key === 'person.address')?.status).toMatch(/^look(ing-up|ed-up)$/);
  });

  it('makes a case creation with an Idempotency-Key safe to retry, and refuses the key for another request', async () => {
    const founder = await token({ role: 'citizen', personalNumber: '197311249986' });
    const create = (key: string | undefined, name: string) => {
      const call = request(http()).post('/v1/cases').set('Authorization', founder);
      if (key !== undefined) call.set('Idempotency-Key', key);
      return call.send({ lifeEvent: 'start-business', answers: { 'business.name': name } });
    };
    const casesOf = async () =>
      (await request(http()).get('/v1/cases').set('Authorization', founder).expect(200)).body as {
        cases: Array<{ id: string }>;
      };

    const first = await create('order-4711', 'Kaffe AB').expect(201);
    expect(first.headers['idempotent-replayed']).toBeUndefined();
    const again = await create('order-4711', 'Kaffe AB').expect(201);
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect((again.body as { id: string }).id).toBe((first.body as { id: string }).id);
    expect((await casesOf()).cases).toHaveLength(1);

    const other = await create('order-4711', 'Te AB').expect(422);
    expect(other.body).toMatchObject({ code: 'idempotency-key-reused' });
    expect((await casesOf()).cases).toHaveLength(1);

    // The same key from another citizen is theirs: a case of their own.
    const theirs = await request(http())
      .post('/v1/cases')
      .set('Authorization', citizenToken)
      .set('Idempotency-Key', 'order-4711')
      .send({ lifeEvent: 'start-business', answers: { 'business.name': 'Kaffe AB' } })
      .expect(201);
    expect((theirs.body as { id: string }).id).not.toBe((first.body as { id: string }).id);

    for (const bad of ['', 'x'.repeat(256), 'två ord']) {
      const refused = await create(bad, 'Kaffe AB').expect(400);
      expect(refused.body.errors).toEqual([expect.objectContaining({ path: 'Idempotency-Key' })]);
    }
    expect((await casesOf()).cases).toHaveLength(1);
  });

  it('finds the case a first attempt made though its answer was lost, instead of making a second', async () => {
    const founder = await token({ role: 'citizen', personalNumber: '197311249986' });
    // The first attempt: the case is made (with the key's id), then the process dies before it
    // answers or records the key.
    const listed = (
      await request(http()).get('/v1/cases').set('Authorization', founder).expect(200)
    ).body as { cases: Array<{ id: string }> };
    const [subject] = await sql<{ id: string }>(
      'SELECT subject_id AS id FROM cases WHERE id = $1',
      [listed.cases[0]?.id],
    );
    expect(subject).toBeDefined();
    const caseId = caseIdForKey(subject?.id ?? '', keyDigest('lost-answer-1'));
    await leo.app.get(EngineService).openCase({
      subjectId: subject?.id ?? '',
      lifeEventKey: 'start-business',
      personalNumber: '197311249986',
      answers: { 'business.name': 'Förlorad AB' },
      caseId,
    });
    const retried = await request(http())
      .post('/v1/cases')
      .set('Authorization', founder)
      .set('Idempotency-Key', 'lost-answer-1')
      .send({ lifeEvent: 'start-business', answers: { 'business.name': 'Förlorad AB' } })
      .expect(201);
    expect(retried.headers['idempotent-replayed']).toBe('true');
    expect((retried.body as { id: string }).id).toBe(caseId);
  });
});
