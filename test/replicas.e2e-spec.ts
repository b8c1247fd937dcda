import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { hostname } from 'node:os';
import { agencyResultsStreamKey, globEscape } from '#agency-contract';
import { Redis } from 'ioredis';
import request from 'supertest';
import { PARTITION_COUNT } from '../src/engine/partitioning.js';
import { redisOptions } from '../src/queue/redis-connection.js';
import { WORKLOAD_ANSWERS, sql as query } from './support/engine-harness.js';
import { startLeoProcess, type LeoProcess } from './support/leo-process.js';
import {
  createTestDatabase,
  startTestApp,
  testEnvironment,
  testQueuePrefix,
  type TestApp,
  type TestDatabase,
} from './support/test-env.js';

/**
 * The acceptance test of the engine: leo as it is deployed, several replicas of each role as
 * separate processes on one Postgres and one Redis, with Redis losing every key of leo's in the
 * middle of the run, and then one engine killed with SIGKILL while it holds results it read and
 * has not acknowledged. 500 start-a-business cases are driven through the citizen API; all must
 * complete, every step's effect made exactly once at its agency, every result applied once, and
 * the dead engine's unacknowledged results taken over by the other.
 */

const CASES = 500;
const CONCURRENCY = 24;
const STEP_ACTIONS = [
  'bolagsverket/register-sole-trader',
  'kommun/notify-new-business',
  'skatteverket/register-employer',
  'skatteverket/register-f-tax',
  'skatteverket/register-vat',
];

/** A valid test personal identity number (birth number 980–999) for citizen `i`. */
function testPersonalNumber(i: number): string {
  const day = new Date(Date.UTC(1960, 0, 1) + Math.floor(i / 20) * 86_400_000);
  const date = day.toISOString().slice(0, 10).replace(/-/g, '');
  const nine = `${date.slice(2)}${String(980 + (i % 20))}`;
  let sum = 0;
  for (let k = 0; k < nine.length; k += 1) {
    let d = Number(nine.charAt(k)) * (k % 2 === 0 ? 2 : 1);
    if (d > 9) d -= 9;
    sum += d;
  }
  return `${date}${String(980 + (i % 20))}${String((10 - (sum % 10)) % 10)}`;
}

/**
 * Redis loses every key of leo's at once (as a restart without persistence would): one script,
 * which nothing else interleaves with, deletes them all. Other test files' keys are left alone.
 */
/**
 * The results an engine process has read from the stream and not acknowledged (its consumer's
 * name starts with its host and pid), or undefined while it has no consumer.
 */
async function pendingOf(url: string, prefix: string, pid: number): Promise<number | undefined> {
  const redis = new Redis(redisOptions(url));
  try {
    // Over the agencies' results streams (decision 0022).
    // Each municipality answers on a stream of its own (decision 0024): every agency's is read.
    const keys = await redis.keys(`${globEscape(prefix)}:stream:agency.*.results`);
    expect(keys).toContain(agencyResultsStreamKey(prefix, 'bolagsverket'));
    let pending: number | undefined;
    for (const key of keys) {
      const consumers = (await redis
        .call('XINFO', 'CONSUMERS', key, 'engine')
        .catch(() => [])) as unknown[][];
      for (const fields of consumers) {
        const info = new Map<string, unknown>();
        for (let i = 0; i + 1 < fields.length; i += 2) info.set(String(fields[i]), fields[i + 1]);
        if (String(info.get('name')).startsWith(`${hostname()}-${String(pid)}-`)) {
          pending = (pending ?? 0) + Number(info.get('pending'));
        }
      }
    }
    return pending;
  } finally {
    redis.disconnect();
  }
}

async function flushPrefix(url: string, prefix: string): Promise<number> {
  const redis = new Redis(redisOptions(url));
  try {
    return (await redis.eval(
      `local keys = redis.call('KEYS', ARGV[1])
       for i = 1, #keys, 1000 do
         redis.call('UNLINK', unpack(keys, i, math.min(i + 999, #keys)))
       end
       return #keys`,
      0,
      `${prefix.replace(/[[\]*?\\]/g, '\\$&')}*`,
    )) as number;
  } finally {
    redis.disconnect();
  }
}

