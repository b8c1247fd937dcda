import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Redis } from 'ioredis';
import request from 'supertest';
import {
  LOOKUP_RESULT,
  STEP_RESULT,
  agencyQueueName,
  agencyResultsStreamKey,
  agencyUserScope,
  createAgencyWorker,
  resultEntryFields,
  stepJobId,
  type AgencyWorker,
  type ResultEntry,
} from '#agency-contract';
import { AclLogWatcher } from '../src/agency-access/acl-log-watcher.js';
import { AgencyCredentials } from '../src/agency-access/agency-credentials.service.js';
import { EngineService } from '../src/engine/engine.service.js';
import { OutboxRelay } from '../src/engine/outbox.relay.js';
import { QueueService } from '../src/queue/queue.service.js';
import { redisOptions } from '../src/queue/redis-connection.js';
import {
  F_TAX_STATUS,
  publishResult,
  registerAnswer,
  scriptedAgencies,
  sql,
  submitWithConsent,
  waitForCase,
  waitUntil,
  WORKLOAD_ANSWERS,
  WORKLOAD_ORG_NUMBER,
  WORKLOAD_PERSONAL_NUMBER,
  WORKLOAD_REGISTER,
  type ScriptedAgencies,
} from './support/engine-harness.js';
import { scrape } from './support/metrics.js';
import { deleteAgencyUsers, startTestApp, testRedisUrl, type TestApp } from './support/test-env.js';
import { EngineRepository } from '../src/engine/engine.repository.js';

interface Issued {
  id: string;
  agency: string;
  username: string;
  password: string;
  prefix: string;
  queue: string;
  resultsStream: string;
  revokedAt: string | null;
}

/**
 * Agencies as separate parties (decision 0022), tried as an attacker would: each adapter holds its
 * own credential, a Redis user that reaches its own queue and appends to its own results stream
 * only. Skatteverket's credential cannot read Bolagsverket's jobs, answer Bolagsverket's step, or
 * write outside its keys, and Bolagsverket's cannot answer Skatteverket's look-up; each attempt is
 * refused, counted and logged, and the case is unchanged. The same credential is enough to serve
 * Skatteverket's own steps and look-ups with the SDK. Roles split as in production.
 */
