import { describe, expect, it } from '@jest/globals';
import { commitCasesStatement, commitOutcomes, type CaseUnit } from './case-commit.sql.js';
import type { LookupRecord, StepRunRecord } from './engine.types.js';

const AT = new Date('2024-05-06T07:08:09.000Z');
const id = (n: number): string => `0190a1b2-0000-7000-8000-${String(n).padStart(12, '0')}`;

/** A change to case `n` that writes only its case row; `creating` makes it a new case. */
function unit(n: number, parts: Partial<CaseUnit> = {}, creating = false): CaseUnit {
  return {
    caseRecord: {
      id: id(n),
      subjectId: id(900),
      lifeEventKey: 'start-business',
      definitionId: id(800),
      definitionVersion: 1,
      status: 'running',
      revision: 4,
      createdAt: AT,
      updatedAt: AT,
      submittedAt: AT,
      finishedAt: null,
      consentChecksum: 'c',
      consentedAt: AT,
    },
    expectedRevision: creating ? null : 3,
    runs: [],
    events: [],
    facts: [],
    newLookups: [],
    changedLookups: [],
    disclosures: [],
    messages: [],
    outbox: [],
    ...parts,
  };
}

const run = (n: number, caseId: string): StepRunRecord => ({
  id: id(n),
  caseId,
  stepId: 'register',
  agency: 'bolagsverket',
  action: 'register-sole-trader',
  kind: 'agency',
  state: 'ready',
  attempt: 1,
  maxAttempts: 3,
  disclosedFactIds: [],
  result: null,
  agencyReference: null,
  expectedDecisionAt: null,
  deadlineAt: AT,
  timerArmedFor: null,
  overdue: false,
  lastError: null,
  readyAt: AT,
  dispatchedAt: null,
  finishedAt: null,
  updatedAt: AT,
});

const lookup = (n: number, caseId: string): LookupRecord => ({
  id: id(n),
  caseId,
  subjectId: id(900),
  agency: 'skatteverket',
  factKeys: ['address'],
  state: 'pending',
  foundKeys: [],
  unavailableKeys: [],
  attempt: 1,
  maxAttempts: 3,
  disclosedFactIds: [],
  lastError: null,
  createdAt: AT,
  updatedAt: AT,
  answeredAt: null,
});

const outbox = (jobId: string): CaseUnit['outbox'][number] => ({
  queue: 'agency.bolagsverket',
  jobName: 'step.execute',
  jobId,
  payload: { jobId },
});

