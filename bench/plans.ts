import 'reflect-metadata';
import { randomUUID } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { DataSource, type EntityManager } from 'typeorm';
import type { StepJob } from '#agency-contract';
import { MockLedgerRepository } from '../src/adapters/mock-ledger.repository.js';
import { CitizenRepository } from '../src/citizen/citizen.repository.js';
import { EngineRepository, type CaseUnit } from '../src/engine/engine.repository.js';
import { HousekeepingRepository } from '../src/engine/housekeeping.repository.js';
import { MetricsRepository } from '../src/observability/metrics.repository.js';

/**
 * `npm run bench:plans -- --database-url URL`: the plan of every statement leo's repositories
 * run, on a loaded database, with EXPLAIN (ANALYZE, BUFFERS) inside a transaction that is rolled
 * back (writes included). The statements are not copies: each repository method is called on a
 * DataSource that records what it would send, with ids of a real case of the database, so the
 * check follows the code.
 *
 * Named statements (src/database/prepared.ts) are explained with the generic plan a pooled
 * connection settles on after five executions (plan_cache_mode = force_generic_plan), the others
 * with the custom plan an unnamed statement gets. A statement is flagged when a node reads more
 * than `--max-rows` rows of a table that grows with history (an index range that is not one
 * case's or one citizen's), or scans such a table sequentially once it holds more than that:
 * its cost would grow with the table.
 */

/** The tables that grow with every case. */
export const GROWING = new Set([
  'subjects',
  'cases',
  'step_runs',
  'case_events',
  'fact_records',
  'disclosures',
  'lookups',
  'messages',
  'outbox',
  'mock_agency_requests',
  'mock_agency_effects',
]);

interface Statement {
  label: string;
  /** Run as a named prepared statement (generic plan after five executions). */
  named: boolean;
  /**
   * What it may read: the rows of one case or citizen (a few dozen), or the backlog of work in
   * flight (the sweeper, the reconciler, the metrics: bounded by load, not by history).
   */
  reads: 'case' | 'backlog';
  text: string;
  values: unknown[];
}

/** Statements whose work is the backlog in flight (labels below): O(in flight) is their due. */
const BACKLOG = [
  'engine claimUnsent',
  'engine claimStale',
  'engine claimTimersToArm',
  'engine casesWithOverdueSteps',
  'metrics backlog',
  'ledger decideDue #1',
  'ledger reportDecisions #1',
  'admin searchCases by status',
];

/** A DataSource that records the statements a repository sends instead of running them. */
function recorder(responses: unknown[][] = []): {
  dataSource: DataSource;
  manager: EntityManager;
  statements: Array<Omit<Statement, 'label' | 'reads'>>;
} {
  const statements: Array<Omit<Statement, 'label' | 'reads'>> = [];
  const answer = (): unknown[] => responses.shift() ?? [];
  const query = (text: string, values: unknown[] = []): Promise<unknown[]> => {
    statements.push({ named: false, text, values });
    return Promise.resolve(answer());
  };
  const manager = { query };
  const dataSource = {
    manager,
    query,
    driver: {
      master: {
        query: (config: { name: string; text: string; values: unknown[] }) => {
          statements.push({ named: true, text: config.text, values: config.values });
          return Promise.resolve({ rows: answer() });
        },
      },
    },
    transaction: (work: (m: typeof manager) => Promise<unknown>) => work(manager),
  };
  return {
    dataSource: dataSource as unknown as DataSource,
    manager: manager as unknown as EntityManager,
    statements,
  };
}

/** What the statements are run with: a completed case of the database, its runs and look-up. */
interface Sample {
  caseId: string;
  subjectId: string;
  stepRunId: string;
  /** The step run's agency, action and step. */
  run: { agency: string; action: string; stepId: string };
  lookupId: string;
  factIds: string[];
  outboxIds: string[];
  digest: string;
  personalNumber: string;
  unit: CaseUnit;
  newCase: CaseUnit;
}

