import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import type pg from 'pg';
import { DataSource, type EntityManager } from 'typeorm';
import { uuidv7 } from '../common/uuid.js';
import { Batcher, eachAloneOnFailure } from '../database/batcher.js';
import { preparedQuery } from '../database/prepared.js';
import type { StepState } from '#workflow';
import {
  toCase,
  toFact,
  toLookup,
  toStepRun,
  withDates,
  type CaseRow,
  type FactRow,
  type LookupRow,
  type StepRunRow,
} from './case-rows.js';
import type {
  CaseEvent,
  CaseRecord,
  CaseStatus,
  FactRecord,
  LookupRecord,
  NewMessage,
  OutboxMessage,
  StepRunRecord,
} from './engine.types.js';

/** A case as one statement reads it: the case, its step runs and look-ups, its subject's facts. */
export interface LoadedCase {
  caseRecord: CaseRecord;
  runs: StepRunRecord[];
  lookups: LookupRecord[];
  /** The subject's newest record of each fact. */
  facts: Map<string, FactRecord>;
}

/** Everything one change to a case writes, committed by one statement (see commitCase). */
export interface CaseUnit {
  caseRecord: CaseRecord;
  /** The revision the change was computed from; null for a case it creates. */
  expectedRevision: number | null;
  /** For a new case: all its step runs; else the ones the change touched (their whole state). */
  runs: StepRunRecord[];
  events: Array<CaseEvent & { seq: number }>;
  facts: FactRecord[];
  newLookups: LookupRecord[];
  changedLookups: LookupRecord[];
  disclosures: Array<{
    subjectId: string;
    caseId: string;
    stepRunId?: string;
    lookupId?: string;
    agency: string;
    factRecordIds: string[];
    factKeys: string[];
    basis: string;
  }>;
  messages: NewMessage[];
  outbox: OutboxMessage[];
}

/** What loadCase looks a case up by. */
export interface CaseRequest {
  kind: 'case' | 'step-run' | 'lookup';
  key: string;
  /** Only a case of this subject (a citizen's request), or any. */
  subjectId: string | null;
}

export type BatchObserver = (statement: 'load-cases' | 'commit-cases', size: number) => void;

export interface CommitOutcome {
  committed: boolean;
  outbox: Array<{ id: string } & OutboxMessage>;
}

/**
 * At most this many reads or changes in one statement, and this many such statements at once
 * per process (the pool's other connections stay free for everything else).
 */
const BATCH_LIMITS = { maxBatch: 64, maxInFlight: 2 };

const iso = (d: Date | null | undefined): string | null => (d ? d.toISOString() : null);

export interface StepRunChange {
  state?: StepState;
  attempt?: number;
  maxAttempts?: number;
  result?: unknown;
  agencyReference?: string | null;
  expectedDecisionAt?: Date | null;
  deadlineAt?: Date | null;
  timerArmedFor?: Date | null;
  lastError?: string | null;
  disclosedFactIds?: string[];
  overdue?: boolean;
}

/**
 * Named operations on cases, step runs, their history, the outbox, fact records and
 * disclosures. Every write takes the transaction's EntityManager: a change to a case is one
 * transaction with its events and outbox rows (invariant 2).
 */
@Injectable()
export class EngineRepository {
  private readonly batchObservers = new Set<BatchObserver>();
  private readonly loads = new Batcher<CaseRequest, LoadedCase | null>(
    (requests) => eachAloneOnFailure(requests, (batch) => this.loadCases(batch)),
    BATCH_LIMITS,
    (size) => {
      for (const observe of this.batchObservers) observe('load-cases', size);
    },
  );
  private readonly commits = new Batcher<CaseUnit, CommitOutcome>(
    (units) => eachAloneOnFailure(units, (batch) => this.commitCases(batch)),
    BATCH_LIMITS,
    (size) => {
      for (const observe of this.batchObservers) observe('commit-cases', size);
    },
  );

  constructor(@InjectDataSource() private readonly dataSource: DataSource) {}

  /**
   * Tells `observe` the size of each batch of reads or changes as it starts (a metric); returns
   * the call that stops it.
   */
  observeBatches(observe: BatchObserver): () => void {
    this.batchObservers.add(observe);
    return () => this.batchObservers.delete(observe);
  }

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