/** The names of the statement's CTEs, in order. */
const ctes = (text: string): string[] =>
  [...text.matchAll(/(?:^WITH |,\n)(\w+) AS (?:MATERIALIZED )?\(/g)].map((m) => m[1] ?? '');

describe('commitCasesStatement', () => {
  it('has only the parts the batch has, and its name lists them', () => {
    const updated = commitCasesStatement([
      unit(1, { events: [{ seq: 1, type: 'case.submitted' }] }),
    ]);
    expect(updated.name).toBe('commit-cases-update-events');
    expect(ctes(updated.text)).toEqual(['c_update', 'c', 'events']);

    const created = commitCasesStatement([
      unit(1, { runs: [run(11, id(1))], outbox: [outbox('a')] }, true),
    ]);
    expect(created.name).toBe('commit-cases-new-new_runs-outbox');
    expect(ctes(created.text)).toEqual(['c_new', 'c', 'new_runs', 'outbox']);
  });

  it('names every part of a batch that has them all, in the order they are written', () => {
    const c = id(1);
    const everything = commitCasesStatement([
      unit(1, {
        runs: [run(11, c)],
        events: [{ seq: 1, type: 'step.ready', stepId: 'register' }],
        facts: [
          {
            id: id(21),
            subjectId: id(900),
            factKey: 'address',
            value: 'Storgatan 1',
            source: 'lookup',
            agency: 'skatteverket',
            caseId: c,
            stepRunId: null,
            lookupId: id(31),
            supersedes: null,
            createdAt: AT,
          },
        ],
        newLookups: [lookup(31, c)],
        changedLookups: [lookup(32, c)],
        disclosures: [
          {
            subjectId: id(900),
            caseId: c,
            stepRunId: id(11),
            agency: 'bolagsverket',
            factRecordIds: [id(21)],
            factKeys: ['address'],
            basis: 'consent',
          },
        ],
        messages: [
          {
            subjectId: id(900),
            caseId: c,
            sender: 'leo',
            kind: 'receipt',
            template: 'case-submitted',
          },
        ],
        outbox: [outbox('a')],
      }),
    ]);
    expect(everything.name).toBe(
      'commit-cases-update-runs-events-new_lookups-changed_lookups-facts-disclosures-messages-outbox',
    );
    expect(ctes(everything.text)).toEqual([
      'c_update',
      'c',
      'runs',
      'events',
      'new_lookups',
      'changed_lookups',
      'facts',
      'disclosures',
      'messages',
      'outbox',
    ]);
    // The outbox rows' ids come back only when there are some.
    expect(everything.text).toContain('FROM outbox)');
    expect(commitCasesStatement([unit(1)]).text).toContain(`'[]'::json AS outbox`);
  });

  it('locks the updated cases in id order only when there is more than one', () => {
    const one = commitCasesStatement([unit(2), unit(1, {}, true)]);
    expect(one.name).toBe('commit-cases-new-update');
    expect(one.text).not.toContain('locked');

    const two = commitCasesStatement([unit(2), unit(1), unit(3, {}, true)]);
    expect(two.name).toBe('commit-cases-new-locked-update');
    expect(ctes(two.text)).toEqual(['c_new', 'locked', 'c_update', 'c']);
    expect(two.text).toContain(
      'locked AS MATERIALIZED (SELECT id FROM cases WHERE id = ANY($2::uuid[]) ORDER BY id FOR UPDATE)',
    );
    expect(two.text).toContain('AND t.id IN (SELECT id FROM locked)');
    expect(two.text).toContain('c AS (SELECT id FROM c_new UNION ALL SELECT id FROM c_update)');
  });

  it('checks the subject facts revision of a fenced change, and moves it on for those that record facts', () => {
    const fence = (expected: number, bump: boolean): Partial<CaseUnit> => ({
      subjectFence: { expected, bump },
    });
    const statement = commitCasesStatement([
      unit(1, fence(7, true)),
      unit(2, fence(7, false)),
      unit(3),
      unit(4, fence(7, false), true),
    ]);
    expect(statement.name).toBe('commit-cases-new-locked-update-fenced-subject_bumped');
    expect(ctes(statement.text)).toEqual(['c_new', 'locked', 'c_update', 'c', 'subject_bumped']);
    // The revision each fenced change was decided on, by case (case 3 has none: not checked).
    expect(JSON.parse(String(statement.values[0]))).toEqual({ [id(1)]: 7, [id(2)]: 7, [id(4)]: 7 });
    const check = (alias: string): string =>
      `AND ($1::jsonb ->> ${alias}.id::text IS NULL OR (SELECT facts_revision FROM subjects`;
    expect(statement.text).toContain(check('n'));
    expect(statement.text).toContain(check('t'));
    // Moved on by one per committed change that records facts (only case 1 here).
    expect(statement.text).toContain('SET facts_revision = s.facts_revision + b.n');
    expect(statement.text).toContain('JOIN c ON c.id = x.case_id GROUP BY x.subject_id');
    expect(statement.values).toContain(JSON.stringify([{ case_id: id(1), subject_id: id(900) }]));
    // Unfenced batches are the statement they were.
    expect(commitCasesStatement([unit(3)]).text).not.toContain('subject');
  });

  it("checks the owner's epoch of a change decided under a lease, new or updated", () => {
    const lease = (epoch: number): Partial<CaseUnit> => ({
      owner: { member: 'engine-a', partition: 7, epoch },
    });
    const statement = commitCasesStatement([unit(1, lease(3)), unit(2), unit(3, lease(3), true)]);
    expect(statement.name).toBe('commit-cases-owned-new-locked-update');
    const owners = statement.values.find(
      (v) => typeof v === 'string' && v.includes('engine-a'),
    ) as string;
    // By case: the member, the partition and the epoch it was decided under (case 2: none).
    expect(JSON.parse(owners)).toEqual({
      [id(1)]: { m: 'engine-a', p: 7, e: 3 },
      [id(3)]: { m: 'engine-a', p: 7, e: 3 },
    });
    for (const alias of ['n', 't']) {
      expect(statement.text).toMatch(
        new RegExp(
          `\\$\\d+::jsonb -> ${alias}\\.id::text IS NULL OR EXISTS \\(SELECT 1 FROM engine_partitions ep`,
        ),
      );
    }
    expect(statement.text).toContain('AND ep.epoch = (');
    // Without leases, the statement is the one it was.
    expect(commitCasesStatement([unit(2)]).text).not.toContain('engine_partitions');
  });

  it('locks the subjects it moves on in id order when there is more than one', () => {
    const of = (n: number, subject: number): CaseUnit => {
      const u = unit(n, { subjectFence: { expected: 1, bump: true } });
      return { ...u, caseRecord: { ...u.caseRecord, subjectId: id(subject) } };
    };
    const one = commitCasesStatement([of(1, 901), of(2, 901)]);
    expect(one.text).not.toContain('subjects_locked');
    const two = commitCasesStatement([of(1, 902), of(2, 901)]);
    expect(ctes(two.text)).toContain('subjects_locked');
    expect(two.text).toContain('ORDER BY id\n          FOR NO KEY UPDATE');
    expect(two.values).toContainEqual([id(901), id(902)]);
    expect(two.text).toContain('AND s.id IN (SELECT id FROM subjects_locked)');
  });

  it('refuses two changes to one case', () => {
    expect(() => commitCasesStatement([unit(1), unit(2), unit(1)])).toThrow(
      'a batch holds two changes to one case',
    );
  });

  it('writes this statement for one change with one event', () => {
    const statement = commitCasesStatement([
      unit(1, { events: [{ seq: 7, type: 'step.completed', stepId: 'register', data: { a: 1 } }] }),
    ]);
    // The text as Postgres receives it, whitespace included: a change to it shows here.
    expect(statement.text).toBe(`WITH c_update AS (
          UPDATE cases t SET status = u.status, revision = u.revision, updated_at = now(),
            submitted_at = u.submitted_at, finished_at = u.finished_at,
            consent_checksum = u.consent_checksum, consented_at = u.consented_at
          FROM jsonb_to_recordset($2::jsonb) AS u(id uuid, expected_revision int, status text, revision int,
            submitted_at timestamptz, finished_at timestamptz, consent_checksum text,
            consented_at timestamptz)
          WHERE t.id = u.id AND t.revision = u.expected_revision
            AND t.id = ANY($1::uuid[])
          RETURNING t.id),
c AS (SELECT id FROM c_update),
events AS (
          INSERT INTO case_events (case_id, seq, type, step_id, data)
          SELECT c.id, e.seq, e.type, e.step_id, coalesce(e.data, '{}'::jsonb)
          FROM jsonb_to_recordset($3::jsonb) AS e(case_id uuid, seq int, type text, step_id text, data jsonb)
          JOIN c ON c.id = e.case_id)
       SELECT (SELECT array_agg(id::text) FROM c) AS committed,
         '[]'::json AS outbox`);
    expect(statement.values).toEqual([
      [id(1)],
      JSON.stringify([
        {
          id: id(1),
          expected_revision: 3,
          status: 'running',
          revision: 4,
          submitted_at: AT.toISOString(),
          finished_at: null,
          consent_checksum: 'c',
          consented_at: AT.toISOString(),
        },
      ]),
      JSON.stringify([
        { case_id: id(1), seq: 7, type: 'step.completed', step_id: 'register', data: { a: 1 } },
      ]),
    ]);
  });
});

describe('commitOutcomes', () => {
  it('tells each change whether it committed, with its outbox rows ids', () => {
    const units = [
      unit(1, { outbox: [outbox('a'), outbox('b')] }),
      unit(2, { outbox: [outbox('c')] }),
      unit(3),
    ];
    const outcomes = commitOutcomes(units, {
      committed: [id(3), id(1)],
      outbox: [
        { id: '11', queue: 'agency.bolagsverket', job_id: 'b' },
        { id: '10', queue: 'agency.bolagsverket', job_id: 'a' },
      ],
    });
    expect(outcomes).toEqual([
      {
        committed: true,
        outbox: [
          { ...outbox('a'), id: '10' },
          { ...outbox('b'), id: '11' },
        ],
      },
      { committed: false, outbox: [] },
      { committed: true, outbox: [] },
    ]);
  });

  it('commits nothing without a row or with no case committed', () => {
    const units = [unit(1, { outbox: [outbox('a')] })];
    expect(commitOutcomes(units, undefined)).toEqual([{ committed: false, outbox: [] }]);
    expect(commitOutcomes(units, { committed: null, outbox: [] })).toEqual([
      { committed: false, outbox: [] },
    ]);
  });
});