async function sample(real: DataSource, client: pg.Client): Promise<Sample> {
  const picked = await client.query<{ id: string }>(
    `SELECT id FROM cases WHERE id >= gen_random_uuid() AND status = 'completed'
       AND life_event_key = 'start-business' ORDER BY id LIMIT 1`,
  );
  const fallback = await client.query<{ id: string }>(
    `SELECT id FROM cases WHERE status = 'completed' AND life_event_key = 'start-business' LIMIT 1`,
  );
  const caseId = picked.rows[0]?.id ?? fallback.rows[0]?.id;
  if (!caseId) throw new Error('no completed start-business case in the database: load history');
  const loaded = await new EngineRepository(real).loadCase({ caseId });
  if (!loaded) throw new Error(`case ${caseId} vanished`);
  const { caseRecord, runs, lookups, facts } = loaded;
  const run = runs.find((r) => r.state === 'completed') ?? runs[0];
  const lookup = lookups[0];
  if (!run || !lookup) throw new Error(`case ${caseId} has no step run or look-up`);
  const extra = await client.query<{ digest: string; pnr: string; outbox: string[] }>(
    `SELECT s.identity_digest AS digest,
            (SELECT value #>> '{}' FROM fact_records WHERE subject_id = s.id
               AND fact_key = 'person.personalNumber' LIMIT 1) AS pnr,
            ARRAY(SELECT id::text FROM outbox ORDER BY id DESC LIMIT 5) AS outbox
       FROM subjects s WHERE s.id = $1`,
    [caseRecord.subjectId],
  );
  const now = new Date();
  const fact = {
    id: randomUUID(),
    subjectId: caseRecord.subjectId,
    factKey: 'business.name',
    value: 'Planföretag',
    source: 'citizen' as const,
    agency: null,
    caseId,
    stepRunId: null,
    lookupId: null,
    supersedes: facts.get('business.name')?.id ?? null,
    createdAt: now,
  };
  const unit: CaseUnit = {
    caseRecord: { ...caseRecord, revision: caseRecord.revision + 1, updatedAt: now },
    expectedRevision: caseRecord.revision,
    runs: [{ ...run, overdue: false, updatedAt: now }],
    events: [{ seq: caseRecord.revision + 1, type: 'plan-check', data: {} }],
    facts: [fact],
    newLookups: [],
    changedLookups: [lookup],
    disclosures: [
      {
        subjectId: caseRecord.subjectId,
        caseId,
        stepRunId: run.id,
        agency: run.agency,
        factRecordIds: run.disclosedFactIds,
        factKeys: [],
        basis: 'consent',
      },
    ],
    messages: [
      {
        subjectId: caseRecord.subjectId,
        caseId,
        sender: 'leo',
        kind: 'notice',
        template: 'case-completed',
        params: { lifeEvent: caseRecord.lifeEventKey },
      },
    ],
    outbox: [
      {
        queue: `agency.${run.agency}`,
        jobName: 'step.execute',
        jobId: `${run.id}.99`,
        payload: { caseId, stepRunId: run.id },
      },
    ],
  };
  const newCaseId = randomUUID();
  const newLookupId = randomUUID();
  const newCase: CaseUnit = {
    caseRecord: {
      ...caseRecord,
      id: newCaseId,
      status: 'open',
      revision: 2,
      submittedAt: null,
      finishedAt: null,
      consentChecksum: null,
      consentedAt: null,
    },
    expectedRevision: null,
    runs: runs.map((r) => ({
      ...r,
      id: randomUUID(),
      caseId: newCaseId,
      state: 'pending',
      attempt: 0,
      disclosedFactIds: [],
      result: null,
      agencyReference: null,
      deadlineAt: null,
      readyAt: null,
      dispatchedAt: null,
      finishedAt: null,
    })),
    events: [
      { seq: 1, type: 'case-opened', data: {} },
      { seq: 2, type: 'lookup-requested', data: {} },
    ],
    facts: [{ ...fact, id: randomUUID(), caseId: newCaseId, supersedes: fact.supersedes }],
    newLookups: [
      {
        ...lookup,
        id: newLookupId,
        caseId: newCaseId,
        state: 'pending',
        foundKeys: [],
        answeredAt: null,
      },
    ],
    changedLookups: [],
    disclosures: [
      {
        subjectId: caseRecord.subjectId,
        caseId: newCaseId,
        lookupId: newLookupId,
        agency: lookup.agency,
        factRecordIds: lookup.disclosedFactIds,
        factKeys: ['person.personalNumber'],
        basis: 'lookup',
      },
    ],
    messages: [],
    outbox: [
      {
        queue: `agency.${lookup.agency}`,
        jobName: 'fact.lookup',
        jobId: `${newLookupId}.1.lookup`,
        payload: { caseId: newCaseId, lookupId: newLookupId },
      },
    ],
  };
  return {
    caseId,
    subjectId: caseRecord.subjectId,
    stepRunId: run.id,
    run: { agency: run.agency, action: run.action, stepId: run.stepId },
    lookupId: lookup.id,
    factIds: run.disclosedFactIds,
    outboxIds: extra.rows[0]?.outbox ?? [],
    digest: extra.rows[0]?.digest ?? '0'.repeat(64),
    personalNumber: extra.rows[0]?.pnr ?? '199001019802',
    unit,
    newCase,
  };
}

