import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import type pg from 'pg';
import { DataSource, type EntityManager } from 'typeorm';
import { AGENCY_NOT_ONBOARDED } from '#agency-contract';
import { preparedQuery } from '../database/prepared.js';
import {
  toFact,
  toLookup,
  toStepRun,
  type FactRow,
  type LookupRow,
  type StepRunRow,
} from './case-rows.js';
import type { FactRecord, LookupRecord, OutboxMessage, StepRunRecord } from './engine.types.js';

/**
 * The claims and marks of the engine's background work, outside any one change to a case: the
 * reconciler's (step runs and look-ups lost with Redis' data), the timer-arming sweep's, the
 * outbox relay's and its sweeper's. A claim locks its rows (SKIP LOCKED), so it runs in a
 * transaction (`transaction`) with the writes that follow it; several engine replicas at once
 * take different rows. Changes to a case itself are EngineRepository's.
 */
@Injectable()
export class HousekeepingRepository {
  constructor(@InjectDataSource() private readonly dataSource: DataSource) {}

  /** Runs `work` in a transaction (the sweeper's and the reconciler's claims). */
  transaction<T>(work: (manager: EntityManager) => Promise<T>): Promise<T> {
    return this.dataSource.transaction(work);
  }

  /** A named statement on the pool (parsed and planned once per connection). */
  private prepared<T extends pg.QueryResultRow>(
    name: string,
    text: string,
    values: unknown[],
  ): Promise<T[]> {
    return preparedQuery<T>(this.dataSource, name, text, values);
  }

  // ---- step runs: the reconciler and the timer-arming sweep -------------------------------

  /**
   * Open steps with a deadline that no timer job has been written for, unchanged for
   * `olderThanMs` (decision 0015): the arming sweep writes their timers. Locked, so several
   * engine replicas arming at once take different rows; found through the in-flight index.
   */
  async claimTimersToArm(
    manager: EntityManager,
    olderThanMs: number,
    limit: number,
  ): Promise<StepRunRecord[]> {
    const rows = await manager.query<StepRunRow[]>(
      `SELECT s.* FROM step_runs s
        WHERE s.state IN ('ready', 'dispatched', 'awaiting-decision', 'awaiting-citizen')
          AND s.updated_at < now() - make_interval(secs => $1::double precision / 1000)
          AND s.deadline_at IS NOT NULL
          AND s.timer_armed_for IS DISTINCT FROM s.deadline_at
        ORDER BY s.updated_at LIMIT $2 FOR UPDATE OF s SKIP LOCKED`,
      [olderThanMs, limit],
    );
    return rows.map(toStepRun);
  }

  /** Records that these step runs' timers are written (in the transaction that wrote them). */
  async markTimersArmed(
    manager: EntityManager,
    runs: Array<{ id: string; deadlineAt: Date }>,
  ): Promise<void> {
    if (runs.length === 0) return;
    await manager.query(
      `UPDATE step_runs s SET timer_armed_for = a.deadline
         FROM unnest($1::uuid[], $2::timestamptz[]) AS a(id, deadline)
        WHERE s.id = a.id AND s.id = ANY($1::uuid[])`,
      [runs.map((r) => r.id), runs.map((r) => r.deadlineAt.toISOString())],
    );
  }

  /**
   * Step runs handed to a queue that have not been answered for `olderThanMs` (or awaiting a
   * decision that long past its expected date): after Redis lost its data (or a job was lost
   * some other way) they must be published again. Locked, so several
   * engine replicas reconciling at once take different rows.
   *
   * The case's status is read through its primary key per step run, not joined: a join lets
   * the planner, when the statistics were taken with no case running (a big finished history),
   * probe cases_status for every step run and read every running case each time, quadratic in
   * the work in flight exactly when Redis lost it (docs/decisions/0012-history-and-indexes.md).
   */
  async claimStale(
    manager: EntityManager,
    olderThanMs: number,
    limit: number,
  ): Promise<Array<StepRunRecord & { deadlineAt: Date | null }>> {
    const rows = await manager.query<StepRunRow[]>(
      `SELECT s.* FROM step_runs s
       WHERE (SELECT c.status FROM cases c WHERE c.id = s.case_id) = 'running'
         AND s.updated_at < now() - make_interval(secs => $1::double precision / 1000)
         -- A step waiting for its instance to be onboarded was never sent (decision 0024).
         AND NOT (s.state = 'ready' AND s.last_error IS NOT DISTINCT FROM $3::text)
         AND (s.state IN ('ready', 'dispatched')
              OR (s.state = 'awaiting-decision' AND s.expected_decision_at IS NOT NULL
                  AND s.expected_decision_at < now() - make_interval(secs => $1::double precision / 1000)))
       ORDER BY s.updated_at LIMIT $2 FOR UPDATE SKIP LOCKED`,
      [olderThanMs, limit, AGENCY_NOT_ONBOARDED],
    );
    return rows.map(toStepRun);
  }

