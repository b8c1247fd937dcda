import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Redis } from 'ioredis';
import { CaseRouter } from '../src/engine/case-router.js';
import { CaseRunner } from '../src/engine/case-runner.js';
import { EngineRepository } from '../src/engine/engine.repository.js';
import { EngineService } from '../src/engine/engine.service.js';
import { HousekeepingRepository } from '../src/engine/housekeeping.repository.js';
import { PartitionLeases } from '../src/engine/partition-leases.js';
import { PARTITION_COUNT, partitionOf } from '../src/engine/partitioning.js';
import { Metrics } from '../src/observability/metrics.js';
import { redisOptions } from '../src/queue/redis-connection.js';
import {
  WORKLOAD_ANSWERS,
  WORKLOAD_PERSONAL_NUMBER,
  openResolvedCase,
  seedRegisterFacts,
  submitWithConsent,
  waitForStep,
} from './support/engine-harness.js';
import {
  createTestDatabase,
  sql,
  startTestApp,
  testQueuePrefix,
  type TestApp,
  type TestDatabase,
} from './support/test-env.js';

const LEASE = { LEO_PARTITION_LEASE_MS: '1500', LEO_COMMAND_TIMEOUT_MS: '4000' };

async function until<T>(
  check: () => Promise<T | undefined> | T | undefined,
  what: string,
  timeoutMs = 15_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

interface Row {
  partition: number;
  owner: string | null;
  epoch: string;
}

/** A new subject whose register facts are on file (no look-up needed to resolve a case). */
async function subjectOnFile(leo: TestApp): Promise<string> {
  const repository = leo.app.get(EngineRepository);
  const subjectId = await repository.createSubject();
  await seedRegisterFacts(repository, leo.app.get(HousekeepingRepository), subjectId);
  return subjectId;
}

const rows = (database: TestDatabase): Promise<Row[]> =>
  sql<Row>(database, 'SELECT partition, owner, epoch FROM engine_partitions ORDER BY partition');

/**
 * Partitions of cases, their leases and fencing (decision 0020), with engines in this process
 * (the replicas suite does the same with processes killed by SIGKILL).
 */
describe('partitions', () => {
  let database: TestDatabase;
  const prefix = testQueuePrefix();
  const started: TestApp[] = [];
  const start = async (role: string, extra: Record<string, string> = {}): Promise<TestApp> => {
    const app = await startTestApp(
      { LEO_ROLE: role, QUEUE_PREFIX: prefix, ...LEASE, ...extra },
      { database },
    );
    started.push(app);
    return app;
  };

  beforeAll(async () => {
    database = await createTestDatabase();
  });
  afterAll(async () => {
    for (const app of started.reverse()) await app.close().catch(() => undefined);
    await database.drop();
  });

  it('computes a case partition in Postgres as the engine does', async () => {
    const ids = Array.from({ length: 200 }, () => randomUUID());
    const found = await sql<{ id: string; p: number }>(
      database,
      'SELECT id, leo_partition(id) AS p FROM unnest($1::uuid[]) AS id',
      [ids],
    );
    expect(found.map((r) => r.p)).toEqual(ids.map(partitionOf));
    expect(await rows(database)).toHaveLength(PARTITION_COUNT);
  });

  it('shares the partitions between two engines, hands them over when one stops, and fences the one that lost them', async () => {
    const a = await start('engine');
    const leasesA = a.app.get(PartitionLeases);
    // Alone, an engine holds every partition as soon as it has started.
    expect(leasesA.heldPartitions()).toHaveLength(PARTITION_COUNT);

    const b = await start('engine');
    const leasesB = b.app.get(PartitionLeases);
    await until(
      () =>
        leasesA.heldPartitions().length === 16 && leasesB.heldPartitions().length === 16
          ? true
          : undefined,
      'a fair share each',
    );
    const table = await rows(database);
    expect(new Set(table.map((r) => r.owner))).toEqual(new Set([leasesA.member, leasesB.member]));
    expect(leasesA.heldPartitions().filter((p) => leasesB.heldPartitions().includes(p))).toEqual(
      [],
    );
    const moved = await a.app
      .get(Metrics)
      .registry.getSingleMetricAsString('leo_engine_partition_moves_total');
    expect(moved).toMatch(/how="released"\} 16/);

    // A stops (releasing its partitions): B takes them all, each under a new epoch.
    const before = new Map(table.map((r) => [r.partition, Number(r.epoch)]));
    await a.close();
    // A clean stop releases at once (before its database connections close), and leaves.
    expect((await rows(database)).filter((r) => r.owner === leasesA.member)).toEqual([]);
    expect(
      await sql(database, 'SELECT member FROM engine_members WHERE member = $1', [leasesA.member]),
    ).toEqual([]);
    await until(
      () => (leasesB.heldPartitions().length === PARTITION_COUNT ? true : undefined),
      'B to hold every partition',
      10_000,
    );
    const after = await rows(database);
    expect(after.every((r) => r.owner === leasesB.member)).toBe(true);
    for (const r of after) {
      if (r.partition in Object.fromEntries(leasesA.heldPartitions().map((p) => [p, true])))
        continue;
      expect(Number(r.epoch)).toBeGreaterThanOrEqual(before.get(r.partition) ?? 0);
    }

    // Fencing: another process takes a partition from under B (as after a pause longer than
    // its lease). B still believes it holds it until its next round, but cannot commit to its
    // cases: the input is refused as unavailable (503) and the case is left as it was.
    const engineB = b.app.get(EngineService);
    const subjectId = await subjectOnFile(b);
    const opened = await engineB.openCase({
      subjectId,
      lifeEventKey: 'start-business',
      personalNumber: WORKLOAD_PERSONAL_NUMBER,
      answers: {},
    });
    const partition = partitionOf(opened.id);
    await sql(
      database,
      `UPDATE engine_partitions SET owner = 'a-process-that-is-gone', epoch = epoch + 1,
         lease_until = now() + interval '1 hour' WHERE partition = $1`,
      [partition],
    );
    const [{ revision } = { revision: -1 }] = await sql<{ revision: number }>(
      database,
      'SELECT revision FROM cases WHERE id = $1',
      [opened.id],
    );
    await expect(engineB.answer(opened.id, subjectId, WORKLOAD_ANSWERS)).rejects.toMatchObject({
      kind: 'unavailable',
      code: 'engine-unavailable',
    });
    const [now] = await sql<{ revision: number }>(
      database,
      'SELECT revision FROM cases WHERE id = $1',
      [opened.id],
    );
    expect(now?.revision).toBe(revision);
    expect(leasesB.heldPartitions()).not.toContain(partition);
    const lost = await b.app
      .get(Metrics)
      .registry.getSingleMetricAsString('leo_engine_partition_moves_total');
    expect(lost).toMatch(/how="lost"\} 1/);

    // Its lease runs out: B takes it back under a newer epoch, and the answer goes through.
    await sql(database, `UPDATE engine_partitions SET lease_until = now() WHERE partition = $1`, [
      partition,
    ]);
    await until(
      () => (leasesB.holds(partition) ? true : undefined),
      'B to take the partition back',
    );
    await engineB.answer(opened.id, subjectId, WORKLOAD_ANSWERS);
    const [answered] = await sql<{ revision: number }>(
      database,
      'SELECT revision FROM cases WHERE id = $1',
      [opened.id],
    );
    expect(answered?.revision).toBeGreaterThan(revision);
  }, 60_000);

  it('takes an input from an api process to the engine that owns its case', async () => {
    const api = await start('api');
    const engine = api.app.get(EngineService);
    const subjectId = await subjectOnFile(api);
    const opened = await engine.openCase({
      subjectId,
      lifeEventKey: 'start-business',
      personalNumber: WORKLOAD_PERSONAL_NUMBER,
      answers: WORKLOAD_ANSWERS,
    });
    expect(opened.createdAt).toBeInstanceOf(Date);
    const { resolution } = await engine.resolution(opened.id);
    expect(resolution.state).toBe('ready');
    // A refusal comes back whole: the fields and their reasons.
    await expect(
      engine.answer(opened.id, subjectId, { 'business.name': 42 }),
    ).rejects.toMatchObject({
      kind: 'invalid',
      problems: [
        expect.objectContaining({ path: 'answers.business.name', reason: 'must be a string' }),
      ],
    });
    // A case of another subject is not found, whoever owns it.
    await expect(engine.answer(opened.id, 'someone-else', {})).rejects.toMatchObject({
      kind: 'not-found',
    });
    const metrics = await api.app
      .get(Metrics)
      .registry.getSingleMetricAsString('leo_engine_commands_forwarded_total');
    expect(metrics).toMatch(/outcome="done"\} [1-9]/);

    // Opening is idempotent by case id: an open sent again (its first owner died before
    // answering) finds the case it made.
    const router = api.app.get(CaseRouter);
    const input = {
      type: 'open' as const,
      caseId: opened.id,
      subjectId,
      definitionId: opened.definitionId,
      definitionVersion: opened.definitionVersion,
      personalNumber: WORKLOAD_PERSONAL_NUMBER,
      answers: {},
    };
    await expect(router.open(input)).resolves.toMatchObject({
      outcome: 'changed',
      caseRecord: { id: opened.id, subjectId },
    });

    // Whoever else can reach Redis (an agency's adapter) cannot send the engine commands: a
    // request not sealed with leo's key is dropped.
    const owner = await api.app.get(PartitionLeases).ownerOf(partitionOf(opened.id), true);
    const redis = new Redis(redisOptions(api.config.redis.url));
    try {
      const forged = {
        t: 'req',
        id: 'forged-1',
        from: 'an-adapter',
        at: Date.now(),
        body: {
          kind: 'run',
          caseId: opened.id,
          input: { type: 'cancel', reason: 'forged', by: 'admin' },
        },
      };
      const receivers = await redis.publish(
        `${api.config.queue.prefix}:engine:bus:${owner ?? ''}`,
        JSON.stringify(forged),
      );
      expect(receivers).toBe(1);
    } finally {
      redis.disconnect();
    }
    await new Promise((r) => setTimeout(r, 500));
    const [status] = await sql<{ status: string }>(
      database,
      'SELECT status FROM cases WHERE id = $1',
      [opened.id],
    );
    expect(status?.status).toBe('open');
  }, 60_000);
});