describe('agency credentials: each adapter acts only as its own agency', () => {
  let engineRole: TestApp;
  let api: TestApp;
  let agencies: ScriptedAgencies;
  let prefix: string;
  let admin: Redis;
  const connections: Redis[] = [];
  const issued: Record<string, Issued> = {};
  let adminToken = '';
  const http = (): Parameters<typeof request>[0] =>
    api.app.getHttpServer() as Parameters<typeof request>[0];

  /** A Redis connection as an agency's adapter, with its issued credential. */
  function connectAs(credential: Issued): Redis {
    const client = new Redis({
      ...redisOptions(testRedisUrl()),
      username: credential.username,
      password: credential.password,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
      lazyConnect: true,
    });
    client.on('error', () => undefined);
    connections.push(client);
    return client;
  }

  /** What Redis answers to the credential's AUTH, on a connection of its own: OK, or the error. */
  async function auth(credential: Issued): Promise<string> {
    const client = new Redis({ ...redisOptions(testRedisUrl()), maxRetriesPerRequest: 0 });
    client.on('error', () => undefined);
    try {
      return String(await client.call('AUTH', credential.username, credential.password));
    } catch (error) {
      return error instanceof Error ? error.message : String(error);
    } finally {
      client.disconnect();
    }
  }

  /** HTTP Basic with a credential (or another password). */
  const basic = (credential: Issued, password = credential.password): string =>
    `Basic ${Buffer.from(`${credential.username}:${password}`).toString('base64')}`;

  /** An answer as the fields of a stream entry, flat. */
  const entry = (answer: ResultEntry): string[] => Object.entries(resultEntryFields(answer)).flat();

  /** The Redis error a command gets, or undefined when it succeeds. */
  async function refusal(command: Promise<unknown>): Promise<string | undefined> {
    try {
      await command;
      return undefined;
    } catch (error) {
      return error instanceof Error ? error.message : String(error);
    }
  }

  /** What a refused attempt may have changed: the case's history, steps and look-ups. */
  async function snapshot(caseId: string): Promise<unknown> {
    const [events, steps, lookups, facts] = await Promise.all([
      sql(
        engineRole.database,
        'SELECT seq, type FROM case_events WHERE case_id = $1 ORDER BY seq',
        [caseId],
      ),
      sql(
        engineRole.database,
        'SELECT id, state, attempt FROM step_runs WHERE case_id = $1 ORDER BY id',
        [caseId],
      ),
      sql(engineRole.database, 'SELECT id, state FROM lookups WHERE case_id = $1 ORDER BY id', [
        caseId,
      ]),
      sql(engineRole.database, 'SELECT id FROM fact_records WHERE case_id = $1 ORDER BY id', [
        caseId,
      ]),
    ]);
    return { events, steps, lookups, facts };
  }

  /** The refusals counted for `agency` with `reason`, over both processes. */
  async function refused(agency: string, reason: string): Promise<number> {
    let total = 0;
    for (const app of [engineRole, api]) {
      total += (await scrape(app.app)).value('leo_agency_refused_total', { agency, reason });
    }
    return total;
  }

  beforeAll(async () => {
    engineRole = await startTestApp({ LEO_ROLE: 'engine' });
    prefix = engineRole.config.queue.prefix;
    api = await startTestApp(
      { LEO_ROLE: 'api', QUEUE_PREFIX: prefix },
      { database: engineRole.database },
    );
    // Bolagsverket and the municipality answer through leo's own connection, as scripted; nobody
    // serves Skatteverket until its adapter starts with its credential.
    agencies = scriptedAgencies(engineRole.app.get(QueueService), ['bolagsverket', 'kommun-0780']);
    admin = new Redis(redisOptions(testRedisUrl()));
    const token = await request(http())
      .post('/v1/dev/token')
      .send({ role: 'admin', subject: 'admin-eva' })
      .expect(200);
    adminToken = (token.body as { accessToken: string }).accessToken;
  });
  afterAll(async () => {
    for (const client of connections) client.disconnect();
    // The users this run made (under its own prefix's scope) go with it.
    await deleteAgencyUsers(prefix);
    admin.disconnect();
    await api.close();
    await engineRole.close();
  });

  const issue = (agency: string, body: object = {}): request.Test =>
    request(http())
      .post(`/v1/admin/agencies/${agency}/credentials`)
      .set('Authorization', `Bearer ${adminToken}`)
      .send(body);

  it('issues one credential per agency, shows its password once, and lists it without', async () => {
    for (const agency of ['skatteverket', 'bolagsverket']) {
      const response = await issue(agency, { label: `${agency} adapter, test` }).expect(201);
      const body = response.body as Issued;
      expect(body).toMatchObject({
        agency,
        prefix,
        queue: agencyQueueName(agency),
        resultsStream: agencyResultsStreamKey(prefix, agency),
        redis: {
          host: new URL(testRedisUrl()).hostname,
          port: Number(new URL(testRedisUrl()).port || 6379),
          tls: false,
        },
        revokedAt: null,
      });
      expect(body.password).toMatch(/^[A-Za-z0-9_-]{43}$/);
      expect(body.username.startsWith(agencyUserScope(prefix))).toBe(true);
      issued[agency] = body;
    }
    const list = await request(http())
      .get('/v1/admin/agency-credentials')
      .set('Authorization', `Bearer ${adminToken}`)
      .expect(200);
    const listed = list.body as Array<Record<string, unknown>>;
    expect(listed.map((c) => c.agency).sort()).toEqual(['bolagsverket', 'skatteverket']);
    expect(JSON.stringify(listed)).not.toContain(issued.skatteverket?.password ?? '-');
    expect(listed.every((c) => !('password' in c) && c.issuedBy === 'admin-eva')).toBe(true);
    // Kept as a hash only.
    const stored = await sql(engineRole.database, 'SELECT * FROM agency_credentials');
    expect(JSON.stringify(stored)).not.toContain(issued.skatteverket?.password ?? '-');
  });

  it('refuses a credential for an agency that does not exist, or a label that is not one', async () => {
    const unknown = await issue('nosuchagency').expect(404);
    expect((unknown.body as { code: string }).code).toBe('agency-not-found');
    const bad = await issue('skatteverket', { label: 'x'.repeat(101) }).expect(400);
    expect(JSON.stringify(bad.body)).toContain('label');
    const rows = await sql<{ n: string }>(
      engineRole.database,
      'SELECT count(*)::text AS n FROM agency_credentials',
    );
    expect(rows[0]?.n).toBe('2');
  });

  let caseId = '';
  let worker: AgencyWorker | undefined;

  it("refuses Bolagsverket's answer to Skatteverket's look-up, and lets Skatteverket's own adapter answer it", async () => {
    const bolagsverket = issued.bolagsverket;
    const skatteverket = issued.skatteverket;
    if (!bolagsverket || !skatteverket) throw new Error('credentials not issued');
    const engine = engineRole.app.get(EngineService);
    const repository = engineRole.app.get(EngineRepository);
    const subjectId = await repository.createSubject();
    const opened = await engine.openCase({
      subjectId,
      lifeEventKey: 'start-business',
      personalNumber: WORKLOAD_PERSONAL_NUMBER,
      answers: WORKLOAD_ANSWERS,
    });
    caseId = opened.id;
    const [lookup] = await sql<{ id: string; attempt: number }>(
      engineRole.database,
      'SELECT id, attempt FROM lookups WHERE case_id = $1',
      [caseId],
    );
    if (!lookup) throw new Error('no look-up');
    const before = await snapshot(caseId);
    const start = await refused('bolagsverket', 'another-agency');
    const bv = connectAs(bolagsverket);
    const forged = (agency: string): ResultEntry => ({
      kind: LOOKUP_RESULT,
      result: {
        lookupId: lookup.id,
        attempt: lookup.attempt,
        agency,
        result: { outcome: 'found', facts: { 'person.address': 'Falsk gata 1, 111 11 Stockholm' } },
        reportedAt: new Date().toISOString(),
      },
    });
    // On Skatteverket's stream: not Bolagsverket's to write.
    expect(
      await refusal(
        bv.xadd(
          agencyResultsStreamKey(prefix, 'skatteverket'),
          '*',
          ...entry(forged('skatteverket')),
        ),
      ),
    ).toMatch(/NOPERM/);
    // On its own stream, in either agency's name: read, and refused by leo.
    for (const agency of ['skatteverket', 'bolagsverket']) {
      await bv.xadd(bolagsverket.resultsStream, '*', ...entry(forged(agency)));
    }
    await waitUntil(async () => (await refused('bolagsverket', 'another-agency')) - start >= 2);
    expect(await snapshot(caseId)).toEqual(before);

    // Skatteverket's adapter, with nothing but its credential, serves its look-ups and steps.
    worker = createAgencyWorker({
      agency: 'skatteverket',
      prefix,
      connection: {
        ...redisOptions(testRedisUrl()),
        username: skatteverket.username,
        password: skatteverket.password,
      },
      log: { info: () => undefined, warn: () => undefined, error: () => undefined },
      lookup: async (job) => registerAnswer(job),
      handlers: {
        'register-f-tax': async () => ({
          outcome: 'completed',
          produced: { 'business.fTaxStatus': F_TAX_STATUS },
        }),
        'register-vat': async () => ({
          outcome: 'completed',
          produced: { 'business.vatNumber': 'SE901211994801' },
        }),
        'register-employer': async () => ({
          outcome: 'completed',
          produced: { 'business.employerId': WORKLOAD_ORG_NUMBER },
        }),
      },
    });
    await waitUntil(async () => {
      const rows = await sql<{ state: string }>(
        engineRole.database,
        'SELECT state FROM lookups WHERE id = $1',
        [lookup.id],
      );
      return rows[0]?.state === 'answered';
    });
    // The address is the register's, not the forged one.
    const address = await sql<{ value: unknown; agency: string }>(
      engineRole.database,
      "SELECT value, agency FROM fact_records WHERE subject_id = $1 AND fact_key = 'person.address'",
      [subjectId],
    );
    expect(address).toEqual([
      { value: WORKLOAD_REGISTER['person.address'], agency: 'skatteverket' },
    ]);
  });

  it("keeps Skatteverket's credential out of Bolagsverket's jobs, its step and every key not its own", async () => {
    const skatteverket = issued.skatteverket;
    if (!skatteverket) throw new Error('credentials not issued');
    agencies.setScript((job) => (job.action === 'register-sole-trader' ? null : undefined));
    await submitWithConsent(engineRole.app.get(EngineService), caseId);
    await waitUntil(async () => agencies.received.some((j) => j.caseId === caseId));
    const job = agencies.received.find((j) => j.caseId === caseId);
    if (!job) throw new Error('no Bolagsverket job');
    // Once the relay has marked it dispatched (it does after the job is on the queue).
    await waitUntil(async () => {
      const rows = await sql<{ state: string }>(
        engineRole.database,
        'SELECT state FROM step_runs WHERE id = $1',
        [job.stepRunId],
      );
      return rows[0]?.state === 'dispatched';
    });
    const before = await snapshot(caseId);
    const aclBefore = await refused('skatteverket', 'redis-acl');
    const answerBefore = await refused('skatteverket', 'another-agency');
    const skv = connectAs(skatteverket);
    const bvQueue = `${prefix}:${agencyQueueName('bolagsverket')}`;
    const completed = (agency: string): ResultEntry => ({
      kind: STEP_RESULT,
      result: {
        stepRunId: job.stepRunId,
        attempt: job.attempt,
        agency,
        result: { outcome: 'completed', produced: { 'business.orgNumber': '559999-9999' } },
        reportedAt: new Date().toISOString(),
      },
    });
    const attempts: Array<[string, Promise<unknown>]> = [
      [
        "read Bolagsverket's job",
        skv.hgetall(`${bvQueue}:${stepJobId(job.stepRunId, job.attempt)}`),
      ],
      ["list Bolagsverket's jobs", skv.lrange(`${bvQueue}:wait`, 0, -1)],
      [
        "answer on Bolagsverket's stream",
        skv.xadd(
          agencyResultsStreamKey(prefix, 'bolagsverket'),
          '*',
          ...entry(completed('bolagsverket')),
        ),
      ],
      ['read its own results back', skv.xrange(skatteverket.resultsStream, '-', '+')],
      ['trim its own results', skv.xtrim(skatteverket.resultsStream, 'MAXLEN', 0)],
      [
        'write a dashboard session',
        skv.set(`${prefix}:queue-dashboard-session:x`, JSON.stringify({ subject: 'mallory' })),
      ],
      ['copy its key into another database', skv.copy(`${bvQueue}:x`, `${bvQueue}:y`, 'DB', 1)],
      [
        'run a script on another agency’s job',
        skv.eval(
          "return redis.call('HGETALL', KEYS[1])",
          1,
          `${bvQueue}:${stepJobId(job.stepRunId, job.attempt)}`,
        ),
      ],
      [
        'build another agency’s key inside a script',
        skv.eval(`return redis.call('LRANGE', '${bvQueue}:wait', 0, -1)`, 0),
      ],
      ['list every key', skv.keys('*')],
      ['scan the keys', skv.scan(0)],
      ['flush Redis', skv.flushall()],
      ['read the configuration', skv.config('GET', 'requirepass')],
      ['manage users', skv.call('ACL', 'SETUSER', 'mallory', 'on', '>x', '~*', '+@all')],
      ['subscribe to the case signals', skv.subscribe(`${prefix}:case-changes`)],
    ];
    for (const [what, attempt] of attempts) {
      expect([what, await refusal(attempt)]).toEqual([
        what,
        expect.stringMatching(/NOPERM|can't access|can't run/),
      ]);
    }
    // Its own stream takes the forged answers; leo refuses them.
    for (const agency of ['bolagsverket', 'skatteverket']) {
      await skv.xadd(skatteverket.resultsStream, '*', ...entry(completed(agency)));
    }
    await waitUntil(
      async () => (await refused('skatteverket', 'another-agency')) - answerBefore >= 2,
    );
    // What Redis refused is logged and counted, once, by the process that watches its log.
    await waitUntil(async () => {
      for (const app of [engineRole, api]) await app.app.get(AclLogWatcher).round();
      return (await refused('skatteverket', 'redis-acl')) - aclBefore >= attempts.length - 1;
    });
    expect(await snapshot(caseId)).toEqual(before);

    // Bolagsverket's own answer, on its own channel, moves the case on; Skatteverket's adapter
    // does its three steps with its credential, and the case completes.
    await publishResult(engineRole.app.get(QueueService), {
      kind: STEP_RESULT,
      result: {
        stepRunId: job.stepRunId,
        attempt: job.attempt,
        agency: 'bolagsverket',
        result: { outcome: 'completed', produced: { 'business.orgNumber': WORKLOAD_ORG_NUMBER } },
        reportedAt: new Date().toISOString(),
      },
    });
    await waitForCase(engineRole.database, caseId, ['completed']);
    const org = await sql<{ value: unknown; agency: string }>(
      engineRole.database,
      "SELECT value, agency FROM fact_records WHERE case_id = $1 AND fact_key = 'business.orgNumber'",
      [caseId],
    );
    // Bolagsverket's number (normalised), not the one forged on Skatteverket's channel.
    expect(org).toEqual([{ value: '199012119948', agency: 'bolagsverket' }]);
    await worker?.close();
  });

  it('re-dispatches past a job record its agency garbled: leo never has to parse what an agency can write', async () => {
    const skatteverket = issued.skatteverket;
    if (!skatteverket) throw new Error('credentials not issued');
    const runs = await sql<{ id: string; agency: string }>(
      engineRole.database,
      "SELECT id, agency FROM step_runs WHERE case_id = $1 AND state = 'completed' ORDER BY agency",
      [caseId],
    );
    const skv = runs.find((r) => r.agency === 'skatteverket');
    const bv = runs.find((r) => r.agency === 'bolagsverket');
    if (!skv || !bv) throw new Error('no finished jobs');
    const row = (agency: string, stepRunId: string) => ({
      id: '0',
      queue: agencyQueueName(agency),
      jobName: 'step.execute',
      jobId: stepJobId(stepRunId, 1),
      payload: {},
    });
    // Its own job's record is Skatteverket's to write: it makes it unreadable.
    const attacker = connectAs(skatteverket);
    await attacker.hset(
      `${prefix}:${agencyQueueName('skatteverket')}:${stepJobId(skv.id, 1)}`,
      'data',
      '{not json',
    );
    // Both finished jobs are cleared for a re-dispatch, the garbled one and the other agency's.
    const cleared = await engineRole.app
      .get(OutboxRelay)
      .clearFinished([row('skatteverket', skv.id), row('bolagsverket', bv.id)]);
    expect(cleared).toBe(2);
  });

  it("lets an adapter call leo's agency routes with its credential, as its own agency only", async () => {
    const skatteverket = issued.skatteverket;
    if (!skatteverket) throw new Error('credentials not issued');
    const me = await request(http())
      .get('/v1/me')
      .set('Authorization', basic(skatteverket))
      .expect(200);
    expect(me.body).toEqual({
      role: 'agency',
      subject: skatteverket.username,
      agency: 'skatteverket',
    });
    // Bolagsverket's step is not Skatteverket's to decide: not found, and nothing changed.
    const [run] = await sql<{ id: string }>(
      engineRole.database,
      "SELECT id FROM step_runs WHERE case_id = $1 AND agency = 'bolagsverket'",
      [caseId],
    );
    const before = await snapshot(caseId);
    await request(http())
      .post('/v1/agency/decisions')
      .set('Authorization', basic(skatteverket))
      .send({ stepRunId: run?.id, outcome: 'rejected', code: 'refused', reason: 'Refused.' })
      .expect(404);
    expect(await snapshot(caseId)).toEqual(before);
    // A wrong password is refused, and the credential opens no route but an agency's.
    await request(http())
      .get('/v1/me')
      .set('Authorization', basic(skatteverket, 'x'.repeat(43)))
      .expect(401);
    const admin = await request(http())
      .get('/v1/admin/agency-credentials')
      .set('Authorization', basic(skatteverket))
      .expect(401);
    expect((admin.body as { code: string }).code).toBe('basic-credentials-not-accepted');
  });

  it("stops an SDK worker at once, with one clear error, when its credential is not its queue's agency's", async () => {
    const skatteverket = issued.skatteverket;
    if (!skatteverket) throw new Error('credentials not issued');
    const errors: string[] = [];
    const fatal: Error[] = [];
    const misconfigured = createAgencyWorker({
      agency: 'bolagsverket',
      onFatal: (error) => {
        fatal.push(error);
      },
      prefix,
      connection: {
        ...redisOptions(testRedisUrl()),
        username: skatteverket.username,
        password: skatteverket.password,
      },
      log: {
        info: () => undefined,
        warn: () => undefined,
        error: (_fields, message) => {
          errors.push(message);
        },
      },
      handlers: {},
    });
    await waitUntil(async () => errors.length > 0);
    await waitUntil(async () => misconfigured.worker.closing !== undefined);
    await new Promise((r) => setTimeout(r, 500));
    expect(errors).toEqual([
      expect.stringMatching(/refuses this credential the queue agency\.bolagsverket/),
    ]);
    expect(misconfigured.worker.isRunning()).toBe(false);
    // The adapter is told once, so it can exit and be restarted by its supervisor.
    await waitUntil(async () => fatal.length > 0);
    expect(fatal).toEqual([expect.objectContaining({ message: expect.stringMatching(/NOPERM/) })]);
    await misconfigured.close();
  });

  it('says once, clearly, that Redis refuses a wrong password, and goes on trying with backoff', async () => {
    const bolagsverket = issued.bolagsverket;
    if (!bolagsverket) throw new Error('credentials not issued');
    const errors: Array<{ fields: Record<string, unknown>; message: string }> = [];
    const wrong = createAgencyWorker({
      agency: 'bolagsverket',
      prefix,
      connection: {
        ...redisOptions(testRedisUrl()),
        username: bolagsverket.username,
        password: 'not-the-password',
      },
      log: {
        info: () => undefined,
        warn: () => undefined,
        error: (fields, message) => {
          errors.push({ fields, message });
        },
      },
      handlers: {},
    });
    await waitUntil(async () => errors.length > 0);
    await new Promise((r) => setTimeout(r, 2_000));
    // One line naming the cause and what to do, not one per retry, and never the password.
    expect(errors).toEqual([
      {
        fields: expect.objectContaining({ redisError: expect.stringMatching(/WRONGPASS/) }),
        message: expect.stringMatching(/refuses this credential’s user name and password/),
      },
    ]);
    expect(JSON.stringify(errors)).not.toContain('not-the-password');
    await wrong.close();
  });

  it('revokes a credential at once: its connections are closed and it cannot connect again', async () => {
    const skatteverket = issued.skatteverket;
    if (!skatteverket) throw new Error('credentials not issued');
    const live = connectAs(skatteverket);
    await live.connect();
    expect(await live.xadd(skatteverket.resultsStream, '*', 'kind', 'probe')).toEqual(
      expect.any(String),
    );
    const closed = new Promise<void>((resolve) => {
      live.once('close', () => {
        resolve();
      });
    });
    const response = await request(http())
      .delete(`/v1/admin/agency-credentials/${skatteverket.id}`)
      .set('Authorization', `Bearer ${adminToken}`)
      .expect(200);
    expect(response.body).toMatchObject({ id: skatteverket.id, revokedBy: 'admin-eva' });
    await closed;
    expect(await auth(skatteverket)).toMatch(/WRONGPASS/);
    await request(http()).get('/v1/me').set('Authorization', basic(skatteverket)).expect(401);
    // Revoking again changes nothing; an id that is not one is a 400, an unknown one a 404.
    await request(http())
      .delete(`/v1/admin/agency-credentials/${skatteverket.id}`)
      .set('Authorization', `Bearer ${adminToken}`)
      .expect(200);
    await request(http())
      .delete('/v1/admin/agency-credentials/not-an-id')
      .set('Authorization', `Bearer ${adminToken}`)
      .expect(400);
    await request(http())
      .delete('/v1/admin/agency-credentials/0123456789ab')
      .set('Authorization', `Bearer ${adminToken}`)
      .expect(404);
  });

  it('applies the credentials again when Redis forgot them (a restart), and removes users none stands for', async () => {
    const bolagsverket = issued.bolagsverket;
    if (!bolagsverket) throw new Error('credentials not issued');
    await admin.call('ACL', 'DELUSER', bolagsverket.username);
    const stray = `${agencyUserScope(prefix)}bolagsverket.0000000000ff`;
    await admin.call('ACL', 'SETUSER', stray, 'off');
    expect(await auth(bolagsverket)).toMatch(/WRONGPASS/);
    await engineRole.app.get(AgencyCredentials).apply();
    const back = connectAs(bolagsverket);
    await back.connect();
    expect(await back.xadd(bolagsverket.resultsStream, '*', 'kind', 'probe')).toEqual(
      expect.any(String),
    );
    const users = (await admin.call('ACL', 'USERS')) as string[];
    expect(users).not.toContain(stray);
    expect(users).not.toContain(issued.skatteverket?.username);
  });
});