  async factRecordsByIds(manager: EntityManager, ids: string[]): Promise<FactRecord[]> {
    if (ids.length === 0) return [];
    const rows = await manager.query<FactRow[]>(
      'SELECT * FROM fact_records WHERE id = ANY($1::uuid[])',
      [ids],
    );
    return rows.map(toFact);
  }

  async touchStepRun(manager: EntityManager, id: string): Promise<void> {
    await manager.query('UPDATE step_runs SET updated_at = now() WHERE id = $1', [id]);
  }

  // ---- look-ups: the reconciler -----------------------------------------------------------

  /** Look-ups unanswered for `olderThanMs` (lost with Redis' data): published again. */
  async claimStaleLookups(
    manager: EntityManager,
    olderThanMs: number,
    limit: number,
  ): Promise<LookupRecord[]> {
    const rows = await manager.query<LookupRow[]>(
      `SELECT * FROM lookups WHERE state = 'pending'
         AND updated_at < now() - make_interval(secs => $1::double precision / 1000)
       ORDER BY updated_at LIMIT $2 FOR UPDATE SKIP LOCKED`,
      [olderThanMs, limit],
    );
    return rows.map(toLookup);
  }

  async touchLookup(manager: EntityManager, id: string): Promise<void> {
    await manager.query('UPDATE lookups SET updated_at = now() WHERE id = $1', [id]);
  }

  // ---- outbox: the relay, its sweeper, and what the reconciler and timer sweep publish ----

  async insertOutbox(
    manager: EntityManager,
    messages: OutboxMessage[],
  ): Promise<Array<{ id: string } & OutboxMessage>> {
    if (messages.length === 0) return [];
    const rows = await manager.query<Array<{ id: string }>>(
      `INSERT INTO outbox (queue, job_name, job_id, payload, available_at)
       SELECT m.queue, m.job_name, m.job_id, m.payload, COALESCE(m.available_at, now())
       FROM jsonb_to_recordset($1::jsonb) AS m(queue text, job_name text, job_id text, payload jsonb, available_at timestamptz)
       RETURNING id`,
      [
        JSON.stringify(
          messages.map((m) => ({
            queue: m.queue,
            job_name: m.jobName,
            job_id: m.jobId,
            payload: m.payload,
            available_at: m.availableAt?.toISOString() ?? null,
          })),
        ),
      ],
    );
    return messages.map((m, i) => ({ ...m, id: String(rows[i]?.id) }));
  }

  /**
   * Unsent outbox rows, locked so concurrent sweepers take different ones: those of changes at
   * least two seconds old (younger ones the fast path has published, or is about to mark).
   */
  async claimUnsent(
    manager: EntityManager,
    limit: number,
  ): Promise<
    Array<{
      id: string;
      queue: string;
      jobName: string;
      jobId: string;
      payload: object;
      availableAt: Date;
    }>
  > {
    const rows = await manager.query<
      Array<{
        id: string;
        queue: string;
        job_name: string;
        job_id: string;
        payload: object;
        available_at: Date;
      }>
    >(
      `SELECT id, queue, job_name, job_id, payload, available_at FROM outbox
       WHERE sent_at IS NULL AND created_at < now() - interval '2 seconds'
       ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED`,
      [limit],
    );
    return rows.map((r) => ({
      id: r.id,
      queue: r.queue,
      jobName: r.job_name,
      jobId: r.job_id,
      payload: r.payload,
      availableAt: r.available_at,
    }));
  }

  async markSent(ids: string[], manager: EntityManager = this.dataSource.manager): Promise<void> {
    if (ids.length === 0) return;
    await manager.query(
      'UPDATE outbox SET sent_at = now() WHERE id = ANY($1::bigint[]) AND sent_at IS NULL',
      [ids],
    );
  }

  /**
   * After publishing: marks the outbox rows sent and their steps dispatched (those still
   * waiting to be), in one statement.
   *
   * The state is a parameter, not a literal: a literal `state = 'ready'` lets the generic plan
   * use the in-flight index, which after statistics taken when nothing was in flight (a big
   * finished history) looks empty and is chosen over the primary key, and then every ready step
   * run is read to find these few (docs/decisions/0012-history-and-indexes.md).
   */
  async markPublished(outboxIds: string[], stepRunIds: string[]): Promise<void> {
    if (outboxIds.length === 0 && stepRunIds.length === 0) return;
    await this.prepared(
      'mark-published',
      `WITH sent AS (
         UPDATE outbox SET sent_at = now() WHERE id = ANY($1::bigint[]) AND sent_at IS NULL)
       UPDATE step_runs SET state = 'dispatched', dispatched_at = now(), updated_at = now()
        WHERE id = ANY($2::uuid[]) AND state = $3`,
      [outboxIds, stepRunIds, 'ready'],
    );
  }
}