/** Reads of a case its owner keeps answered from its copy, as Postgres would answer them. */
describe("the owner's copy of a case, for reads", () => {
  let leo: TestApp;
  beforeAll(async () => {
    // Agencies slow to answer: steps stay dispatched while the test reads them.
    leo = await startTestApp({ LEO_ROLE: 'all', MOCK_AGENCY_LATENCY_MS: '4000' });
  });
  afterAll(async () => {
    await leo.close();
  });

  it('shows the dispatch marks written outside the revision, and goes to Postgres once the subject has new facts', async () => {
    const engine = leo.app.get(EngineService);
    const repository = leo.app.get(EngineRepository);
    const runner = leo.app.get(CaseRunner);
    const subjectId = await subjectOnFile(leo);
    const { caseId } = await openResolvedCase(engine, repository, { subjectId });
    await submitWithConsent(engine, caseId);
    await waitForStep(leo.database, caseId, 'register-sole-trader', 'dispatched');

    const kept = await runner.current(caseId);
    expect(kept).toBeDefined();
    const step = (runs: Array<{ stepId: string; state: string }> | undefined): string | undefined =>
      runs?.find((r) => r.stepId === 'register-sole-trader')?.state;
    // Marked dispatched by the relay after the change that made it ready: the copy says so.
    expect(step(kept?.runs)).toBe('dispatched');
    expect(step((await engine.resolution(caseId)).runs)).toBe('dispatched');
    expect(await engine.hasPendingLookups(caseId)).toBe(false);

    // Another case of the subject records a fact: the copy is not used until the case is read.
    await sql(
      leo.database,
      'UPDATE subjects SET facts_revision = facts_revision + 1 WHERE id = $1',
      [subjectId],
    );
    expect(await runner.current(caseId)).toBeUndefined();
    expect(step((await engine.resolution(caseId)).runs)).toBe('dispatched');
  }, 60_000);
});