/** Every statement of the repositories' methods that matter at scale, with the sample's ids. */
async function statements(s: Sample): Promise<Statement[]> {
  const out: Statement[] = [];
  const record = async (
    label: string,
    call: (r: ReturnType<typeof recorder>) => Promise<unknown>,
    responses: unknown[][] = [],
  ): Promise<void> => {
    const r = recorder(responses);
    await call(r).catch(() => undefined); // a canned answer may not satisfy it: what it sent counts
    const reads = BACKLOG.some((b) => label.startsWith(b)) ? 'backlog' : 'case';
    r.statements.forEach((st, i) =>
      out.push({ label: r.statements.length > 1 ? `${label} #${i + 1}` : label, reads, ...st }),
    );
  };
  const engine = (r: ReturnType<typeof recorder>): EngineRepository =>
    new EngineRepository(r.dataSource);
  const housekeeping = (r: ReturnType<typeof recorder>): HousekeepingRepository =>
    new HousekeepingRepository(r.dataSource);
  const citizen = (r: ReturnType<typeof recorder>): CitizenRepository =>
    new CitizenRepository(r.dataSource);
  const ledger = (r: ReturnType<typeof recorder>): MockLedgerRepository =>
    new MockLedgerRepository(r.dataSource);
  const past = new Date(Date.now() - 365 * 86_400_000);

  // The engine's hot path: one read and one write per change to a case.
  await record('engine loadCase by case', (r) => engine(r).loadCase({ caseId: s.caseId }));
  await record('engine loadCase by case, as its citizen', (r) =>
    engine(r).loadCase({ caseId: s.caseId }, s.subjectId),
  );
  await record('engine loadCase by step run', (r) =>
    engine(r).loadCase({ stepRunId: s.stepRunId }),
  );
  await record('engine loadCase by look-up', (r) => engine(r).loadCase({ lookupId: s.lookupId }));
  await record('engine commitCase (a change)', (r) => engine(r).commitCase(s.unit), [
    [{ committed: true, outbox: [] }],
  ]);
  await record('engine commitCase (a new case)', (r) => engine(r).commitCase(s.newCase), [
    [{ committed: true, outbox: [] }],
  ]);
  await record('engine markPublished', (r) =>
    housekeeping(r).markPublished(s.outboxIds, [s.stepRunId]),
  );
  await record('engine subjectByDigest', (r) => engine(r).subjectByDigest(s.digest), [
    [{ id: s.subjectId }],
  ]);
  await record('engine hasPendingLookups', (r) => engine(r).hasPendingLookups(s.caseId));
  // The outbox sweeper, the reconciler and the deadline escalation (every few seconds).
  await record('engine claimUnsent', (r) => housekeeping(r).claimUnsent(r.manager, 500));
  await record('engine claimStale', (r) => housekeeping(r).claimStale(r.manager, 300_000, 200));
  await record('engine claimStaleLookups', (r) =>
    housekeeping(r).claimStaleLookups(r.manager, 300_000, 200),
  );
  await record('engine claimTimersToArm', (r) =>
    housekeeping(r).claimTimersToArm(r.manager, 60_000, 500),
  );
  await record('engine markTimersArmed', (r) =>
    housekeeping(r).markTimersArmed(r.manager, [{ id: s.stepRunId, deadlineAt: new Date() }]),
  );
  await record('engine casesWithOverdueSteps', (r) => engine(r).casesWithOverdueSteps(200));
  await record('engine factRecordsByIds', (r) =>
    housekeeping(r).factRecordsByIds(r.manager, s.factIds),
  );
  await record('engine touchStepRun', (r) => housekeeping(r).touchStepRun(r.manager, s.stepRunId));
  await record('engine touchLookup', (r) => housekeeping(r).touchLookup(r.manager, s.lookupId));
  await record('engine markSent', (r) => housekeeping(r).markSent(s.outboxIds, r.manager));
  await record('engine currentFacts', (r) => engine(r).currentFacts(s.subjectId));
  await record('engine events', (r) => engine(r).events(s.caseId));
  await record('metrics backlog (every scrape)', (r) =>
    new MetricsRepository(r.dataSource).backlog(),
  );
  // What the citizen reads.
  await record('citizen cases', (r) => citizen(r).cases(s.subjectId, undefined, 50));
  await record('citizen cases, next page', (r) =>
    citizen(r).cases(s.subjectId, { at: new Date(), id: s.caseId }, 50),
  );
  await record('citizen eventsAfter', (r) => citizen(r).eventsAfter(s.caseId, 0));
  await record('citizen factHistory', (r) => citizen(r).factHistory(s.subjectId));
  await record('citizen disclosures', (r) => citizen(r).disclosures(s.subjectId, { limit: 50 }));
  await record('citizen messages', (r) => citizen(r).messages(s.subjectId, { limit: 50 }));
  await record('citizen messages, unread', (r) =>
    citizen(r).messages(s.subjectId, { unread: true, limit: 50 }),
  );
  await record('citizen markRead', (r) => citizen(r).markRead(s.subjectId, randomUUID()), [
    [[], 0],
  ]);
  // The administrators' case search, newest first.
  await record('admin searchCases', (r) => engine(r).searchCases({ limit: 50 }));
  await record('admin searchCases by status', (r) =>
    engine(r).searchCases({ status: 'running', limit: 50 }),
  );
  await record('admin searchCases by agency and time', (r) =>
    engine(r).searchCases({ agency: 'kommun', createdFrom: past, limit: 50 }),
  );
  // The mock agencies' ledger.
  const job: StepJob = {
    caseId: s.caseId,
    stepRunId: s.stepRunId,
    stepId: s.run.stepId,
    action: s.run.action,
    attempt: 1,
    idempotencyKey: s.stepRunId,
    facts: {},
  };
  await record('ledger recordRequest', (r) => ledger(r).recordRequest(s.run.agency, job));
  await record('ledger recordLookup', (r) =>
    ledger(r).recordLookup('skatteverket', {
      caseId: s.caseId,
      lookupId: s.lookupId,
      attempt: 1,
      idempotencyKey: s.lookupId,
      facts: { 'person.personalNumber': s.personalNumber },
      factKeys: ['person.name'],
    }),
  );
  await record('ledger registeredMove', (r) =>
    ledger(r).registeredMove('skatteverket', s.personalNumber),
  );
  await record('ledger recordEffect', (r) =>
    ledger(r).recordEffect({
      agency: s.run.agency,
      job,
      reference: 'SKV-2025-PLANCHECK0',
      outcome: { outcome: 'completed', produced: {} },
    }),
  );
  await record('ledger advanceAttempt', (r) =>
    ledger(r).advanceAttempt(s.run.agency, s.stepRunId, 2),
  );
  await record('ledger withdraw', (r) => ledger(r).withdraw(s.run.agency, s.stepRunId), [[[], 0]]);
  const effectRow = {
    agency: 'skatteverket',
    idempotency_key: s.stepRunId,
    action: 'register-f-tax',
    step_run_id: s.stepRunId,
    attempt: 1,
    reference: 'SKV-2025-PLANCHECK0',
    outcome: { outcome: 'pending', reference: 'SKV-2025-PLANCHECK0' },
    decision: null,
    decision_due_at: new Date(),
  };
  await record(
    'ledger decideDue',
    (r) =>
      ledger(r).decideDue(100, ['skatteverket'], () =>
        Promise.resolve({ outcome: 'completed', produced: {} }),
      ),
    [[effectRow], [{ facts: {}, received_at: new Date() }]],
  );
  await record(
    'ledger reportDecisions',
    (r) => ledger(r).reportDecisions(100, ['skatteverket'], () => Promise.resolve()),
    [[effectRow]],
  );
  return out;
}

