import { commitFences } from './case-commit.fences.js';
import type { CaseUnit } from './case-unit.js';
import type { OutboxMessage } from './engine.types.js';

export type { CaseUnit };

export interface CommitOutcome {
  committed: boolean;
  outbox: Array<{ id: string } & OutboxMessage>;
}

/** A named statement: its name (one per text), its text and its parameters. */
export interface CommitStatement {
  name: string;
  text: string;
  values: unknown[];
}

/** The one row the commit-cases statement returns. */
export interface CommitRow {
  committed: string[] | null;
  outbox: Array<{ id: string; queue: string; job_id: string }>;
}

const iso = (d: Date | null | undefined): string | null => (d ? d.toISOString() : null);

/**
 * Several changes, each to a different case, in one statement: the same parts as one change,
 * each inserting or updating the rows of all the changes from one `jsonb` recordset, every row
 * joined to its case's row in `c`, which holds only the cases whose revision was still the
 * expected one. So each change commits or not on its own revision, as if alone, and those that
 * do commit together. Only the parts the batch has are in its statement (each combination is
 * its own named statement), so none is planned or started for nothing. With more than one case
 * to update, their rows are locked in id order first: two replicas' batches that share cases
 * then wait for each other instead of deadlocking.
 *
 * Pure: it builds the statement (see EngineRepository.commitCases, which runs it); the mapping of
 * its row back to each change is commitOutcomes.
 */
export function commitCasesStatement(units: readonly CaseUnit[]): CommitStatement {
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
  const { fenced, owned, fence } = commitFences(units, param);
  if (owned.length > 0) used.push('owned');
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
            finished_at timestamptz, consent_checksum text, consented_at timestamptz)${
              fenced.length + owned.length > 0 ? `\n          WHERE true${fence('n')}` : ''
            }
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
          WHERE t.id = u.id AND t.revision = u.expected_revision${fence('t')}
            AND t.id = ANY(${ids})${locking ? ' AND t.id IN (SELECT id FROM locked)' : ''}
          RETURNING t.id)`,
    );
  }
  parts.push(
    cases.length === 1
      ? `c AS (SELECT id FROM ${cases[0] ?? ''})`
      : `c AS (SELECT id FROM c_new UNION ALL SELECT id FROM c_update)`,
  );
  if (fenced.length > 0) used.push('fenced');
  const bumpers = fenced.filter((u) => u.subjectFence?.bump === true);
  const bumped = [...new Set(bumpers.map((u) => u.caseRecord.subjectId))].sort();
  if (bumped.length > 1) {
    part(
      'subjects_locked',
      // As the cases above: several subjects' rows are locked in id order, so two batches that
      // move the same subjects on wait for each other instead of deadlocking.
      `subjects_locked AS MATERIALIZED (
          SELECT id FROM subjects WHERE id = ANY(${param(bumped, 'text[]')}) ORDER BY id
          FOR NO KEY UPDATE)`,
    );
  }
  if (bumpers.length > 0) {
    part(
      'subject_bumped',
      // By one per committed change that records facts: two changes of one subject in a batch
      // move it by two, so neither's kept state (which lacks the other's facts) matches it.
      `subject_bumped AS (
          UPDATE subjects s SET facts_revision = s.facts_revision + b.n
          FROM (SELECT x.subject_id, count(*) AS n
                  FROM jsonb_to_recordset(${recordset(
                    bumpers.map((u) => ({
                      case_id: u.caseRecord.id,
                      subject_id: u.caseRecord.subjectId,
                    })),
                  )}) AS x(case_id uuid, subject_id text)
                  JOIN c ON c.id = x.case_id GROUP BY x.subject_id) b
          WHERE s.id = b.subject_id${
            bumped.length > 1 ? ' AND s.id IN (SELECT id FROM subjects_locked)' : ''
          })`,
    );
  }
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
            attempt = r.attempt, agency = r.agency,
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
            updated_at, answered_at)
          SELECT l.id, c.id, l.subject_id, l.agency, l.fact_keys, l.state, l.found_keys,
            l.unavailable_keys, l.attempt, l.max_attempts, l.disclosed_fact_ids, l.last_error,
            -- Created and closed in one change (decisions folded together): closed now.
            now(), now(), CASE WHEN l.state IN ('answered', 'failed') THEN now() END
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
          -- A JSON null value (an answer of null, where the fact allows it) comes out of the
          -- recordset as SQL NULL: stored as the JSON null it is.
          SELECT f.id, f.subject_id, f.fact_key, coalesce(f.value, 'null'::jsonb), f.source,
            f.agency, f.case_id, f.step_run_id, f.lookup_id, f.supersedes, now()
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
  return {
    name: `commit-cases-${used.join('-')}`,
    // Reading all of c here takes every case's lock (in id order, through `locked`) before
    // the other parts, which run after the main query, touch any other row.
    text: `WITH ${parts.join(',\n')}
       SELECT (SELECT array_agg(id::text) FROM c) AS committed,
         ${
           withOutbox
             ? `(SELECT coalesce(json_agg(json_build_object('id', id::text, 'queue', queue, 'job_id', job_id)), '[]') FROM outbox)`
             : `'[]'::json`
         } AS outbox`,
    values,
  };
}

/** What each change of the batch came to, in their order, from the statement's row. */
export function commitOutcomes(
  units: readonly CaseUnit[],
  row: CommitRow | undefined,
): CommitOutcome[] {
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