  async findCase(
    caseId: string,
    manager: EntityManager = this.dataSource.manager,
  ): Promise<CaseRecord | null> {
    const rows = await manager.query<CaseRow[]>('SELECT * FROM cases WHERE id = $1', [caseId]);
    return rows[0] ? toCase(rows[0]) : null;
  }

  /** Cases matching every given filter, newest first; keyset-paged by (created_at, id). */
  async searchCases(filter: {
    status?: CaseStatus;
    lifeEvent?: string;
    agency?: string;
    createdFrom?: Date;
    createdTo?: Date;
    after?: { createdAt: Date; id: string };
    limit: number;
  }): Promise<CaseRecord[]> {
    const where: string[] = [];
    const values: unknown[] = [];
    const add = (sql: (p: string) => string, value: unknown): void => {
      values.push(value);
      where.push(sql(`$${values.length}`));
    };
    if (filter.status) add((p) => `c.status = ${p}`, filter.status);
    if (filter.lifeEvent) add((p) => `c.life_event_key = ${p}`, filter.lifeEvent);
    if (filter.agency)
      add(
        (p) => `EXISTS (SELECT 1 FROM step_runs s WHERE s.case_id = c.id AND s.agency = ${p})`,
        filter.agency,
      );
    if (filter.createdFrom) add((p) => `c.created_at >= ${p}`, filter.createdFrom);
    if (filter.createdTo) add((p) => `c.created_at < ${p}`, filter.createdTo);
    if (filter.after) {
      values.push(filter.after.createdAt, filter.after.id);
      where.push(`(c.created_at, c.id) < ($${values.length - 1}, $${values.length}::uuid)`);
    }
    values.push(filter.limit);
    const rows = await this.dataSource.manager.query<CaseRow[]>(
      `SELECT c.* FROM cases c ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
       ORDER BY c.created_at DESC, c.id DESC LIMIT $${values.length}`,
      values,
    );
    return rows.map(toCase);
  }

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
         AND (s.state IN ('ready', 'dispatched')
              OR (s.state = 'awaiting-decision' AND s.expected_decision_at IS NOT NULL
                  AND s.expected_decision_at < now() - make_interval(secs => $1::double precision / 1000)))
       ORDER BY s.updated_at LIMIT $2 FOR UPDATE SKIP LOCKED`,
      [olderThanMs, limit],
    );
    return rows.map(toStepRun);
  }

  /**
   * Cases with an unfinished step past its deadline that has not been escalated yet. The case's
   * status is read through its primary key, not joined (see claimStale).
   */
  async casesWithOverdueSteps(limit: number): Promise<string[]> {
    const rows = await this.dataSource.manager.query<Array<{ case_id: string }>>(
      `SELECT DISTINCT s.case_id FROM step_runs s
       WHERE s.deadline_at < now() AND NOT s.overdue
         AND s.state IN ('ready', 'dispatched', 'awaiting-decision', 'awaiting-citizen')
         AND (SELECT c.status FROM cases c WHERE c.id = s.case_id) IN ('running', 'action-required')
       LIMIT $1`,
      [limit],
    );
    return rows.map((r) => r.case_id);
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

  async stepRuns(
    caseId: string,
    manager: EntityManager = this.dataSource.manager,
  ): Promise<StepRunRecord[]> {
    const rows = await manager.query<StepRunRow[]>(
      'SELECT * FROM step_runs WHERE case_id = $1 ORDER BY step_id',
      [caseId],
    );
    return rows.map(toStepRun);
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

  async events(
    caseId: string,
  ): Promise<
    Array<{ seq: number; type: string; stepId: string | null; data: unknown; createdAt: Date }>
  > {
    const rows = await this.dataSource.manager.query<
      Array<{ seq: number; type: string; step_id: string | null; data: unknown; created_at: Date }>
    >(
      'SELECT seq, type, step_id, data, created_at FROM case_events WHERE case_id = $1 ORDER BY seq',
      [caseId],
    );
    return rows.map((r) => ({
      seq: r.seq,
      type: r.type,
      stepId: r.step_id,
      data: r.data,
      createdAt: r.created_at,
    }));
  }

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

  /** The subject's current value of each fact: the newest record per key. */
  async currentFacts(
    subjectId: string,
    manager: EntityManager = this.dataSource.manager,
  ): Promise<Map<string, FactRecord>> {
    const rows = await manager.query<FactRow[]>(
      `SELECT DISTINCT ON (fact_key) * FROM fact_records WHERE subject_id = $1 ORDER BY fact_key, created_at DESC, id`,
      [subjectId],
    );
    return new Map(rows.map((r) => [r.fact_key, toFact(r)]));
  }

  /** Appends fact records (never overwrites); returns them as stored, in the order given. */
  async insertFacts(
    manager: EntityManager,
    records: Array<{
      subjectId: string;
      factKey: string;
      value: unknown;
      source: FactRecord['source'];
      agency?: string;
      caseId?: string;
      stepRunId?: string;
      lookupId?: string;
      supersedes?: string;
    }>,
  ): Promise<FactRecord[]> {
    if (records.length === 0) return [];
    const rows = await manager.query<FactRow[]>(
      `INSERT INTO fact_records (subject_id, fact_key, value, source, agency, case_id, step_run_id, lookup_id, supersedes)
       SELECT r.subject_id, r.fact_key, r.value, r.source, r.agency, r.case_id, r.step_run_id, r.lookup_id, r.supersedes
       FROM jsonb_to_recordset($1::jsonb)
         AS r(subject_id text, fact_key text, value jsonb, source text, agency text, case_id uuid,
              step_run_id uuid, lookup_id uuid, supersedes uuid)
       RETURNING *`,
      [
        JSON.stringify(
          records.map((r) => ({
            subject_id: r.subjectId,
            fact_key: r.factKey,
            value: r.value,
            source: r.source,
            agency: r.agency ?? null,
            case_id: r.caseId ?? null,
            step_run_id: r.stepRunId ?? null,
            lookup_id: r.lookupId ?? null,
            supersedes: r.supersedes ?? null,
          })),
        ),
      ],
    );
    const byKey = new Map(rows.map((r) => [r.fact_key, toFact(r)]));
    return records.map((r) => byKey.get(r.factKey) as FactRecord);
  }

  // ---- one change to a case: one read, one write ------------------------------------------

  /**
   * Reads a case with everything a change to it needs, in one statement (one snapshot): found
   * by its id, or by one of its step runs or look-ups. No lock is taken: commitCase writes only
   * if the case's revision is still the one read (optimistic concurrency). Reads made together
   * (the results of many cases arriving at once) go as one statement (see loadCases).
   */
  loadCase(
    by: { caseId: string } | { stepRunId: string } | { lookupId: string },
    subjectId?: string,
  ): Promise<LoadedCase | null> {
    const [kind, key] =
      'caseId' in by
        ? (['case', by.caseId] as const)
        : 'stepRunId' in by
          ? (['step-run', by.stepRunId] as const)
          : (['lookup', by.lookupId] as const);
    return this.loads.submit({ kind, key, subjectId: subjectId ?? null });
  }

  /**
   * Many loadCase reads in one statement, one result per request in their order (null where
   * there is no such case, or it is another subject's). Each request gets its own copy, even of
   * a case asked for twice: a change mutates what it loaded.
   */
  async loadCases(requests: readonly CaseRequest[]): Promise<Array<LoadedCase | null>> {
    const rows = await this.prepared<{
      ord: string;
      case: Record<string, unknown>;
      runs: Array<Record<string, unknown>>;
      lookups: Array<Record<string, unknown>>;
      facts: Array<Record<string, unknown>>;
    }>(
      'load-cases',
      // LATERAL, so that each request finds its case through the primary key (a join of the
      // unnested requests with cases could be planned as a scan of the table).
      `SELECT q.ord, row_to_json(c) AS case,
         (SELECT coalesce(json_agg(s ORDER BY s.step_id), '[]') FROM step_runs s WHERE s.case_id = c.id) AS runs,
         (SELECT coalesce(json_agg(l ORDER BY l.created_at, l.id), '[]') FROM lookups l WHERE l.case_id = c.id) AS lookups,
         (SELECT coalesce(json_agg(f), '[]') FROM (
            SELECT DISTINCT ON (fact_key) * FROM fact_records
             WHERE subject_id = c.subject_id ORDER BY fact_key, created_at DESC, id) f) AS facts
       FROM unnest($1::text[], $2::uuid[], $3::text[]) WITH ORDINALITY AS q(kind, key, subject, ord)
       CROSS JOIN LATERAL (
         SELECT * FROM cases
          WHERE id = CASE q.kind
                       WHEN 'case' THEN q.key
                       WHEN 'step-run' THEN (SELECT case_id FROM step_runs WHERE id = q.key)
                       ELSE (SELECT case_id FROM lookups WHERE id = q.key) END
            AND (q.subject IS NULL OR subject_id = q.subject)) c`,
      [requests.map((r) => r.kind), requests.map((r) => r.key), requests.map((r) => r.subjectId)],
    );
    const found = new Map(rows.map((row) => [Number(row.ord), row]));
    return requests.map((_, i) => {
      const row = found.get(i + 1);
      if (!row) return null;
      return {
        caseRecord: toCase(withDates(row.case) as unknown as CaseRow),
        runs: row.runs.map((r) => toStepRun(withDates(r) as unknown as StepRunRow)),
        lookups: row.lookups.map((l) => toLookup(withDates(l) as unknown as LookupRow)),
        facts: new Map(
          row.facts.map((f) => {
            const fact = toFact(withDates(f) as unknown as FactRow);
            return [fact.factKey, fact];
          }),
        ),
      };
    });
  }

  /**
   * Writes one change to a case, atomically: the case row (its revision moved on), the step runs
   * and look-ups it changed, and what it appended (events, fact records, look-ups, disclosures,
   * messages, outbox rows). Every part is conditional on the case row still having
   * `expectedRevision`: if another change committed first, nothing is written and `committed` is
   * false (the caller reads again and recomputes). Ids are made by the caller, so nothing needs a
   * round trip before the write. Changes committed together (to different cases) go as one
   * statement (see commitCases).
   */
  commitCase(unit: CaseUnit): Promise<CommitOutcome> {
    return this.commits.submit(unit);
  }

  /**
   * Several changes, each to a different case, in one statement: the same parts as one change,
   * each inserting or updating the rows of all the changes from one `jsonb` recordset, every row
   * joined to its case's row in `c`, which holds only the cases whose revision was still the
   * expected one. So each change commits or not on its own revision, as if alone, and those that
   * do commit together. Only the parts the batch has are in its statement (each combination is
   * its own named statement), so none is planned or started for nothing. With more than one case
   * to update, their rows are locked in id order first: two replicas' batches that share cases
   * then wait for each other instead of deadlocking.
   */
  async commitCases(units: readonly CaseUnit[]): Promise<CommitOutcome[]> {
    // Two changes to one case cannot both be checked against its revision in one statement
    // (a process's changes to one case take turns, so this is not expected; alone, each is).
    if (new Set(units.map((u) => u.caseRecord.id)).size < units.length) {
      throw new Error('a batch holds two changes to one case');
    }
    const values: unknown[] = [];
    const param = (value: unknown, cast?: string): string => {
      values.push(value);
      return `$${String(values.length)}${cast ? `::${cast}` : ''}`;
    };
    const recordset = (rows: unknown[]): string => param(JSON.stringify(rows), 'jsonb');
    const parts: string[] = [];
    const used: string[] = [];
    const part = (key: string, sql: string): void => {
      used.push(key);
      parts.push(sql);
    };
    const all = <T>(pick: (unit: CaseUnit) => T[]): Array<{ caseId: string; row: T }> =>
      units.flatMap((unit) => pick(unit).map((row) => ({ caseId: unit.caseRecord.id, row })));

    const creating = units.filter((u) => u.expectedRevision === null);
    const updating = units.filter((u) => u.expectedRevision !== null);
    const cases: string[] = [];
    if (creating.length > 0) {
      cases.push('c_new');
      part(
        'new',
        `c_new AS (
          INSERT INTO cases (id, subject_id, life_event_key, definition_id, definition_version, status,
            revision, created_at, updated_at, submitted_at, finished_at, consent_checksum, consented_at)
          SELECT n.id, n.subject_id, n.life_event_key, n.definition_id, n.definition_version,
            n.status, n.revision, now(), now(), n.submitted_at, n.finished_at, n.consent_checksum,
            n.consented_at
          FROM jsonb_to_recordset(${recordset(
            creating.map(({ caseRecord: c }) => ({
              id: c.id,
              subject_id: c.subjectId,
              life_event_key: c.lifeEventKey,
              definition_id: c.definitionId,
              definition_version: c.definitionVersion,
              status: c.status,
              revision: c.revision,
              submitted_at: iso(c.submittedAt),
              finished_at: iso(c.finishedAt),
              consent_checksum: c.consentChecksum,
              consented_at: iso(c.consentedAt),
            })),
          )}) AS n(id uuid, subject_id text, life_event_key text, definition_id uuid,
            definition_version int, status text, revision int, submitted_at timestamptz,
            finished_at timestamptz, consent_checksum text, consented_at timestamptz)
          RETURNING id)`,
      );
    }
    if (updating.length > 0) {
      cases.push('c_update');
      const ids = param(
        updating.map((u) => u.caseRecord.id),
        'uuid[]',
      );
      const locking = updating.length > 1;
      if (locking) {
        part(
          'locked',
          // MATERIALIZED: its own scan, so the rows are locked in its order whatever the plan.
          `locked AS MATERIALIZED (SELECT id FROM cases WHERE id = ANY(${ids}) ORDER BY id FOR UPDATE)`,
        );
      }
      part(
        'update',
        `c_update AS (
          UPDATE cases t SET status = u.status, revision = u.revision, updated_at = now(),
            submitted_at = u.submitted_at, finished_at = u.finished_at,
            consent_checksum = u.consent_checksum, consented_at = u.consented_at
          FROM jsonb_to_recordset(${recordset(
            updating.map(({ caseRecord: c, expectedRevision }) => ({
              id: c.id,
              expected_revision: expectedRevision,
              status: c.status,
              revision: c.revision,
              submitted_at: iso(c.submittedAt),
              finished_at: iso(c.finishedAt),
              consent_checksum: c.consentChecksum,
              consented_at: iso(c.consentedAt),
            })),
          )}) AS u(id uuid, expected_revision int, status text, revision int,
            submitted_at timestamptz, finished_at timestamptz, consent_checksum text,
            consented_at timestamptz)
          WHERE t.id = u.id AND t.revision = u.expected_revision
            AND t.id = ANY(${ids})${locking ? ' AND t.id IN (SELECT id FROM locked)' : ''}
          RETURNING t.id)`,
      );
    }
    parts.push(
      cases.length === 1
        ? `c AS (SELECT id FROM ${cases[0] ?? ''})`
        : `c AS (SELECT id FROM c_new UNION ALL SELECT id FROM c_update)`,
    );
    const RUN_COLUMNS = `r(id uuid, case_id uuid, step_id text, agency text, action text, kind text,
      state text, attempt int, max_attempts int, disclosed_fact_ids uuid[], result jsonb,
      agency_reference text, expected_decision_at timestamptz, deadline_at timestamptz,
      timer_armed_for timestamptz, overdue boolean, last_error text, ready_at timestamptz,
      finished_at timestamptz)`;
    const runRows = (list: readonly CaseUnit[]): string =>
      recordset(
        list.flatMap((u) =>
          u.runs.map((r) => ({
            id: r.id,
            case_id: r.caseId,
            step_id: r.stepId,
            agency: r.agency,
            action: r.action,
            kind: r.kind,
            state: r.state,
            attempt: r.attempt,
            max_attempts: r.maxAttempts,
            disclosed_fact_ids: r.disclosedFactIds,
            result: r.result ?? null,
            agency_reference: r.agencyReference,
            expected_decision_at: iso(r.expectedDecisionAt),
            deadline_at: iso(r.deadlineAt),
            timer_armed_for: iso(r.timerArmedFor),
            overdue: r.overdue,
            last_error: r.lastError,
            ready_at: iso(r.readyAt),
            finished_at: iso(r.finishedAt),
          })),
        ),
      );
    if (creating.some((u) => u.runs.length > 0)) {
      part(
        'new_runs',
        `new_runs AS (
          INSERT INTO step_runs (id, case_id, step_id, agency, action, kind, state, attempt,
            max_attempts, disclosed_fact_ids, result, agency_reference, expected_decision_at,
            deadline_at, timer_armed_for, overdue, last_error, ready_at, finished_at, updated_at)
          SELECT r.id, r.case_id, r.step_id, r.agency, r.action, r.kind, r.state, r.attempt,
            r.max_attempts, r.disclosed_fact_ids, r.result, r.agency_reference,
            r.expected_decision_at, r.deadline_at, r.timer_armed_for, r.overdue, r.last_error,
            r.ready_at, r.finished_at, now()
          FROM jsonb_to_recordset(${runRows(creating)}) AS ${RUN_COLUMNS}
          JOIN c ON c.id = r.case_id)`,
      );
    }
    const changedRuns = updating.flatMap((u) => u.runs.map((r) => r.id));
    if (changedRuns.length > 0) {
      part(
        'runs',
        `runs AS (
          -- 'ready' → 'dispatched' is the relay's (markPublished), outside the revision: a
          -- change computed before it ran writes the attempt's 'ready' again, which must not
          -- undo it (every new dispatch is a new attempt).
          UPDATE step_runs s SET state = CASE
              WHEN r.state = 'ready' AND s.state = 'dispatched' AND s.attempt = r.attempt
              THEN s.state ELSE r.state END,
            attempt = r.attempt,
            max_attempts = r.max_attempts, disclosed_fact_ids = r.disclosed_fact_ids,
            result = r.result, agency_reference = r.agency_reference,
            expected_decision_at = r.expected_decision_at, deadline_at = r.deadline_at,
            -- The arming sweep marks timers outside the revision: a change computed before it
            -- ran does not unmark them (a change arms, it never disarms).
            timer_armed_for = coalesce(r.timer_armed_for, s.timer_armed_for),
            overdue = r.overdue, last_error = r.last_error, ready_at = r.ready_at,
            finished_at = r.finished_at, updated_at = now()
          FROM jsonb_to_recordset(${runRows(updating)}) AS ${RUN_COLUMNS}
          JOIN c ON c.id = r.case_id
          -- By id through the primary key (the join alone would scan the table: the planner
          -- cannot know how few rows the recordset has).
          WHERE s.id = r.id AND s.id = ANY(${param(changedRuns, 'uuid[]')}))`,
      );
    }
    const events = all((u) => u.events);
    if (events.length > 0) {
      part(
        'events',
        `events AS (
          INSERT INTO case_events (case_id, seq, type, step_id, data)
          SELECT c.id, e.seq, e.type, e.step_id, coalesce(e.data, '{}'::jsonb)
          FROM jsonb_to_recordset(${recordset(
            events.map(({ caseId, row: e }) => ({
              case_id: caseId,
              seq: e.seq,
              type: e.type,
              step_id: e.stepId ?? null,
              data: e.data ?? {},
            })),
          )}) AS e(case_id uuid, seq int, type text, step_id text, data jsonb)
          JOIN c ON c.id = e.case_id)`,
      );
    }
    const newLookups = all((u) => u.newLookups);
    if (newLookups.length > 0) {
      part(
        'new_lookups',
        `new_lookups AS (
          INSERT INTO lookups (id, case_id, subject_id, agency, fact_keys, state, found_keys,
            unavailable_keys, attempt, max_attempts, disclosed_fact_ids, last_error, created_at,
            updated_at)
          SELECT l.id, c.id, l.subject_id, l.agency, l.fact_keys, l.state, l.found_keys,
            l.unavailable_keys, l.attempt, l.max_attempts, l.disclosed_fact_ids, l.last_error,
            now(), now()
          FROM jsonb_to_recordset(${recordset(
            newLookups.map(({ caseId, row: l }) => ({
              case_id: caseId,
              id: l.id,
              subject_id: l.subjectId,
              agency: l.agency,
              fact_keys: l.factKeys,
              state: l.state,
              found_keys: l.foundKeys,
              unavailable_keys: l.unavailableKeys,
              attempt: l.attempt,
              max_attempts: l.maxAttempts,
              disclosed_fact_ids: l.disclosedFactIds,
              last_error: l.lastError,
            })),
          )}) AS l(case_id uuid, id uuid, subject_id text, agency text, fact_keys text[],
            state text, found_keys text[], unavailable_keys text[], attempt int,
            max_attempts int, disclosed_fact_ids uuid[], last_error text)
          JOIN c ON c.id = l.case_id)`,
      );
    }
    const changedLookups = all((u) => u.changedLookups);
    if (changedLookups.length > 0) {
      part(
        'changed_lookups',
        `changed_lookups AS (
          UPDATE lookups t SET state = l.state, found_keys = l.found_keys,
            unavailable_keys = l.unavailable_keys, attempt = l.attempt,
            disclosed_fact_ids = l.disclosed_fact_ids, last_error = l.last_error, updated_at = now(),
            answered_at = CASE WHEN l.state IN ('answered', 'failed')
                               THEN coalesce(t.answered_at, now()) END
          FROM jsonb_to_recordset(${recordset(
            changedLookups.map(({ caseId, row: l }) => ({
              case_id: caseId,
              id: l.id,
              state: l.state,
              found_keys: l.foundKeys,
              unavailable_keys: l.unavailableKeys,
              attempt: l.attempt,
              disclosed_fact_ids: l.disclosedFactIds,
              last_error: l.lastError,
            })),
          )}) AS l(case_id uuid, id uuid, state text, found_keys text[], unavailable_keys text[],
            attempt int, disclosed_fact_ids uuid[], last_error text)
          JOIN c ON c.id = l.case_id
          WHERE t.id = l.id AND t.id = ANY(${param(
            changedLookups.map(({ row }) => row.id),
            'uuid[]',
          )}))`,
      );
    }
    const facts = all((u) => u.facts);
    if (facts.length > 0) {
      part(
        'facts',
        `facts AS (
          INSERT INTO fact_records (id, subject_id, fact_key, value, source, agency, case_id,
            step_run_id, lookup_id, supersedes, created_at)
          SELECT f.id, f.subject_id, f.fact_key, f.value, f.source, f.agency, f.case_id,
            f.step_run_id, f.lookup_id, f.supersedes, now()
          FROM jsonb_to_recordset(${recordset(
            facts.map(({ caseId, row: f }) => ({
              unit_case_id: caseId,
              id: f.id,
              subject_id: f.subjectId,
              fact_key: f.factKey,
              value: f.value,
              source: f.source,
              agency: f.agency,
              case_id: f.caseId,
              step_run_id: f.stepRunId,
              lookup_id: f.lookupId,
              supersedes: f.supersedes,
            })),
          )}) AS f(unit_case_id uuid, id uuid, subject_id text, fact_key text, value jsonb,
            source text, agency text, case_id uuid, step_run_id uuid, lookup_id uuid,
            supersedes uuid)
          JOIN c ON c.id = f.unit_case_id)`,
      );
    }
    const disclosures = all((u) => u.disclosures);
    if (disclosures.length > 0) {
      part(
        'disclosures',
        `disclosures AS (
          INSERT INTO disclosures (subject_id, case_id, step_run_id, lookup_id, agency,
            fact_record_ids, fact_keys, basis)
          SELECT d.subject_id, c.id, d.step_run_id, d.lookup_id, d.agency, d.fact_record_ids,
            d.fact_keys, d.basis
          FROM jsonb_to_recordset(${recordset(
            disclosures.map(({ caseId, row: d }) => ({
              case_id: caseId,
              subject_id: d.subjectId,
              step_run_id: d.stepRunId ?? null,
              lookup_id: d.lookupId ?? null,
              agency: d.agency,
              fact_record_ids: d.factRecordIds,
              fact_keys: d.factKeys,
              basis: d.basis,
            })),
          )}) AS d(case_id uuid, subject_id text, step_run_id uuid, lookup_id uuid, agency text,
            fact_record_ids uuid[], fact_keys text[], basis text)
          JOIN c ON c.id = d.case_id)`,
      );
    }
    const messages = all((u) => u.messages);
    if (messages.length > 0) {
      part(
        'messages',
        // clock_timestamp(), not now(): messages of one change keep their order when listed.
        `messages AS (
          INSERT INTO messages (subject_id, case_id, step_id, sender, kind, template, params,
            created_at)
          SELECT m.subject_id, c.id, m.step_id, m.sender, m.kind, m.template, m.params,
            clock_timestamp()
          FROM jsonb_to_recordset(${recordset(
            messages.map(({ caseId, row: m }, ord) => ({
              ord,
              case_id: caseId,
              subject_id: m.subjectId,
              step_id: m.stepId ?? null,
              sender: m.sender,
              kind: m.kind,
              template: m.template,
              params: m.params ?? {},
            })),
          )}) AS m(ord int, case_id uuid, subject_id text, step_id text, sender text, kind text,
            template text, params jsonb)
          JOIN c ON c.id = m.case_id
          ORDER BY m.ord)`,
      );
    }
    const outbox = all((u) => u.outbox);
    const withOutbox = outbox.length > 0;
    if (withOutbox) {
      part(
        'outbox',
        `outbox AS (
          INSERT INTO outbox (queue, job_name, job_id, payload, available_at)
          SELECT o.queue, o.job_name, o.job_id, o.payload, coalesce(o.available_at, now())
          FROM jsonb_to_recordset(${recordset(
            outbox.map(({ caseId, row: m }, ord) => ({
              ord,
              case_id: caseId,
              queue: m.queue,
              job_name: m.jobName,
              job_id: m.jobId,
              payload: m.payload,
              available_at: iso(m.availableAt),
            })),
          )}) AS o(ord int, case_id uuid, queue text, job_name text, job_id text, payload jsonb,
            available_at timestamptz)
          JOIN c ON c.id = o.case_id
          ORDER BY o.ord
          RETURNING id, queue, job_id)`,
      );
    }
    const rows = await this.prepared<{
      committed: string[] | null;
      outbox: Array<{ id: string; queue: string; job_id: string }>;
    }>(
      `commit-cases-${used.join('-')}`,
      // Reading all of c here takes every case's lock (in id order, through `locked`) before
      // the other parts, which run after the main query, touch any other row.
      `WITH ${parts.join(',\n')}
       SELECT (SELECT array_agg(id::text) FROM c) AS committed,
         ${
           withOutbox
             ? `(SELECT coalesce(json_agg(json_build_object('id', id::text, 'queue', queue, 'job_id', job_id)), '[]') FROM outbox)`
             : `'[]'::json`
         } AS outbox`,
      values,
    );
    const row = rows[0];
    const committed = new Set(row?.committed ?? []);
    // A job id is its case's (made of a step run's or look-up's id), and one per queue.
    const ids = new Map((row?.outbox ?? []).map((o) => [`${o.queue} ${o.job_id}`, o.id]));
    return units.map((unit) => {
      const caseId = unit.caseRecord.id;
      if (!committed.has(caseId)) return { committed: false, outbox: [] };
      return {
        committed: true,
        outbox: unit.outbox.map((m) => ({ ...m, id: ids.get(`${m.queue} ${m.jobId}`) ?? '' })),
      };
    });
  }

  // ---- subjects -------------------------------------------------------------------------

  /** The subject with this identity digest, created on first sight (concurrently safe). */
  async subjectByDigest(digest: string): Promise<string> {
    const rows = await this.prepared<{ id: string }>(
      'subject-by-digest',
      `WITH created AS (
         INSERT INTO subjects (id, identity_digest) VALUES ($2, $1)
         ON CONFLICT (identity_digest) DO NOTHING RETURNING id)
       SELECT id FROM created UNION ALL SELECT id FROM subjects WHERE identity_digest = $1`,
      // Minted in time order, as the engine's ids are (src/common/uuid.ts).
      [digest, uuidv7()],
    );
    const id = rows[0]?.id;
    if (id === undefined) throw new Error('subject could be neither created nor found');
    return id;
  }

  /** A subject without an identity (tests and tools that open cases directly). */
  async createSubject(): Promise<string> {
    const rows = await this.dataSource.manager.query<Array<{ id: string }>>(
      'INSERT INTO subjects DEFAULT VALUES RETURNING id',
    );
    return (rows[0] as { id: string }).id;
  }

  // ---- look-ups ---------------------------------------------------------------------------

  /**
   * Whether any look-up of the case is still waiting for its agency's answer. The state is a
   * parameter so that the generic plan reads the case's look-ups (lookups_case), never every
   * pending one (lookups_pending), whatever the statistics say (see markPublished).
   */
  async hasPendingLookups(caseId: string): Promise<boolean> {
    const rows = await this.prepared<{ pending: boolean }>(
      'has-pending-lookups',
      'SELECT EXISTS (SELECT 1 FROM lookups WHERE case_id = $1 AND state = $2) AS pending',
      [caseId, 'pending'],
    );
    return rows[0]?.pending ?? false;
  }

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

  // ---- messages ---------------------------------------------------------------------------
}