/** A parameter as an SQL literal (EXECUTE takes expressions, not bound parameters). */
function literal(client: pg.Client, value: unknown): string {
  if (value === null || value === undefined) return 'NULL';
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (value instanceof Date) return client.escapeLiteral(value.toISOString());
  if (Array.isArray(value)) {
    const items = value.map((v) =>
      v === null || v === undefined
        ? 'NULL'
        : `"${(typeof v === 'string' ? v : JSON.stringify(v)).replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`,
    );
    return client.escapeLiteral(`{${items.join(',')}}`);
  }
  if (typeof value === 'string') return client.escapeLiteral(value);
  return client.escapeLiteral(JSON.stringify(value));
}

interface PlanNode {
  'Node Type': string;
  'Relation Name'?: string;
  'Index Name'?: string;
  'Actual Rows'?: number;
  'Actual Loops'?: number;
  'Rows Removed by Filter'?: number;
  'Rows Removed by Index Recheck'?: number;
  'Shared Hit Blocks'?: number;
  'Shared Read Blocks'?: number;
  Plans?: PlanNode[];
}

export interface PlanReport {
  label: string;
  reads: Statement['reads'];
  plan: 'generic' | 'custom';
  ms: number;
  /** Shared buffers hit and read by the whole statement (triggers included). */
  buffers: number;
  /** Each scan of a table: how, through which index, how many rows it read. */
  scans: Array<{ node: string; relation: string; index?: string; rows: number }>;
  triggers: Array<{ name: string; calls: number }>;
  flagged: string[];
  text: string;
  raw: unknown;
}

