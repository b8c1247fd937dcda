import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { Redis } from 'ioredis';
import {
  STEP_RESULT,
  agencyResultsStreamKey,
  type StepJob,
  type StepResult,
} from '#agency-contract';
import { EngineRepository } from '../src/engine/engine.repository.js';
import { EngineService } from '../src/engine/engine.service.js';
import { RESULTS_GROUP, ResultStreamConsumer } from '../src/engine/result-stream.consumer.js';
import { QueueService } from '../src/queue/queue.service.js';
import { redisOptions } from '../src/queue/redis-connection.js';
import {
  publishResult,
  scriptedAgencies,
  sql as query,
  startCase,
  waitUntil,
  WORKLOAD_ORG_NUMBER,
  type ScriptedAgencies,
} from './support/engine-harness.js';
import { scrape } from './support/metrics.js';
import { startTestApp, testRedisUrl, type TestApp } from './support/test-env.js';

/**
 * The engine's side of the agencies' results streams (decisions 0018 and 0022), on real Redis and
 * Postgres: batches read with one XREADGROUP, malformed entries dropped, an answer taken as its
 * channel's agency's and no other's, entries of a dead consumer claimed, and the group recreated
 * after Redis lost the key.
 */
describe('the results stream, consumed by the engine', () => {
  let leo: TestApp;
  let agencies: ScriptedAgencies;
  let consumer: ResultStreamConsumer;
  let queues: QueueService;
  let redis: Redis;
  let key: string;

  const sql = <T extends import('pg').QueryResultRow>(text: string, values: unknown[] = []) =>
    query<T>(leo.database, text, values);

  /** The states of these step runs, by id. */
  async function states(ids: string[]): Promise<Map<string, string>> {
    const rows = await sql<{ id: string; state: string }>(
      'SELECT id, state FROM step_runs WHERE id = ANY($1::uuid[])',
      [ids],
    );
    return new Map(rows.map((r) => [r.id, r.state]));
  }

  async function waitCompleted(ids: string[]): Promise<void> {
    await waitUntil(async () => {
      const found = await states(ids);
      return ids.every((id) => found.get(id) === 'completed');
    });
  }

  /** Starts `n` cases whose first step (at Bolagsverket) goes unanswered; its jobs. */
  async function unansweredSteps(n: number): Promise<StepJob[]> {
    agencies.setScript((job) => (job.action === 'register-sole-trader' ? null : undefined));
    const engine = leo.app.get(EngineService);
    const repository = leo.app.get(EngineRepository);
    const cases = new Set(
      await Promise.all(Array.from({ length: n }, () => startCase(engine, repository))),
    );
    // Only these cases' registrations: earlier cases' later steps may still be arriving.
    const mine = (): StepJob[] =>
      agencies.received.filter((j) => cases.has(j.caseId) && j.action === 'register-sole-trader');
    await waitUntil(async () => mine().length >= n);
    return mine().slice(0, n);
  }

  const completed = (job: StepJob): StepResult => ({
    stepRunId: job.stepRunId,
    attempt: job.attempt,
    agency: 'bolagsverket',
    result: {
      outcome: 'completed',
      produced: { 'business.orgNumber': WORKLOAD_ORG_NUMBER },
      reference: 'BV-S',
    },
    reportedAt: new Date().toISOString(),
  });

  const pendingCount = async (): Promise<number> =>
    ((await redis.xpending(key, RESULTS_GROUP)) as [number])[0];

  beforeAll(async () => {
    leo = await startTestApp({ LEO_ROLE: 'engine', LEO_RESULT_CONCURRENCY: '64' });
    queues = leo.app.get(QueueService);
    consumer = leo.app.get(ResultStreamConsumer);
    agencies = scriptedAgencies(queues, ['bolagsverket', 'skatteverket', 'kommun-0780']);
    redis = new Redis(redisOptions(testRedisUrl()));
    key = agencyResultsStreamKey(leo.config.queue.prefix, 'bolagsverket');
  });
  beforeEach(() => {
    agencies.setScript(() => undefined);
  });
  afterAll(async () => {
    redis.disconnect();
    await leo.close();
  });

  it('applies a batch of results read with one XREADGROUP, and acknowledges them in one go', async () => {
    const jobs = await unansweredSteps(20);
    await consumer.stop();
    for (const job of jobs)
      await publishResult(queues, { kind: STEP_RESULT, result: completed(job) });
    const before = { ...consumer.stats };
    consumer.start();
    await waitCompleted(jobs.map((j) => j.stepRunId));
    // All twenty were waiting when the consumer started: one read took them all.
    expect(consumer.stats.largestBatch).toBeGreaterThanOrEqual(20);
    expect(consumer.stats.batches - before.batches).toBeLessThanOrEqual(
      consumer.stats.entries - before.entries,
    );
    await waitUntil(async () => (await pendingCount()) === 0);
  });

  it('acknowledges a malformed entry and changes nothing', async () => {
    const [job] = await unansweredSteps(1);
    if (!job) throw new Error('no job');
    const bad: Array<Record<string, string>> = [
      { kind: STEP_RESULT, body: '{"stepRunId":' },
      { kind: 'step.execute', body: JSON.stringify(completed(job)) },
      { kind: STEP_RESULT, body: JSON.stringify({ ...completed(job), stepRunId: 'not-a-uuid' }) },
      { kind: STEP_RESULT, body: JSON.stringify({ ...completed(job), result: { outcome: 'ok' } }) },
    ];
    const history = (): Promise<Array<{ seq: number; type: string }>> =>
      sql('SELECT seq, type FROM case_events WHERE case_id = $1 ORDER BY seq', [job.caseId]);
    const before = await history();
    const ids: string[] = [];
    for (const fields of bad) {
      ids.push((await redis.xadd(key, '*', ...Object.entries(fields).flat())) ?? '');
    }
    // Each was read and acknowledged: nothing pending, and the group has read past them.
    await waitUntil(async () => {
      const groups = (await redis.xinfo('GROUPS', key)) as unknown[][];
      const group = groups.find((g) => g[1] === RESULTS_GROUP) ?? [];
      const lastDelivered = String(group[group.indexOf('last-delivered-id') + 1]);
      return lastDelivered === ids.at(-1) && (await pendingCount()) === 0;
    });
    // Still waiting for its answer (the relay's 'dispatched' mark may not be written yet).
    expect(['ready', 'dispatched']).toContain((await states([job.stepRunId])).get(job.stepRunId));
    expect(await history()).toEqual(before);
  });

  it('claims and applies an entry a consumer that died left pending', async () => {
    const [job] = await unansweredSteps(1);
    if (!job) throw new Error('no job');
    await consumer.stop();
    await publishResult(queues, { kind: STEP_RESULT, result: completed(job) });
    // Another engine reads it, then dies before it acknowledges it.
    const read = (await redis.xreadgroup(
      'GROUP',
      RESULTS_GROUP,
      'dead-engine',
      'COUNT',
      10,
      'STREAMS',
      key,
      '>',
    )) as Array<[string, unknown[]]> | null;
    expect(read?.[0]?.[1]).toHaveLength(1);
    // /metrics shows it: read, not acknowledged, and nothing left unread.
    await new Promise((r) => setTimeout(r, 100));
    const metrics = await scrape(leo.app);
    const bv = { agency: 'bolagsverket' };
    expect(metrics.value('leo_results_stream_pending', bv)).toBe(1);
    expect(metrics.value('leo_results_stream_lag', bv)).toBe(0);
    expect(metrics.value('leo_results_stream_entries', bv)).toBeGreaterThanOrEqual(1);
    expect(metrics.value('leo_results_stream_oldest_pending_age_seconds', bv)).toBeGreaterThan(0);
    consumer.start({ claimMinIdleMs: 500, claimIntervalMs: 200 });
    await waitCompleted([job.stepRunId]);
    await waitUntil(async () => (await pendingCount()) === 0);
  });

  it("takes an answer as its channel's agency's: another agency's step is not its to answer", async () => {
    const [job] = await unansweredSteps(1);
    if (!job) throw new Error('no job');
    const history = (): Promise<Array<{ seq: number; type: string }>> =>
      sql('SELECT seq, type FROM case_events WHERE case_id = $1 ORDER BY seq', [job.caseId]);
    const before = await history();
    const refused = async (reason: string): Promise<number> =>
      (await scrape(leo.app)).value('leo_agency_refused_total', { agency: 'skatteverket', reason });
    const start = await refused('another-agency');
    const skv = agencyResultsStreamKey(leo.config.queue.prefix, 'skatteverket');
    // On Skatteverket's stream: Bolagsverket's answer (naming Bolagsverket), then the same
    // answer naming Skatteverket, for Bolagsverket's step.
    await publishResult(queues, { kind: STEP_RESULT, result: completed(job) }, 'skatteverket');
    await publishResult(
      queues,
      { kind: STEP_RESULT, result: { ...completed(job), agency: 'skatteverket' } },
      'skatteverket',
    );
    await waitUntil(async () => (await refused('another-agency')) - start === 2);
    await waitUntil(async () => ((await redis.xpending(skv, RESULTS_GROUP)) as [number])[0] === 0);
    expect(['ready', 'dispatched']).toContain((await states([job.stepRunId])).get(job.stepRunId));
    expect(await history()).toEqual(before);
    // Bolagsverket's own answer, on its own stream, is applied.
    await publishResult(queues, { kind: STEP_RESULT, result: completed(job) });
    await waitCompleted([job.stepRunId]);
  });

  it('creates the group again after Redis lost the stream, and goes on', async () => {
    const [job] = await unansweredSteps(1);
    if (!job) throw new Error('no job');
    // As after a restart without persistence: the stream and its group are gone.
    await redis.del(key);
    await new Promise((r) => setTimeout(r, 1_500));
    await publishResult(queues, { kind: STEP_RESULT, result: completed(job) });
    await waitCompleted([job.stepRunId]);
    const groups = (await redis.xinfo('GROUPS', key)) as unknown[][];
    expect(groups.map((g) => g[1])).toEqual([RESULTS_GROUP]);
  });
});
