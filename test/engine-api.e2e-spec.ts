import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import request from 'supertest';
import { EngineRepository } from '../src/engine/engine.repository.js';
import { EngineService } from '../src/engine/engine.service.js';
import { QueueService } from '../src/queue/queue.service.js';
import {
  F_TAX_STATUS,
  startCase,
  scriptedAgencies,
  sql,
  waitForCase,
  waitForStep,
} from './support/engine-harness.js';
import { startTestApp, type TestApp } from './support/test-env.js';

/**
 * The engine's HTTP surface with the roles split as in production: an `api` replica serving
 * agencies and administrators, an `engine` replica applying results, on one Postgres and Redis.
 */
describe('agency decisions and case administration over HTTP', () => {
  let engineRole: TestApp;
  let api: TestApp;
  const tokens: Record<string, string> = {};
  const http = (): Parameters<typeof request>[0] =>
    api.app.getHttpServer() as Parameters<typeof request>[0];

  async function token(body: Record<string, string>): Promise<string> {
    const response = await request(http()).post('/v1/dev/token').send(body).expect(200);
    return (response.body as { accessToken: string }).accessToken;
  }

  /** A case whose F-tax step is awaiting Skatteverket's decision. */
  async function caseAwaitingFTax(): Promise<{ caseId: string; stepRunId: string }> {
    const caseId = await startCase(
      engineRole.app.get(EngineService),
      engineRole.app.get(EngineRepository),
    );
    await waitForStep(engineRole.database, caseId, 'f-tax', 'awaiting-decision');
    const [run] = await sql<{ id: string }>(
      engineRole.database,
      "SELECT id FROM step_runs WHERE case_id = $1 AND step_id = 'f-tax'",
      [caseId],
    );
    return { caseId, stepRunId: run?.id ?? '' };
  }

  beforeAll(async () => {
    engineRole = await startTestApp({ LEO_ROLE: 'engine' });
    api = await startTestApp(
      { LEO_ROLE: 'api', QUEUE_PREFIX: engineRole.config.queue.prefix },
      { database: engineRole.database },
    );
    const agencies = scriptedAgencies(engineRole.app.get(QueueService), [
      'bolagsverket',
      'skatteverket',
      'kommun-0780',
    ]);
    agencies.setScript((job) =>
      job.stepId === 'f-tax'
        ? { outcome: 'pending', reference: `SKV-${job.stepRunId.slice(0, 8)}` }
        : undefined,
    );
    tokens.skatteverket = await token({ role: 'agency', agency: 'skatteverket' });
    tokens.bolagsverket = await token({ role: 'agency', agency: 'bolagsverket' });
    tokens.admin = await token({ role: 'admin', subject: 'admin-eva' });
    tokens.citizen = await token({ role: 'citizen', personalNumber: '199012119948' });
  });
  afterAll(async () => {
    await api.close();
    await engineRole.close();
  });

  const decide = (who: string, body: object): request.Test =>
    request(http())
      .post('/v1/agency/decisions')
      .set('Authorization', `Bearer ${tokens[who] ?? ''}`)
      .send(body);

  it('completes a case when Skatteverket reports its F-tax decision over REST', async () => {
    const { caseId, stepRunId } = await caseAwaitingFTax();
    await decide('skatteverket', {
      stepRunId,
      outcome: 'completed',
      produced: { 'business.fTaxStatus': F_TAX_STATUS },
      reference: 'SKV-2026-1',
    })
      .expect(200)
      .expect({ applied: true });
    await waitForCase(engineRole.database, caseId, ['completed']);
    const [fact] = await sql<{ value: unknown; agency: string }>(
      engineRole.database,
      "SELECT value, agency FROM fact_records WHERE case_id = $1 AND fact_key = 'business.fTaxStatus'",
      [caseId],
    );
    expect(fact).toEqual({ value: F_TAX_STATUS, agency: 'skatteverket' });
    // Decided once: a second report is a conflict and changes nothing.
    await decide('skatteverket', {
      stepRunId,
      outcome: 'rejected',
      code: 'late',
      reason: 'too late',
    }).expect(409);
  });

  it('lets an agency decide only its own steps, and changes nothing otherwise', async () => {
    const { caseId, stepRunId } = await caseAwaitingFTax();
    // The other steps of the case go on meanwhile: only the F-tax step's history must not move.
    const fTaxEvents = (): Promise<unknown[]> =>
      sql(
        engineRole.database,
        "SELECT count(*) AS n FROM case_events WHERE case_id = $1 AND step_id = 'f-tax'",
        [caseId],
      );
    const before = await fTaxEvents();
    await decide('bolagsverket', {
      stepRunId,
      outcome: 'completed',
      produced: { 'business.fTaxStatus': F_TAX_STATUS },
    }).expect(404);
    await request(http())
      .post('/v1/agency/decisions')
      .set('Authorization', `Bearer ${tokens.citizen ?? ''}`)
      .send({ stepRunId, outcome: 'completed', produced: {} })
      .expect(403);
    await request(http())
      .post('/v1/agency/decisions')
      .send({ stepRunId, outcome: 'completed', produced: {} })
      .expect(401);
    expect(await fTaxEvents()).toEqual(before);
    await waitForStep(engineRole.database, caseId, 'f-tax', 'awaiting-decision');
  });

  it.each([
    [{ outcome: 'completed', produced: {} }, 'stepRunId'],
    [{ stepRunId: 'not-a-uuid', outcome: 'completed', produced: {} }, 'stepRunId'],
    [{ stepRunId: '00000000-0000-4000-8000-000000000000', outcome: 'maybe' }, 'outcome'],
    [{ stepRunId: '00000000-0000-4000-8000-000000000000', outcome: 'rejected' }, 'code'],
    [{ stepRunId: '00000000-0000-4000-8000-000000000000', outcome: 'completed' }, 'produced'],
  ])('answers %j with 400 naming %s', async (body, field) => {
    const response = await decide('skatteverket', body).expect(400);
    expect((response.body.errors as Array<{ path: string }>).map((e) => e.path)).toContain(field);
  });

  it('answers a decision with facts the step does not produce, or bad values, with 400 and keeps waiting', async () => {
    const { caseId, stepRunId } = await caseAwaitingFTax();
    const extra = await decide('skatteverket', {
      stepRunId,
      outcome: 'completed',
      produced: { 'business.fTaxStatus': F_TAX_STATUS, 'business.vatNumber': 'SE901211994801' },
    }).expect(400);
    expect((extra.body.errors as Array<{ path: string }>).map((e) => e.path)).toContain(
      'produced.business.vatNumber',
    );
    const bad = await decide('skatteverket', {
      stepRunId,
      outcome: 'completed',
      produced: { 'business.fTaxStatus': { taxForm: 'X', validFrom: 'soon' } },
    }).expect(400);
    expect(
      (bad.body.errors as Array<{ path: string }>).every((e) =>
        e.path.startsWith('produced.business.fTaxStatus'),
      ),
    ).toBe(true);
    await waitForStep(engineRole.database, caseId, 'f-tax', 'awaiting-decision');
    await decide('skatteverket', {
      stepRunId,
      outcome: 'completed',
      produced: { 'business.fTaxStatus': F_TAX_STATUS },
    }).expect(200);
    await waitForCase(engineRole.database, caseId, ['completed']);
  });

  it('lets an administrator find a case, read its history, and retry a rejected step', async () => {
    const { caseId, stepRunId } = await caseAwaitingFTax();
    await decide('skatteverket', {
      stepRunId,
      outcome: 'rejected',
      code: 'incomplete-application',
      reason: 'The turnover is missing.',
    }).expect(200);
    await waitForCase(engineRole.database, caseId, ['action-required']);

    const admin = `Bearer ${tokens.admin ?? ''}`;
    const page = await request(http())
      .get('/v1/admin/cases?status=action-required&lifeEvent=start-business&agency=skatteverket')
      .set('Authorization', admin)
      .expect(200);
    expect((page.body.cases as Array<{ id: string }>).map((c) => c.id)).toContain(caseId);

    const detail = await request(http())
      .get(`/v1/admin/cases/${caseId}`)
      .set('Authorization', admin)
      .expect(200);
    expect(
      (detail.body.steps as Array<{ stepId: string }>).find((s) => s.stepId === 'f-tax'),
    ).toMatchObject({
      state: 'failed',
      lastError: 'incomplete-application',
    });
    expect((detail.body.history as Array<{ type: string }>).map((e) => e.type)).toEqual(
      expect.arrayContaining([
        'case-opened',
        'case-submitted',
        'step-dispatched',
        'step-awaiting-decision',
        'decision-reported',
        'step-failed',
        'case-action-required',
      ]),
    );
    // The history has no personal data: no names, numbers or addresses.
    expect(JSON.stringify(detail.body.history)).not.toMatch(/Lindqvist|199012119948|Storgatan/);

    await request(http())
      .post(`/v1/admin/cases/${caseId}/steps/f-tax/retry`)
      .set('Authorization', admin)
      .expect(200);
    await waitForStep(engineRole.database, caseId, 'f-tax', 'awaiting-decision');
    const [run] = await sql<{ attempt: number }>(
      engineRole.database,
      'SELECT attempt FROM step_runs WHERE id = $1',
      [stepRunId],
    );
    expect(run?.attempt).toBe(2);
    await request(http())
      .post(`/v1/admin/cases/${caseId}/steps/f-tax/retry`)
      .set('Authorization', admin)
      .expect(409);
  });

  it('lets an administrator cancel a case, once', async () => {
    const { caseId } = await caseAwaitingFTax();
    const admin = `Bearer ${tokens.admin ?? ''}`;
    const cancelled = await request(http())
      .post(`/v1/admin/cases/${caseId}/cancel`)
      .set('Authorization', admin)
      .send({ reason: 'Duplicate case' })
      .expect(200);
    expect(cancelled.body.status).toBe('cancelled');
    // Attributed to the administrator who did it, not to "an administrator".
    expect(
      (cancelled.body.history as Array<{ type: string; data: unknown }>).find(
        (e) => e.type === 'case-cancelled',
      )?.data,
    ).toEqual({ reason: 'Duplicate case', by: 'admin', actor: 'admin-eva' });
    await request(http())
      .post(`/v1/admin/cases/${caseId}/cancel`)
      .set('Authorization', admin)
      .send({ reason: 'Again' })
      .expect(409);
    await request(http())
      .post(`/v1/admin/cases/${caseId}/cancel`)
      .set('Authorization', admin)
      .send({})
      .expect(400);
  });

  it('answers bad case ids, filters and cursors with 400, unknown cases with 404, and non-admins with 403', async () => {
    const admin = `Bearer ${tokens.admin ?? ''}`;
    expect(
      (await request(http()).get('/v1/admin/cases/nope').set('Authorization', admin).expect(400))
        .body.errors[0].path,
    ).toBe('id');
    await request(http())
      .get('/v1/admin/cases/00000000-0000-4000-8000-000000000000')
      .set('Authorization', admin)
      .expect(404);
    for (const [query, field] of [
      ['status=lost', 'status'],
      ['limit=0', 'limit'],
      ['limit=abc', 'limit'],
      ['from=yesterday', 'from'],
      ['cursor=zzz', 'cursor'],
      ['colour=red', 'colour'],
    ]) {
      const response = await request(http())
        .get(`/v1/admin/cases?${query ?? ''}`)
        .set('Authorization', admin)
        .expect(400);
      expect((response.body.errors as Array<{ path: string }>).map((e) => e.path)).toContain(field);
    }
    await request(http())
      .get('/v1/admin/cases')
      .set('Authorization', `Bearer ${tokens.skatteverket ?? ''}`)
      .expect(403);
    await request(http())
      .get('/v1/admin/cases')
      .set('Authorization', `Bearer ${tokens.citizen ?? ''}`)
      .expect(403);
  });

  it('pages through cases with a cursor', async () => {
    const admin = `Bearer ${tokens.admin ?? ''}`;
    const first = await request(http())
      .get('/v1/admin/cases?limit=2')
      .set('Authorization', admin)
      .expect(200);
    expect(first.body.cases).toHaveLength(2);
    const second = await request(http())
      .get(`/v1/admin/cases?limit=2&cursor=${String(first.body.next)}`)
      .set('Authorization', admin)
      .expect(200);
    const ids = [...first.body.cases, ...second.body.cases].map((c: { id: string }) => c.id);
    expect(new Set(ids).size).toBe(ids.length);
  });
});