function scansOf(node: PlanNode, out: PlanReport['scans']): void {
  if (node['Relation Name']) {
    const loops = node['Actual Loops'] ?? 1;
    const rows =
      ((node['Actual Rows'] ?? 0) +
        (node['Rows Removed by Filter'] ?? 0) +
        (node['Rows Removed by Index Recheck'] ?? 0)) *
      loops;
    out.push({
      node: node['Node Type'],
      relation: node['Relation Name'],
      ...(node['Index Name'] ? { index: node['Index Name'] } : {}),
      rows: Math.round(rows),
    });
  } else if (node['Index Name']) {
    // A bitmap index scan: the heap scan above it names the relation.
    out.push({
      node: node['Node Type'],
      relation: '',
      index: node['Index Name'],
      rows: Math.round((node['Actual Rows'] ?? 0) * (node['Actual Loops'] ?? 1)),
    });
  }
  for (const child of node.Plans ?? []) scansOf(child, out);
}

interface ExplainResult {
  Plan: PlanNode;
  'Execution Time': number;
  Triggers?: Array<{ 'Trigger Name': string; Calls: number }>;
}

/**
 * Work in flight, as a busy leo has it, put in place inside the check's transaction (and rolled
 * back with it), after the statistics were taken: `n` step runs ready, `n` look-ups
 * pending and `n` outbox rows unsent, of running cases, none of them the sample's. The
 * statistics still say nothing is in flight, as they do after a big finished history was
 * loaded or analysed at a quiet time: a plan that then walks the in-flight set to find one
 * case's rows reads `n` rows and is flagged.
 */
