import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import type pg from 'pg';
import { DataSource, type EntityManager } from 'typeorm';
import { Batcher, eachAloneOnFailure } from '../database/batcher.js';
import { preparedQuery } from '../database/prepared.js';
import {
  findOrCreateSubjects,
  readFactsRevisions,
  readSubjectsFacts,
  type NamedQuery,
} from './subject-rows.js';
import { AGENCY_NOT_ONBOARDED } from '#agency-contract';
import type { StepState } from '#workflow';
import {
  commitCasesStatement,
  commitOutcomes,
  type CaseUnit,
  type CommitOutcome,
  type CommitRow,
} from './case-commit.sql.js';
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
  CaseRecord,
  CaseStatus,
  FactRecord,
  LookupRecord,
  StepRunRecord,
} from './engine.types.js';

// A change and its outcome are the commit statement's types (case-commit.sql.ts), re-exported:
// the engine, its tests and the benchmarks take them from the repository that commits them.
export type { CaseUnit, CommitOutcome } from './case-commit.sql.js';

/** A case as one statement reads it: the case, its step runs and look-ups, its subject's facts. */
export interface LoadedCase {
  caseRecord: CaseRecord;
  runs: StepRunRecord[];
  lookups: LookupRecord[];
  /** The subject's newest record of each fact. */
  facts: Map<string, FactRecord>;
  /** The revision of the subject's facts these were read at (see CaseUnit.subjectFence). */
  factsRevision: number;
}

/** What loadCase looks a case up by. */
export interface CaseRequest {
  kind: 'case' | 'step-run' | 'lookup';
  key: string;
  /** Only a case of this subject (a citizen's request), or any. */
  subjectId: string | null;
}

export type BatchObserver = (statement: 'load-cases' | 'commit-cases', size: number) => void;

/**
 * At most this many reads or changes in one statement, and this many such statements at once
 * per process (the pool's other connections stay free for everything else).
 */