describe('replicas: two engines and two adapter processes, Redis flushed mid-run, an engine killed', () => {
  let database: TestDatabase;
  let api: TestApp;
  const processes: LeoProcess[] = [];
  const sql = <T extends import('pg').QueryResultRow>(text: string, values: unknown[] = []) =>
    query<T>(database, text, values);

  beforeAll(async () => {
    database = await createTestDatabase();
    const prefix = testQueuePrefix();
    const env = testEnvironment(database, {
      QUEUE_PREFIX: prefix,
      LOG_LEVEL: 'warn',
      DATABASE_POOL_SIZE: '6',
      // Recovery within seconds, for the test (production waits minutes).
      LEO_OUTBOX_SWEEP_INTERVAL_MS: '500',
      LEO_RECONCILE_INTERVAL_MS: '1000',
      LEO_RECONCILE_AFTER_MS: '4000',
      MOCK_DECISION_DELAY_MS: '300',
      MOCK_AGENCY_FAILURE_RATE: '0.05',
      MOCK_REJECTION_RATE: '0',
    });
    const roles = ['engine', 'engine', 'adapters', 'adapters'];
    processes.push(
      ...(await Promise.all(roles.map((role) => startLeoProcess({ ...env, LEO_ROLE: role })))),
    );
    api = await startTestApp(
      { LEO_ROLE: 'api', QUEUE_PREFIX: prefix, AUTH_DEV_SECRET: env.AUTH_DEV_SECRET ?? '' },
      { database },
    );
  }, 120_000);

  afterAll(async () => {
    // What went wrong in a replica, should anything have (its warnings and errors).
    for (const p of processes) {
      const problems = p.lines.filter((l) => /"level":"(error|fatal)"/.test(l));
      if (problems.length > 0) console.warn(`${p.role}:\n${problems.slice(0, 20).join('\n')}`);
    }
    await api.close();
    await Promise.all(processes.map((p) => p.stop()));
    await database.drop();
  });

  it(`completes ${String(CASES)} cases with every effect exactly once`, async () => {
    const server = api.app.getHttpServer() as Parameters<typeof request>[0];
    let flushed = false;
    let killing: Promise<number> | undefined;
    let killedAt = 0;
    const submitted: string[] = [];
    const { url } = api.config.redis;
    const { prefix } = api.config.queue;
    const victim = processes[0];
    const victimPid = victim?.child.pid ?? 0;

    /** SIGKILL the first engine as soon as it holds unacknowledged results (within 20 s). */
    async function killEngine(): Promise<number> {
      const until = Date.now() + 20_000;
      let pending = 0;
      while (Date.now() < until) {
        pending = (await pendingOf(url, prefix, victimPid)) ?? 0;
        if (pending > 0) break;
        await new Promise((r) => setTimeout(r, 5));
      }
      killedAt = Date.now();
      victim?.child.kill('SIGKILL');
      return pending;
    }

    async function runCase(i: number): Promise<void> {
      const token = (
        await request(server)
          .post('/v1/dev/token')
          .send({ role: 'citizen', personalNumber: testPersonalNumber(i) })
          .expect(200)
      ).body as { accessToken: string };
      const auth = `Bearer ${token.accessToken}`;
      const opened = await request(server)
        .post('/v1/cases')
        .set('Authorization', auth)
        .set('Prefer', 'wait=10')
        .send({
          lifeEvent: 'start-business',
          answers: { ...WORKLOAD_ANSWERS, 'business.name': `Replikbolaget ${String(i)}` },
        })
        .expect(201);
      const caseId = (opened.body as { id: string }).id;
      // Look-ups may have been lost in the flush: preview again until they are back.
      let checksum: string | undefined;
      for (let attempt = 0; checksum === undefined; attempt += 1) {
        const preview = await request(server)
          .get(`/v1/cases/${caseId}/preview`)
          .set('Authorization', auth);
        if (preview.status === 200) checksum = (preview.body as { checksum: string }).checksum;
        else if (preview.status !== 409 || attempt > 600) {
          throw new Error(`preview ${String(preview.status)}: ${JSON.stringify(preview.body)}`);
        } else await new Promise((r) => setTimeout(r, 100));
      }
      await request(server)
        .post(`/v1/cases/${caseId}/submit`)
        .set('Authorization', auth)
        .send({ previewChecksum: checksum })
        .expect(202);
      submitted.push(caseId);
      if (!flushed && submitted.length === Math.floor(CASES / 2)) {
        flushed = true;
        // Redis loses everything of leo's: queued and delayed jobs, results not yet applied.
        expect(await flushPrefix(url, prefix)).toBeGreaterThan(0);
      }
      if (flushed && killing === undefined && submitted.length === Math.floor((CASES * 3) / 4)) {
        killing = killEngine();
      }
    }

    let next = 0;
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (next < CASES) {
          const i = next;
          next += 1;
          await runCase(i);
        }
      }),
    );
    expect(flushed).toBe(true);
    // The engine was killed holding results it had read and not acknowledged.
    expect(await killing).toBeGreaterThan(0);
    // Its partitions were taken over by the other engine within a few seconds of its lease
    // (5 s) running out, each under a new epoch (decision 0020).
    const victimMember = `${hostname()}-${String(victimPid)}-`;
    let owners: Array<{ owner: string | null; n: string }> = [];
    while (Date.now() - killedAt < 60_000) {
      owners = await sql('SELECT owner, count(*) AS n FROM engine_partitions GROUP BY owner');
      if (owners.length === 1 && owners[0]?.owner?.startsWith(victimMember) === false) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(owners).toEqual([{ owner: expect.any(String), n: String(PARTITION_COUNT) }]);
    expect(owners[0]?.owner?.startsWith(victimMember)).toBe(false);
    const [taken] = await sql<{ at: string }>(
      'SELECT (extract(epoch FROM max(acquired_at)) * 1000)::bigint AS at FROM engine_partitions',
    );
    const takeoverMs = Number(taken?.at) - killedAt;
    expect(takeoverMs).toBeGreaterThan(0);
    expect(takeoverMs).toBeLessThan(15_000);

    const deadline = Date.now() + 180_000;
    let statuses: Array<{ status: string; n: string }> = [];
    while (Date.now() < deadline) {
      statuses = await sql('SELECT status, count(*) AS n FROM cases GROUP BY status');
      if (statuses.length === 1 && statuses[0]?.status === 'completed') break;
      await new Promise((r) => setTimeout(r, 500));
    }
    if (statuses.length !== 1) {
      // Say where an unfinished case is stuck: its steps and look-ups.
      const stuck = await sql(
        `SELECT s.step_id, s.state, s.attempt, s.updated_at, s.expected_decision_at, s.last_error,
                (SELECT json_agg(json_build_object('state', l.state, 'attempt', l.attempt, 'at', l.updated_at))
                   FROM lookups l WHERE l.case_id = c.id) AS lookups,
                (SELECT json_agg(json_build_object('job', o.job_id, 'sent', o.sent_at, 'due', o.available_at, 'at', o.created_at))
                   FROM outbox o WHERE o.payload->>'stepRunId' = s.id::text) AS outbox,
                (SELECT json_agg(json_build_object('attempt', r.attempt, 'at', r.received_at))
                   FROM mock_agency_requests r WHERE r.step_run_id = s.id) AS requests,
                now() AS now
           FROM cases c JOIN step_runs s ON s.case_id = c.id
          WHERE c.status <> 'completed' AND s.state NOT IN ('completed', 'skipped')`,
      );
      console.warn(`unfinished: ${JSON.stringify(stuck, null, 1)}`);
      const history = await sql(
        `SELECT e.case_id, string_agg(e.seq || ':' || e.type || coalesce('/' || e.step_id, ''), ' ' ORDER BY e.seq) AS events
           FROM case_events e JOIN cases c ON c.id = e.case_id WHERE c.status <> 'completed'
          GROUP BY e.case_id`,
      );
      console.warn(`history: ${JSON.stringify(history, null, 1)}`);
    }
    expect(statuses).toEqual([{ status: 'completed', n: String(CASES) }]);
    // What the dead engine held was claimed by the living one (after the claim's idle time).
    const claimedBy = Date.now() + 90_000;
    let left = await pendingOf(url, prefix, victimPid);
    while ((left ?? 0) > 0 && Date.now() < claimedBy) {
      await new Promise((r) => setTimeout(r, 1_000));
      left = await pendingOf(url, prefix, victimPid);
    }
    expect(left).toBe(0);

    // Each case's five steps made their effect exactly once at their agency.
    const effects = await sql<{ agency: string; action: string; n: string; cases: string }>(
      // Each municipality (kommun-0180, …) counted as the municipality: checked just below.
      `SELECT regexp_replace(e.agency, '^kommun-[0-9]{4}$', 'kommun') AS agency, e.action,
              count(*) AS n, count(DISTINCT s.case_id) AS cases
         FROM mock_agency_effects e JOIN step_runs s ON s.id = e.step_run_id
        GROUP BY 1, e.action ORDER BY 1, e.action`,
    );
    expect(effects.map((e) => `${e.agency}/${e.action}`)).toEqual(STEP_ACTIONS);
    // Every notice went to the citizen's own municipality, the one its step was routed to.
    const elsewhere = await sql<{ n: string }>(
      `SELECT count(*) AS n FROM mock_agency_effects e
         JOIN step_runs s ON s.id = e.step_run_id
         JOIN fact_records f ON f.case_id = s.case_id AND f.fact_key = 'person.municipalityCode'
        WHERE e.action = 'notify-new-business'
          AND (e.agency <> 'kommun-' || (f.value #>> '{}') OR s.agency <> e.agency)`,
    );
    expect(elsewhere).toEqual([{ n: '0' }]);
    for (const e of effects) expect([e.n, e.cases]).toEqual([String(CASES), String(CASES)]);

    // Every result was applied once: one completion per step, though some were delivered twice.
    const completions = await sql<{ n: string }>(
      `SELECT count(*) AS n FROM (SELECT case_id, step_id FROM case_events
         WHERE type = 'step-completed' GROUP BY case_id, step_id HAVING count(*) > 1) twice`,
    );
    expect(completions).toEqual([{ n: '0' }]);
    const [{ n: completed } = { n: '' }] = await sql<{ n: string }>(
      "SELECT count(*) AS n FROM step_runs WHERE state = 'completed'",
    );
    expect(completed).toBe(String(CASES * 5));
    // And every job an agency received is exactly what its step disclosed.
    const mismatched = await sql<{ n: string }>(
      `SELECT count(*) AS n FROM mock_agency_requests r JOIN step_runs s ON s.id = r.step_run_id
        WHERE NOT EXISTS (
          SELECT 1 FROM disclosures d WHERE d.step_run_id = r.step_run_id
             AND ARRAY(SELECT jsonb_object_keys(r.facts) ORDER BY 1)
               = ARRAY(SELECT unnest(d.fact_keys) ORDER BY 1))`,
    );
    expect(mismatched).toEqual([{ n: '0' }]);
  }, 300_000);
});