async function putInFlight(client: pg.Client, n: number, sampleCase: string): Promise<void> {
  if (n === 0) return;
  await client.query(
    `WITH picked AS (
       SELECT id FROM cases WHERE status = 'completed' AND id <> $2 LIMIT $1),
     running AS (UPDATE cases c SET status = 'running', finished_at = NULL FROM picked p
                  WHERE c.id = p.id RETURNING c.id),
     steps AS (UPDATE step_runs s SET state = 'ready', updated_at = now() - interval '1 hour'
                FROM running r WHERE s.case_id = r.id AND s.step_id = 'business-notice'),
     looks AS (UPDATE lookups l SET state = 'pending', updated_at = now() - interval '1 hour'
                FROM running r WHERE l.case_id = r.id)
     UPDATE outbox SET sent_at = NULL WHERE id IN (SELECT id FROM outbox ORDER BY id DESC LIMIT $1)`,
    [n, sampleCase],
  );
}

/**
 * EXPLAIN ANALYZE of one statement with the plan kind asked for, inside the check's transaction
 * and rolled back to a savepoint afterwards (writes included).
 */
async function explainOnce(
  client: pg.Client,
  st: Statement,
  mode: 'generic' | 'custom',
): Promise<ExplainResult | undefined> {
  await client.query('SAVEPOINT leo_plan_check');
  try {
    await client.query(`SET LOCAL plan_cache_mode = force_${mode}_plan`);
    await client.query(`PREPARE leo_plan_check AS ${st.text}`);
    const args = st.values.map((v) => literal(client, v)).join(', ');
    const explained = await client.query<{ 'QUERY PLAN': ExplainResult[] }>(
      `EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) EXECUTE leo_plan_check${args ? `(${args})` : ''}`,
    );
    return explained.rows[0]?.['QUERY PLAN'][0];
  } finally {
    await client.query('ROLLBACK TO SAVEPOINT leo_plan_check');
    await client.query('DEALLOCATE ALL');
  }
}

export async function explainAll(
  url: string,
  options: { maxRows?: number; inFlight?: number } = {},
): Promise<PlanReport[]> {
  const maxRows = options.maxRows ?? 1_000;
  const inFlight = options.inFlight ?? 2_000;
  const real = new DataSource({ type: 'postgres', url, synchronize: false, entities: [] });
  await real.initialize();
  const client = new pg.Client({ connectionString: url, application_name: 'leo-bench-plans' });
  await client.connect();
  try {
    const s = await sample(real, client);
    const sizes = new Map(
      (
        await client.query<{ name: string; rows: number }>(
          'SELECT relname AS name, reltuples::float8 AS rows FROM pg_class WHERE relname = ANY($1::text[])',
          [[...GROWING]],
        )
      ).rows.map((r) => [r.name, r.rows]),
    );
    const reports: PlanReport[] = [];
    // One transaction for the whole check, rolled back at the end: the work in flight is put in
    // place once, each statement runs against it and is undone to a savepoint.
    await client.query('BEGIN');
    await putInFlight(client, inFlight, s.caseId);
    for (const st of await statements(s)) {
      const mode = st.named ? 'generic' : 'custom';
      let result: ExplainResult | undefined;
      try {
        // Twice: the second run's figures, with the pages in the cache.
        await explainOnce(client, st, mode);
        result = await explainOnce(client, st, mode);
      } catch (error) {
        reports.push({
          label: st.label,
          reads: st.reads,
          plan: mode,
          ms: NaN,
          buffers: NaN,
          scans: [],
          triggers: [],
          flagged: [`could not explain: ${error instanceof Error ? error.message : String(error)}`],
          text: st.text,
          raw: null,
        });
      }
      if (!result) continue;
      const scans: PlanReport['scans'] = [];
      scansOf(result.Plan, scans);
      const allowed = st.reads === 'backlog' ? inFlight + maxRows : maxRows;
      const triggers = (result.Triggers ?? []).map((t) => ({
        name: t['Trigger Name'],
        calls: t.Calls,
      }));
      const flagged = scans
        .filter(
          (x) =>
            GROWING.has(x.relation) &&
            (x.rows > allowed || (x.node === 'Seq Scan' && (sizes.get(x.relation) ?? 0) > allowed)),
        )
        .map((x) => `${x.node} on ${x.relation}${x.index ? ` (${x.index})` : ''}: ${x.rows} rows`);
      reports.push({
        label: st.label,
        reads: st.reads,
        plan: mode,
        ms: result['Execution Time'],
        buffers: (result.Plan['Shared Hit Blocks'] ?? 0) + (result.Plan['Shared Read Blocks'] ?? 0),
        scans,
        triggers,
        flagged,
        text: st.text,
        raw: result,
      });
    }
    await client.query('ROLLBACK');
    return reports;
  } finally {
    await client.end();
    await real.destroy();
  }
}