const BATCH_LIMITS = { maxBatch: 64, maxInFlight: 2 };

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
 * Reads and writes of cases. A change to a case is one read (loadCase: the case with everything
 * the change needs, in one statement) and one write (commitCase: one statement with the case
 * row, the step runs and look-ups it changed and what it appended, its outbox rows included, so
 * they commit together: invariant 2), each batched across cases. Neither runs in a transaction:
 * one statement is atomic, and the write takes effect only if the case's revision is still the
 * one read (optimistic concurrency). Also the API's reads of cases (findCase, searchCases,
 * stepRuns, events), facts, subjects and the deadline escalation's casesWithOverdueSteps. The
 * background work's claims and marks (reconciler, timer arming, outbox relay) are
 * HousekeepingRepository's.
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

  /** The subjects' statements (subject-rows.ts) run as this repository's named statements. */
  private readonly sql: NamedQuery = (name, text, values) => this.prepared(name, text, values);

  /**
   * The facts revisions of the subjects of cases read from the owner's copy (CaseRunner.current),
   * many in one statement: in a burst every citizen's read asks for one.
   */
  private readonly revisions = new Batcher<string, number>(
    (subjectIds) => eachAloneOnFailure(subjectIds, (batch) => readFactsRevisions(this.sql, batch)),
    BATCH_LIMITS,
  );

  /** The facts of the subjects of cases being opened, many in one statement (one snapshot). */
  private readonly subjectsFacts = new Batcher<
    string,
    { facts: Map<string, FactRecord>; revision: number }
  >(
    (subjectIds) => eachAloneOnFailure(subjectIds, (batch) => readSubjectsFacts(this.sql, batch)),
    BATCH_LIMITS,
  );

  /** The subjects of citizens opening cases, found or created many in one statement. */
  private readonly subjects = new Batcher<string, string>(
    (digests) => eachAloneOnFailure(digests, (batch) => findOrCreateSubjects(this.sql, batch)),
    BATCH_LIMITS,
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
        // `kommun` finds the steps of each municipality (kommun-0180) too (decision 0024).
        (p) =>
          `EXISTS (SELECT 1 FROM step_runs s WHERE s.case_id = c.id
             AND (s.agency = ${p} OR starts_with(s.agency, ${p} || '-')))`,
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
   * Cases with an unfinished step past its deadline that has not been escalated yet. The case's
   * status is read through its primary key, not joined (see HousekeepingRepository.claimStale).
   */
  /** Cases with a step waiting for its agency's instance to be onboarded (decision 0024). */
  async casesWithHeldSteps(limit: number, partitions?: readonly number[]): Promise<string[]> {
    const rows = await this.dataSource.manager.query<Array<{ case_id: string }>>(
      `SELECT DISTINCT s.case_id FROM step_runs s
       WHERE s.state = 'ready' AND s.last_error = $3::text
         AND (SELECT c.status FROM cases c WHERE c.id = s.case_id) = 'running'
         AND ($2::int[] IS NULL OR leo_partition(s.case_id) = ANY($2::int[]))
       LIMIT $1`,
      [limit, partitions ?? null, AGENCY_NOT_ONBOARDED],
    );
    return rows.map((r) => r.case_id);
  }

  async casesWithOverdueSteps(limit: number, partitions?: readonly number[]): Promise<string[]> {
    const rows = await this.dataSource.manager.query<Array<{ case_id: string }>>(
      `SELECT DISTINCT s.case_id FROM step_runs s
       WHERE s.deadline_at < now() AND NOT s.overdue
         AND s.state IN ('ready', 'dispatched', 'awaiting-decision', 'awaiting-citizen')
         AND (SELECT c.status FROM cases c WHERE c.id = s.case_id) IN ('running', 'action-required')
         AND ($2::int[] IS NULL OR leo_partition(s.case_id) = ANY($2::int[]))
       LIMIT $1`,
      [limit, partitions ?? null],
    );
    return rows.map((r) => r.case_id);
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

  /**
   * Appends fact records (never overwrites), moving their subjects' facts revision on (so a case
   * kept in memory with older facts is read again); returns them as stored, in the order given.
   */
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
      `WITH bumped AS (
         UPDATE subjects SET facts_revision = facts_revision + 1
          WHERE id IN (SELECT subject_id FROM jsonb_to_recordset($1::jsonb) AS s(subject_id text)))
       INSERT INTO fact_records (subject_id, fact_key, value, source, agency, case_id, step_run_id, lookup_id, supersedes)
       SELECT r.subject_id, r.fact_key, coalesce(r.value, 'null'::jsonb), r.source, r.agency, r.case_id, r.step_run_id, r.lookup_id, r.supersedes
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

  /** A subject's facts revision (decision 0019); -1 for no such subject. */
  factsRevision(subjectId: string): Promise<number> {
    return this.revisions.submit(subjectId);
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
      facts_revision: string;
    }>(
      'load-cases',
      // LATERAL, so that each request finds its case through the primary key (a join of the
      // unnested requests with cases could be planned as a scan of the table).
      `SELECT q.ord, row_to_json(c) AS case,
         (SELECT coalesce(json_agg(s ORDER BY s.step_id), '[]') FROM step_runs s WHERE s.case_id = c.id) AS runs,
         (SELECT coalesce(json_agg(l ORDER BY l.created_at, l.id), '[]') FROM lookups l WHERE l.case_id = c.id) AS lookups,
         (SELECT coalesce(json_agg(f), '[]') FROM (
            SELECT DISTINCT ON (fact_key) * FROM fact_records
             WHERE subject_id = c.subject_id ORDER BY fact_key, created_at DESC, id) f) AS facts,
         (SELECT facts_revision FROM subjects WHERE id = c.subject_id) AS facts_revision
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
        factsRevision: Number(row.facts_revision),
      };
    });
  }

  /**
   * The subject's current value of each fact and the revision they were read at, in one
   * statement (one snapshot): what a new case of the subject is decided on.
   */
  subjectFacts(subjectId: string): Promise<{ facts: Map<string, FactRecord>; revision: number }> {
    return this.subjectsFacts.submit(subjectId);
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
   * Several changes, each to a different case, in one statement (commitCasesStatement in
   * case-commit.sql.ts builds it and says how each change commits on its own revision).
   */
  async commitCases(units: readonly CaseUnit[]): Promise<CommitOutcome[]> {
    const statement = commitCasesStatement(units);
    const rows = await this.prepared<CommitRow>(statement.name, statement.text, statement.values);
    return commitOutcomes(units, rows[0]);
  }

  // ---- subjects -------------------------------------------------------------------------

  /** The subject with this identity digest, created on first sight (concurrently safe). */
  subjectByDigest(digest: string): Promise<string> {
    return this.subjects.submit(digest);
  }

  /** The subject of an identity digest, if there is one yet (never made here). */
  async findSubjectByDigest(digest: string): Promise<string | undefined> {
    const rows = await this.prepared<{ id: string }>(
      'subject-by-digest-only',
      'SELECT id FROM subjects WHERE identity_digest = $1',
      [digest],
    );
    return rows[0]?.id;
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
   * pending one (lookups_pending), whatever the statistics say (see
   * HousekeepingRepository.markPublished).
   */
  async hasPendingLookups(caseId: string): Promise<boolean> {
    const rows = await this.prepared<{ pending: boolean }>(
      'has-pending-lookups',
      'SELECT EXISTS (SELECT 1 FROM lookups WHERE case_id = $1 AND state = $2) AS pending',
      [caseId, 'pending'],
    );
    return rows[0]?.pending ?? false;
  }
}
