import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { UnrecoverableError, Worker } from 'bullmq';
import request from 'supertest';
import { STEP_EXECUTE, agencyQueueName, type AgencyJobs, type StepJob } from '#agency-contract';
import { QueueService } from '../src/queue/queue.service.js';
import { redisOptions } from '../src/queue/redis-connection.js';
import { QueueBoard } from '../src/queue-dashboard/queue-board.js';
import { startTestApp, type TestApp } from './support/test-env.js';

type Http = Parameters<typeof request>[0];

const PERSONAL_NUMBER = '199012119948';

function stepJob(id: string): StepJob {
  return {
    caseId: `case-${id}`,
    stepRunId: id,
    stepId: 'register-vehicle',
    action: 'register-vehicle',
    attempt: 1,
    idempotencyKey: id,
    facts: { 'person.personalNumber': PERSONAL_NUMBER, 'person.name': { given: 'Tolvan' } },
  };
}

/** The `name=value` and attributes of a Set-Cookie header. */
function setCookie(header: unknown): { value: string; attributes: string[] } {
  const raw = Array.isArray(header) ? String(header[0]) : String(header);
  const [pair = '', ...attributes] = raw.split(';').map((p) => p.trim());
  return { value: pair, attributes };
}

describe('the queue dashboard', () => {
  let leo: TestApp;
  const tokens: Record<string, string> = {};
  const http = (): Http => leo.app.getHttpServer() as Http;
  const transport = agencyQueueName('transportstyrelsen');

  beforeAll(async () => {
    // The api role consumes no agency queue: jobs put there stay where the test put them.
    leo = await startTestApp({ LEO_ROLE: 'api' });
    for (const [name, body] of Object.entries({
      admin: { role: 'admin', subject: 'ops-anna' },
      citizen: { role: 'citizen', personalNumber: PERSONAL_NUMBER },
      agency: { role: 'agency', agency: 'transportstyrelsen' },
    })) {
      const response = await request(http()).post('/v1/dev/token').send(body).expect(200);
      tokens[name] = (response.body as { accessToken: string }).accessToken;
    }
    const queues = leo.app.get(QueueService);
    await queues.queue<AgencyJobs>(transport).add(STEP_EXECUTE, stepJob('waiting-1'), {
      jobId: 'waiting-1',
    });
    // A failed job, to try retrying and cleaning from the board.
    const pension = agencyQueueName('pensionsmyndigheten');
    await queues.queue<AgencyJobs>(pension).add(STEP_EXECUTE, stepJob('failed-1'), {
      jobId: 'failed-1',
    });
    const failing = new Worker(
      pension,
      async () => {
        throw new UnrecoverableError('refused');
      },
      { connection: redisOptions(leo.config.redis.url), prefix: leo.config.queue.prefix },
    );
    await new Promise<void>((resolve) => {
      failing.once('failed', () => {
        resolve();
      });
    });
    await failing.close();
  });
  afterAll(async () => {
    await leo.close();
  });

  const bearer = (name: string): [string, string] => [
    'Authorization',
    `Bearer ${tokens[name] ?? 'missing'}`,
  ];

  describe('refuses', () => {
    it.each([
      '/admin/queues',
      '/admin/queues/api/queues',
      '/admin/queues/static/favicon-32x32.png',
    ])('a request without a token or session: %s', async (path) => {
      const response = await request(http()).get(path).expect(401);
      expect(response.headers['content-type']).toContain('application/problem+json');
      expect(response.body).toMatchObject({ status: 401, code: 'missing-token' });
      expect(response.headers['www-authenticate']).toBe('Bearer');
    });

    it.each(['citizen', 'agency'])('a %s token', async (who) => {
      const response = await request(http())
        .get('/admin/queues/api/queues')
        .set(...bearer(who))
        .expect(403);
      expect(response.headers['content-type']).toContain('application/problem+json');
      expect(response.body).toMatchObject({ status: 403, code: 'role-not-allowed' });
    });

    it('a token that does not verify, or is not a bearer token', async () => {
      await request(http())
        .get('/admin/queues')
        .set('Authorization', `Bearer ${String(tokens.admin).slice(0, -4)}AAAA`)
        .expect(401);
      const basic = await request(http())
        .get('/admin/queues')
        .set('Authorization', 'Basic YWRtaW46YWRtaW4=')
        .expect(401);
      expect(basic.body.code).toBe('missing-token');
    });

    it('a token in the query string', async () => {
      for (const name of ['token', 'access_token', 'authorization']) {
        await request(http())
          .get(`/admin/queues?${name}=${String(tokens.admin)}`)
          .expect(401);
      }
    });

    it('a session cookie it did not issue', async () => {
      const response = await request(http())
        .get('/admin/queues')
        .set('Cookie', `leo_queue_dashboard=${'A'.repeat(43)}`)
        .expect(401);
      expect(response.body.code).toBe('dashboard-session-expired');
    });

    it('a session to anyone but an administrator', async () => {
      await request(http()).post('/v1/admin/queue-dashboard/session').expect(401);
      await request(http())
        .post('/v1/admin/queue-dashboard/session')
        .set(...bearer('citizen'))
        .expect(403);
    });
  });

  it('serves an administrator with a bearer token', async () => {
    const page = await request(http())
      .get('/admin/queues')
      .set(...bearer('admin'))
      .expect(200);
    expect(page.headers['content-type']).toContain('text/html');
    expect(page.text).toContain('<base href="/admin/queues/"');
    expect(page.headers['cache-control']).toBe('no-store');
    expect(page.headers['x-powered-by']).toBeUndefined();
    expect(page.headers['x-frame-options']).toBe('DENY');
    // The page links Google's fonts: the browser must not fetch them.
    expect(page.text).toContain('fonts.googleapis.com');
    expect(page.headers['content-security-policy']).toContain("style-src 'self' 'unsafe-inline'");
    expect(page.headers['content-security-policy']).toContain("frame-ancestors 'none'");

    const api = await request(http())
      .get('/admin/queues/api/queues')
      .set(...bearer('admin'))
      .expect(200);
    const queues = (api.body as { queues: Array<{ name: string; readOnlyMode: boolean }> }).queues;
    expect(queues.map((q) => q.name)).toEqual(
      expect.arrayContaining(['agency.bolagsverket', transport]),
    );
    // One per agency, each onboarded municipality one of its own (decision 0024), and none for
    // the municipalities as a whole: the agencies answer on streams of their own, not on a queue.
    const names = queues.map((q) => q.name);
    expect(names).toContain('agency.kommun-0180');
    expect(names).not.toContain('agency.kommun');
    expect(names.filter((name) => !name.startsWith('agency.kommun-'))).toHaveLength(6);
    expect(names.filter((name) => name.startsWith('agency.kommun-'))).toHaveLength(27);
    for (const queue of queues)
      expect([queue.name, queue.readOnlyMode]).toEqual([queue.name, true]);
  });

  it('serves a browser with the session cookie, until it is closed', async () => {
    const opened = await request(http())
      .post('/v1/admin/queue-dashboard/session')
      .set(...bearer('admin'))
      .expect(201);
    expect(opened.body).toEqual({ path: '/admin/queues', expiresAt: expect.any(String) });
    const expiresIn = Date.parse(String(opened.body.expiresAt)) - Date.now();
    expect(expiresIn).toBeGreaterThan(14 * 60_000);
    expect(expiresIn).toBeLessThanOrEqual(15 * 60_000);

    const cookie = setCookie(opened.headers['set-cookie']);
    expect(cookie.value).toMatch(/^leo_queue_dashboard=[A-Za-z0-9_-]{43}$/);
    expect(cookie.attributes).toEqual(
      expect.arrayContaining(['Max-Age=900', 'Path=/admin/queues', 'HttpOnly', 'SameSite=Strict']),
    );
    // Secure only in production (a test server speaks plain HTTP).
    expect(cookie.attributes).not.toContain('Secure');

    const page = await request(http()).get('/admin/queues').set('Cookie', cookie.value).expect(200);
    expect(page.text).toContain('<base href="/admin/queues/"');
    await request(http())
      .get(`/admin/queues/api/queues?activeQueue=${transport}`)
      .set('Cookie', `other=1; ${cookie.value}`)
      .expect(200);

    const closed = await request(http())
      .delete('/v1/admin/queue-dashboard/session')
      .set(...bearer('admin'))
      .set('Cookie', cookie.value)
      .expect(204);
    expect(setCookie(closed.headers['set-cookie']).value).toBe('leo_queue_dashboard=');
    const after = await request(http())
      .get('/admin/queues')
      .set('Cookie', cookie.value)
      .expect(401);
    expect(after.body.code).toBe('dashboard-session-expired');
  });

  it('never shows fact values in job data', async () => {
    const response = await request(http())
      .get(`/admin/queues/api/queues?activeQueue=${transport}&status=waiting&page=1&jobsPerPage=10`)
      .set(...bearer('admin'))
      .expect(200);
    const queue = (
      response.body as {
        queues: Array<{ name: string; jobs: Array<{ id: string; data: StepJob }> }>;
      }
    ).queues.find((q) => q.name === transport);
    expect(queue?.jobs.map((j) => j.id)).toEqual(['waiting-1']);
    expect(queue?.jobs[0]?.data.facts).toEqual({
      'person.personalNumber': '(hidden)',
      'person.name': '(hidden)',
    });
    expect(queue?.jobs[0]?.data.stepRunId).toBe('waiting-1');
    expect(response.text).not.toContain(PERSONAL_NUMBER);
    expect(response.text).not.toContain('Tolvan');

    const job = await request(http())
      .get(`/admin/queues/api/queues/${transport}/waiting-1`)
      .set(...bearer('admin'))
      .expect(200);
    expect(job.text).toContain('person.personalNumber');
    expect(job.text).not.toContain(PERSONAL_NUMBER);
  });

  it('cannot retry, clean, add or pause anything', async () => {
    const pension = agencyQueueName('pensionsmyndigheten');
    const attempts: Array<[method: 'put' | 'post' | 'patch' | 'delete', path: string]> = [
      ['put', `/admin/queues/api/queues/${pension}/failed-1/retry`],
      ['put', `/admin/queues/api/queues/${pension}/failed-1/clean`],
      ['put', `/admin/queues/api/queues/${pension}/retry/failed`],
      ['put', `/admin/queues/api/queues/${pension}/clean/failed`],
      ['put', `/admin/queues/api/queues/${transport}/pause`],
      ['put', `/admin/queues/api/queues/${transport}/empty`],
      ['post', `/admin/queues/api/queues/${transport}/add`],
      ['patch', `/admin/queues/api/queues/${transport}/waiting-1/update-data`],
      ['delete', `/admin/queues/api/queues/${transport}/waiting-1`],
    ];
    for (const [method, path] of attempts) {
      const response = await request(http())
        [method](path)
        .set(...bearer('admin'))
        .send({ name: 'x', data: {} });
      expect([method, path, response.status]).toEqual([method, path, 405]);
      expect(response.headers['content-type']).toContain('application/problem+json');
      expect(response.headers.allow).toBe('GET, HEAD');
    }
    const queues = leo.app.get(QueueService);
    expect(await (await queues.queue(pension).raw.getJob('failed-1'))?.getState()).toBe('failed');
    expect(await (await queues.queue(transport).raw.getJob('waiting-1'))?.getState()).toBe(
      'waiting',
    );
    expect(await queues.queue(transport).raw.isPaused()).toBe(false);
    expect(await queues.queue(transport).raw.getJobCounts('waiting')).toEqual({ waiting: 1 });
  });

  it("is read-only in bull-board too, behind leo's own method check", async () => {
    const queues = leo.app.get(QueueService);
    const pension = agencyQueueName('pensionsmyndigheten');
    const board = new QueueBoard([queues.queue(pension).raw]);
    // The board's own Express application, without leo's middleware in front of it.
    const bare = board.handler as unknown as Http;
    const retry = await request(bare).put(`/api/queues/${pension}/failed-1/retry`);
    expect(retry.status).toBe(405);
    expect(await (await queues.queue(pension).raw.getJob('failed-1'))?.getState()).toBe('failed');
  });

  it('is documented in the OpenAPI document', async () => {
    const docs = await request(http()).get('/docs-json').expect(200);
    const paths = docs.body.paths as Record<string, Record<string, unknown>>;
    expect(Object.keys(paths['/v1/admin/queue-dashboard/session'] ?? {}).sort()).toEqual([
      'delete',
      'post',
    ]);
    expect(Object.keys(paths['/metrics'] ?? {})).toEqual(['get']);
  });
});

describe('the queue dashboard outside the api role', () => {
  let engine: TestApp;
  beforeAll(async () => {
    engine = await startTestApp({ LEO_ROLE: 'engine' });
  });
  afterAll(async () => {
    await engine.close();
  });

  it('does not exist', async () => {
    const server = engine.app.getHttpServer() as Http;
    await request(server).get('/admin/queues').expect(404);
    await request(server).post('/v1/admin/queue-dashboard/session').expect(404);
  });
});