/** One line per statement: time, buffers, how each table was reached; flagged ones marked. */
export function formatPlans(reports: PlanReport[]): string {
  const lines = reports.map((r) => {
    const scans = r.scans
      .filter((x) => x.relation || x.index)
      .map((x) =>
        x.relation
          ? `${x.relation}:${x.node === 'Seq Scan' ? 'SEQ' : (x.index ?? x.node)}(${x.rows})`
          : `${x.index ?? ''}(${x.rows})`,
      )
      .join(' ');
    const mark = r.flagged.length > 0 ? '!!' : 'ok';
    return `${mark} ${r.label.padEnd(42)} ${r.plan.padEnd(7)} ${r.ms.toFixed(2).padStart(8)} ms ${String(r.buffers).padStart(6)} buf  ${scans}${r.flagged.length ? `\n     ${r.flagged.join('; ')}` : ''}`;
  });
  return lines.join('\n');
}

async function cli(): Promise<void> {
  const { values } = parseArgs({
    options: {
      'database-url': { type: 'string' },
      'max-rows': { type: 'string' },
      'in-flight': { type: 'string' },
      json: { type: 'string' },
    },
  });
  const url = values['database-url'] ?? process.env.DATABASE_URL;
  if (!url) throw new Error('--database-url (a migrated database with history loaded) is needed');
  const inFlight = Number(values['in-flight'] ?? 2_000);
  const reports = await explainAll(url, {
    maxRows: Number(values['max-rows'] ?? 1_000),
    inFlight,
  });
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  const size = await client.query<{ cases: string }>(
    "SELECT reltuples::bigint AS cases FROM pg_class WHERE relname = 'cases'",
  );
  await client.end();
  process.stdout.write(
    `plans on a database of about ${size.rows[0]?.cases ?? '?'} cases, ${inFlight} steps, look-ups and outbox rows in flight:\n`,
  );
  process.stdout.write(`${formatPlans(reports)}\n`);
  if (values.json) await writeFile(values.json, JSON.stringify(reports, null, 2));
  const flagged = reports.filter((r) => r.flagged.length > 0);
  process.stdout.write(
    flagged.length === 0
      ? 'every statement reads only the rows of its case or citizen, or the backlog in flight\n'
      : `${flagged.length} statement(s) read more than their case, citizen or backlog: ${flagged.map((r) => r.label).join(', ')}\n`,
  );
}

const invokedAs = process.argv[1] ? pathToFileURL(path.resolve(process.argv[1])).href : '';
if (import.meta.url === invokedAs || fileURLToPath(import.meta.url) === process.argv[1]) {
  cli().catch((error: unknown) => {
    process.stderr.write(
      `plan check failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    process.exit(1);
  });
}
