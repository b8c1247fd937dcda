import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import pg from 'pg';

/**
 * Loads N completed "start a business" cases of history into leo's database with SQL alone
 * (INSERT … SELECT over generate_series, in batches, two connections at a time), not through the
 * API: a million cases in minutes rather than hours. Each case is what the engine writes for the
 * standard workload (checked against a live run): the case, its 8 step runs (A, B, C, D, F
 * completed; the limited company, food premises and alcohol licence skipped), 14 fact records
 * (7 answers, the personal number from the token, name and address looked up from the
 * population register, 4 produced by the agencies), 16 case events, 5 disclosures and 5 sent
 * outbox rows. The mock agencies' ledgers are left empty: a real deployment has none.
 *
 * Every id is derived from the case number and a per-load salt (md5 → uuid), so each table is
 * loaded by its own statement that needs nothing from the others: to follow a schema change,
 * edit that table's entry in TABLES (or add one for a new table, e.g. subjects or messages).
 * Foreign keys are consistent by construction; the load runs with session_replication_role =
 * replica so they are not checked row by row (`--verify` checks them afterwards).
 *
 * History persons are born before 2000 (birth numbers 980–999, coordination numbers after the
 * first 730,480), so they never meet the live benchmark's citizens (born 2000 and later).
 */

export interface HistoryReport {
  cases: number;
  rows: number;
  ms: number;
  perTable: Record<string, { rows: number; ms: number }>;
}

// ---- what one case is made of ----------------------------------------------------------------

/** The fact records of a case, numbered 1…14 (their ids: factId(n, f)). */
const FACTS = [
  { f: 1, key: 'business.name', source: 'citizen', value: "to_jsonb('Historikföretag ' || n)" },
  { f: 2, key: 'business.legalForm', source: 'citizen', value: `'"enskild-naringsidkare"'::jsonb` },
  { f: 3, key: 'business.sniCode', source: 'citizen', value: `'"62010"'::jsonb` },
  { f: 4, key: 'business.expectedTurnover', source: 'citizen', value: `'500000'::jsonb` },
  { f: 5, key: 'business.willEmployStaff', source: 'citizen', value: `'true'::jsonb` },
  { f: 6, key: 'business.servesFood', source: 'citizen', value: `'false'::jsonb` },
  { f: 7, key: 'business.servesAlcohol', source: 'citizen', value: `'false'::jsonb` },
  { f: 8, key: 'person.personalNumber', source: 'citizen', value: 'to_jsonb(pnr)' },
  {
    f: 9,
    key: 'person.name',
    source: 'lookup',
    agency: 'skatteverket',
    value: `jsonb_build_object('givenName', (ARRAY['Anna','Erik','Maria','Lars','Karin','Johan','Eva','Anders'])[1 + n % 8],
              'surname', (ARRAY['Lindqvist','Andersson','Johansson','Karlsson','Nilsson','Eriksson','Larsson'])[1 + n % 7])`,
  },
  {
    f: 10,
    key: 'person.address',
    source: 'lookup',
    agency: 'skatteverket',
    value: `jsonb_build_object('street', 'Storgatan ' || (1 + n % 120),
              'postalCode', (ARRAY['352 30','111 22','411 01','211 20','753 20'])[1 + n % 5],
              'town', (ARRAY['Växjö','Stockholm','Göteborg','Malmö','Uppsala'])[1 + n % 5])`,
  },
  {
    f: 11,
    key: 'business.orgNumber',
    source: 'agency',
    agency: 'bolagsverket',
    step: 1,
    value: 'to_jsonb(pnr)',
  },
  {
    f: 12,
    key: 'business.fTaxStatus',
    source: 'agency',
    agency: 'skatteverket',
    step: 3,
    value: `jsonb_build_object('taxForm', 'F', 'validFrom', to_char(${at('300.3')}, 'YYYY-MM-DD'))`,
  },
  {
    f: 13,
    key: 'business.vatNumber',
    source: 'agency',
    agency: 'skatteverket',
    step: 4,
    value: `to_jsonb('SE' || substr(pnr, 3) || '01')`,
  },
  {
    f: 14,
    key: 'business.employerId',
    source: 'agency',
    agency: 'skatteverket',
    step: 5,
    value: 'to_jsonb(pnr)',
  },
] as const;

const factKey = (f: number): string => FACTS.find((x) => x.f === f)?.key ?? '';

interface StepRun {
  k: number;
  stepId: string;
  agency: string;
  action: string;
  kind: string;
  maxAttempts: number;
  /** Completed steps only: */
  run?: {
    /** Seconds after the case was opened. */
    readyAt: string;
    finishedAt: string;
    deadline: string;
    needs: number[];
    produces: number[];
    reference: string;
  };
}

/** The 8 step runs, in the definition's order (config/life-events/start-business.yaml). */
const STEPS: StepRun[] = [
  {
    k: 1,
    stepId: 'register-sole-trader',
    agency: 'bolagsverket',
    action: 'register-sole-trader',
    kind: 'decision',
    maxAttempts: 5,
    run: {
      readyAt: '300',
      finishedAt: '300.15',
      deadline: '21 days',
      needs: [9, 8, 1, 2, 3],
      produces: [11],
      reference: 'BV',
    },
  },
  {
    k: 2,
    stepId: 'register-limited-company',
    agency: 'bolagsverket',
    action: 'register-limited-company',
    kind: 'decision',
    maxAttempts: 5,
  },
  {
    k: 3,
    stepId: 'f-tax',
    agency: 'skatteverket',
    action: 'register-f-tax',
    kind: 'decision',
    maxAttempts: 5,
    run: {
      readyAt: '300.15',
      finishedAt: '300.3',
      deadline: '42 days',
      needs: [11, 4],
      produces: [12],
      reference: 'SKV',
    },
  },
  {
    k: 4,
    stepId: 'vat-registration',
    agency: 'skatteverket',
    action: 'register-vat',
    kind: 'decision',
    maxAttempts: 5,
    run: {
      readyAt: '300.15',
      finishedAt: '300.3',
      deadline: '42 days',
      needs: [11, 4],
      produces: [13],
      reference: 'SKV',
    },
  },
  {
    k: 5,
    stepId: 'employer-registration',
    agency: 'skatteverket',
    action: 'register-employer',
    kind: 'decision',
    maxAttempts: 5,
    run: {
      readyAt: '300.15',
      finishedAt: '300.3',
      deadline: '42 days',
      needs: [11],
      produces: [14],
      reference: 'SKV',
    },
  },
  {
    k: 6,
    stepId: 'food-premises',
    agency: 'kommun',
    action: 'register-food-premises',
    kind: 'decision',
    maxAttempts: 5,
  },
  {
    k: 7,
    stepId: 'alcohol-licence',
    agency: 'kommun',
    action: 'apply-alcohol-licence',
    kind: 'decision',
    maxAttempts: 5,
  },
  {
    k: 8,
    stepId: 'business-notice',
    agency: 'kommun',
    action: 'notify-new-business',
    kind: 'automatic',
    maxAttempts: 8,
    run: {
      readyAt: '300.3',
      finishedAt: '300.35',
      deadline: '4 hours',
      needs: [11, 10],
      produces: [],
      reference: 'KOM-0780',
    },
  },
];

const COMPLETED = STEPS.filter((s): s is StepRun & { run: NonNullable<StepRun['run']> } => !!s.run);
const OPENED = '0';
const SUBMITTED = '300';
const FINISHED = '300.35';

// ---- SQL building blocks: n is the case number, k the load's constants ----------------------

const caseId = 'c.h::uuid';
const stepRunId = (k: number | string): string =>
  typeof k === 'number'
    ? `(left(c.h, 29) || 'a${String(k).padStart(2, '0')}')::uuid`
    : `(left(c.h, 29) || 'a' || lpad(${k}::text, 2, '0'))::uuid`;
const factId = (f: number | string): string =>
  typeof f === 'number'
    ? `(left(c.h, 29) || 'b${String(f).padStart(2, '0')}')::uuid`
    : `(left(c.h, 29) || 'b' || lpad(${f}::text, 2, '0'))::uuid`;
const subject = "'citizen-' || substr(c.h, 7, 20)";
/** The moment `seconds` after case n was opened. */
function at(seconds: string): string {
  return seconds === '0' ? 'c.opened' : `(c.opened + interval '${seconds} seconds')`;
}
const reference = (prefix: string, k: number): string =>
  `'${prefix}-' || c.year || '-' || upper(substr(c.h, ${k + 1}, 10))`;
const sqlText = (s: string): string => `'${s.replace(/'/g, "''")}'`;
const textArray = (items: readonly string[]): string =>
  items.length === 0 ? "'{}'::text[]" : `ARRAY[${items.map(sqlText).join(', ')}]::text[]`;
const jsonTextArray = (items: readonly string[]): string =>
  `'${JSON.stringify(items).replace(/'/g, "''")}'::jsonb`;
const uuidArray = (facts: readonly number[]): string =>
  facts.length === 0 ? "'{}'::uuid[]" : `ARRAY[${facts.map((f) => factId(f)).join(', ')}]`;
/**
 * Every statement's FROM: the load's constants as k (so each statement takes the same seven
 * parameters, used or not), the batch's case numbers as n, and per case (computed once) c.h, an
 * md5 of salt and n that every id of the case derives from, c.opened and c.year.
 */
const series = `FROM (SELECT $3::uuid AS def, $4::int AS ver, $5::text AS salt, $6::timestamptz AS t0,
                      $7::double precision AS gap) k
           CROSS JOIN generate_series($1::bigint, $2::bigint) AS n
           CROSS JOIN LATERAL (SELECT md5(k.salt || n) AS h, k.t0 + n * k.gap * interval '1 second' AS opened
                               OFFSET 0) c0
           CROSS JOIN LATERAL (SELECT c0.h, c0.opened, to_char(c0.opened, 'YYYY') AS year OFFSET 0) c`;
/** The case's personal number: pg_temp.bench_pnr(n), defined per connection (see FUNCTIONS). */
// OFFSET 0 keeps the subquery from being pulled up: the function runs once per case, not once
// per use.
const withPnr = `${series} CROSS JOIN LATERAL (SELECT pg_temp.bench_pnr(n) AS pnr OFFSET 0) p`;

/** One row per case per entry of `rows`, each a parenthesised list of SQL expressions. */
const lateralValues = (alias: string, columns: string, rows: string[]): string =>
  `CROSS JOIN LATERAL (VALUES ${rows.join(',\n  ')}) AS ${alias}(${columns})`;

// ---- the tables ------------------------------------------------------------------------------

export interface HistoryTable {
  table: string;
  rowsPerCase: number;
  sql: string;
}

export const TABLES: HistoryTable[] = [
  {
    table: 'cases',
    rowsPerCase: 1,
    sql: `INSERT INTO cases (id, subject_id, life_event_key, definition_id, definition_version, status,
                             revision, created_at, updated_at, submitted_at, finished_at)
          SELECT ${caseId}, ${subject}, 'start-business', k.def, k.ver, 'completed', 16,
                 ${at(OPENED)}, ${at(FINISHED)}, ${at(SUBMITTED)}, ${at(FINISHED)}
          ${series}`,
  },
  {
    table: 'step_runs',
    rowsPerCase: STEPS.length,
    sql: `INSERT INTO step_runs (id, case_id, step_id, agency, action, kind, state, attempt, max_attempts,
                                 disclosed_fact_ids, result, agency_reference, deadline_at, ready_at,
                                 dispatched_at, finished_at, updated_at)
          SELECT ${stepRunId('s.k')}, ${caseId}, s.step_id, s.agency, s.action, s.kind, s.state, s.attempt,
                 s.max_attempts, s.disclosed, s.result, s.reference, s.deadline_at, s.ready_at,
                 s.dispatched_at, s.finished_at, s.finished_at
          ${series}
          ${lateralValues(
            's',
            'k, step_id, agency, action, kind, state, attempt, max_attempts, disclosed, result, reference, deadline_at, ready_at, dispatched_at, finished_at',
            STEPS.map((s) => {
              const head = `${s.k}, ${sqlText(s.stepId)}, ${sqlText(s.agency)}, ${sqlText(s.action)}, ${sqlText(s.kind)}`;
              if (!s.run) {
                return `(${head}, 'skipped', 0, ${s.maxAttempts}, '{}'::uuid[], NULL::jsonb, NULL::text,
                         NULL::timestamptz, NULL::timestamptz, NULL::timestamptz, ${at(SUBMITTED)})`;
              }
              const ref = reference(s.run.reference, s.k);
              return `(${head}, 'completed', 1, ${s.maxAttempts}, ${uuidArray(s.run.needs)},
                       jsonb_build_object('outcome', 'completed', 'reference', ${ref},
                         'producedKeys', ${jsonTextArray(s.run.produces.map(factKey))}),
                       ${ref}, ${at(s.run.readyAt)} + interval '${s.run.deadline}', ${at(s.run.readyAt)},
                       ${at(String(Number(s.run.readyAt) + 0.05))}, ${at(s.run.finishedAt)})`;
            }),
          )}`,
  },
  {
    table: 'fact_records',
    rowsPerCase: FACTS.length,
    sql: `INSERT INTO fact_records (id, subject_id, fact_key, value, source, agency, case_id, step_run_id, created_at)
          SELECT ${factId('f.f')}, ${subject}, f.fact_key, f.value, f.source, f.agency, ${caseId},
                 f.step_run_id, f.created_at
          ${withPnr}
          ${lateralValues(
            'f',
            'f, fact_key, value, source, agency, step_run_id, created_at',
            FACTS.map((f) => {
              const step = 'step' in f ? STEPS.find((s) => s.k === f.step) : undefined;
              return `(${f.f}, ${sqlText(f.key)}, ${f.value}, ${sqlText(f.source)},
                       ${'agency' in f ? sqlText(f.agency) : 'NULL::text'},
                       ${step ? stepRunId(step.k) : 'NULL::uuid'},
                       ${step?.run ? at(step.run.finishedAt) : at(OPENED)})`;
            }),
          )}`,
  },
  {
    table: 'case_events',
    rowsPerCase: 16,
    sql: `INSERT INTO case_events (case_id, seq, type, step_id, data, created_at)
          SELECT ${caseId}, e.seq, e.type, e.step_id, e.data, e.created_at
          ${series}
          ${lateralValues('e', 'seq, type, step_id, data, created_at', caseEvents())}`,
  },
  {
    table: 'disclosures',
    rowsPerCase: COMPLETED.length,
    sql: `INSERT INTO disclosures (subject_id, case_id, step_run_id, agency, fact_record_ids, fact_keys, basis, created_at)
          SELECT ${subject}, ${caseId}, d.step_run_id, d.agency, d.fact_record_ids, d.fact_keys,
                 'case-submission:' || ${caseId}, d.created_at
          ${series}
          ${lateralValues(
            'd',
            'step_run_id, agency, fact_record_ids, fact_keys, created_at',
            COMPLETED.map(
              (s) =>
                `(${stepRunId(s.k)}, ${sqlText(s.agency)}, ${uuidArray(s.run.needs)},
                  ${textArray(s.run.needs.map(factKey))}, ${at(s.run.readyAt)})`,
            ),
          )}`,
  },
  {
    table: 'outbox',
    rowsPerCase: COMPLETED.length,
    sql: `INSERT INTO outbox (queue, job_name, job_id, payload, available_at, created_at, sent_at)
          SELECT o.queue, 'step.execute', ${stepRunId('o.k')}::text || '.1',
                 jsonb_build_object('caseId', ${caseId}, 'stepRunId', ${stepRunId('o.k')},
                   'idempotencyKey', ${stepRunId('o.k')}, 'stepId', o.step_id, 'action', o.action,
                   'attempt', 1, 'deadline', o.deadline, 'facts', o.facts),
                 o.created_at, o.created_at, o.created_at + interval '20 milliseconds'
          ${withPnr}
          ${lateralValues(
            'o',
            'k, queue, step_id, action, deadline, facts, created_at',
            COMPLETED.map(
              (s) =>
                `(${s.k}, ${sqlText(`agency.${s.agency}`)}, ${sqlText(s.stepId)}, ${sqlText(s.action)},
                  to_char((${at(s.run.readyAt)} + interval '${s.run.deadline}') AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
                  jsonb_build_object(${s.run.needs
                    .map(
                      (f) =>
                        `${sqlText(factKey(f))}, ${FACTS.find((x) => x.f === f)?.value ?? 'NULL'}`,
                    )
                    .join(', ')}),
                  ${at(s.run.readyAt)})`,
            ),
          )}`,
  },
];

/** The 16 events the engine appends for a completed standard case, in its order. */
function caseEvents(): string[] {
  const rows: string[] = [];
  const event = (type: string, stepId: string | null, data: string, seconds: string): void => {
    rows.push(
      `(${rows.length + 1}, ${sqlText(type)}, ${stepId ? sqlText(stepId) : 'NULL::text'}, ${data}, ${at(seconds)})`,
    );
  };
  const step = (id: string): (typeof COMPLETED)[number] =>
    COMPLETED.find((s) => s.stepId === id) as (typeof COMPLETED)[number];
  const dispatched = (id: string): void => {
    const s = step(id);
    event(
      'step-dispatched',
      id,
      `jsonb_build_object('agency', ${sqlText(s.agency)}, 'attempt', 1, 'delayMs', 0,
         'factKeys', ${jsonTextArray(s.run.needs.map(factKey))})`,
      s.run.readyAt,
    );
  };
  const completed = (id: string): void => {
    const s = step(id);
    event(
      'step-completed',
      id,
      `jsonb_build_object('attempt', 1, 'reference', ${reference(s.run.reference, s.k)},
         'producedKeys', ${jsonTextArray(s.run.produces.map(factKey))})`,
      s.run.finishedAt,
    );
  };
  const answered = FACTS.filter((f) => f.source !== 'agency').map((f) => f.key);
  event(
    'case-opened',
    null,
    `jsonb_build_object('lifeEvent', 'start-business', 'version', k.ver, 'factKeys', ${jsonTextArray(answered)})`,
    OPENED,
  );
  event('case-submitted', null, "'{}'::jsonb", SUBMITTED);
  dispatched('register-sole-trader');
  for (const id of ['register-limited-company', 'food-premises', 'alcohol-licence']) {
    event('step-skipped', id, "'{}'::jsonb", SUBMITTED);
  }
  completed('register-sole-trader');
  for (const id of ['f-tax', 'vat-registration', 'employer-registration']) dispatched(id);
  for (const id of ['f-tax', 'vat-registration', 'employer-registration']) completed(id);
  dispatched('business-notice');
  completed('business-notice');
  event('case-completed', null, "'{}'::jsonb", FINISHED);
  return rows;
}

/**
 * Per-connection helpers: the history person's personal identity number for case n, born
 * 1900-01-01 onwards, twenty a day (birth numbers 980–999); after 1999-12-31 the same dates as
 * coordination numbers (day + 60); after that the numbers repeat (a person's second business).
 */
export const FUNCTIONS = [
  `CREATE OR REPLACE FUNCTION pg_temp.bench_luhn(digits text) RETURNS int
     LANGUAGE plpgsql IMMUTABLE STRICT AS $$
   DECLARE total int := 0; d int;
   BEGIN
     FOR i IN 1..length(digits) LOOP
       d := substr(digits, i, 1)::int;
       IF i % 2 = 1 THEN d := d * 2; IF d > 9 THEN d := d - 9; END IF; END IF;
       total := total + d;
     END LOOP;
     RETURN (10 - total % 10) % 10;
   END $$`,
  `CREATE OR REPLACE FUNCTION pg_temp.bench_pnr(n bigint) RETURNS text
     LANGUAGE plpgsql IMMUTABLE STRICT AS $$
   DECLARE
     days constant int := date '2000-01-01' - date '1900-01-01';
     birth date := date '1900-01-01' + ((n / 20) % days)::int;
     coordination boolean := ((n / 20 / days) % 2) = 1;
     body text := to_char(birth, 'YYMM')
       || lpad((extract(day FROM birth)::int + CASE WHEN coordination THEN 60 ELSE 0 END)::text, 2, '0')
       || (980 + n % 20)::text;
   BEGIN
     RETURN to_char(birth, 'YYYY') || substr(body, 3) || pg_temp.bench_luhn(body)::text;
   END $$`,
];

// ---- loading ---------------------------------------------------------------------------------

export interface LoadOptions {
  log: (message: string) => void;
  /** Cases per statement. */
  batch?: number;
  /** Statements in flight (one connection each): the machine's cores. */
  parallel?: number;
  /**
   * The cluster is the bench's own: raise max_wal_size and checkpoint_timeout for the load (set
   * back afterwards), so that checkpoints, and the full-page images after each, do not dominate.
   */
  ownCluster?: boolean;
}

const LOAD_SETTINGS = { max_wal_size: '16GB', checkpoint_timeout: '30min' };

async function tune(url: string, on: boolean): Promise<void> {
  await withClient(url, async (client) => {
    for (const [name, value] of Object.entries(LOAD_SETTINGS)) {
      await client.query(
        on ? `ALTER SYSTEM SET ${name} = '${value}'` : `ALTER SYSTEM RESET ${name}`,
      );
    }
    await client.query('SELECT pg_reload_conf()');
    if (!on) await client.query('CHECKPOINT');
  });
}

async function connect(url: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url, application_name: 'leo-bench-history' });
  await client.connect();
  // Foreign keys hold by construction: skip the per-row checks (needs a superuser, which the
  // bench's own cluster gives). Durability of each batch's commit is not needed either.
  await client.query('SET session_replication_role = replica');
  await client.query('SET synchronous_commit = off');
  for (const sql of FUNCTIONS) await client.query(sql);
  return client;
}

async function withClient<T>(url: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url, application_name: 'leo-bench-history' });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

export async function loadHistory(
  url: string,
  cases: number,
  options: LoadOptions,
): Promise<HistoryReport> {
  const batch = options.batch ?? 50_000;
  const parallel = options.parallel ?? 2;
  const started = performance.now();
  const setup = new pg.Client({ connectionString: url });
  await setup.connect();
  let constants: unknown[];
  try {
    const definition = await setup.query<{ id: string; version: number }>(
      `SELECT id, version FROM life_event_definitions
        WHERE key = 'start-business' AND status = 'published' ORDER BY version DESC LIMIT 1`,
    );
    const row = definition.rows[0];
    if (!row)
      throw new Error('start-business is not published: start leo once on the database first');
    const spanSeconds = 730 * 86_400; // two years of history, ending a day ago
    const first = new Date(Date.now() - 86_400_000 - spanSeconds * 1000);
    const salt = Math.random().toString(36).slice(2, 10);
    constants = [row.id, row.version, salt, first.toISOString(), spanSeconds / cases];
  } finally {
    await setup.end();
  }

  // Secondary indexes (those backing no constraint) are dropped for the load and built again
  // afterwards from their own definitions: one sorted build is far cheaper than millions of
  // random insertions. Primary keys and unique constraints stay (foreign keys need them).
  const indexes = await withClient(url, async (client) => {
    const found = await client.query<{ name: string; def: string }>(
      `SELECT i.indexrelid::regclass::text AS name, pg_get_indexdef(i.indexrelid) AS def
         FROM pg_index i
        WHERE i.indrelid = ANY($1::regclass[])
          AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)`,
      [TABLES.map((t) => t.table)],
    );
    for (const index of found.rows) await client.query(`DROP INDEX ${index.name}`);
    return found.rows;
  });

  if (options.ownCluster) await tune(url, true);
  const tasks: Array<{ table: HistoryTable; from: number; to: number }> = [];
  for (const table of TABLES) {
    for (let from = 0; from < cases; from += batch) {
      tasks.push({ table, from, to: Math.min(cases, from + batch) - 1 });
    }
  }
  const perTable: HistoryReport['perTable'] = {};
  let next = 0;
  let done = 0;
  const worker = async (): Promise<void> => {
    const client = await connect(url);
    try {
      while (next < tasks.length) {
        const task = tasks[next] as (typeof tasks)[number];
        next += 1;
        const t = performance.now();
        // Sorted by the first column (the uuid key, where there is one): each batch then walks
        // the primary key and (case_id, …) indexes once, in order, instead of at random.
        const result = await client.query(`${task.table.sql}\nORDER BY 1`, [
          task.from,
          task.to,
          ...constants,
        ]);
        const entry = (perTable[task.table.table] ??= { rows: 0, ms: 0 });
        entry.rows += result.rowCount ?? 0;
        entry.ms += performance.now() - t;
        done += 1;
        if (done % Math.max(1, Math.round(tasks.length / 10)) === 0) {
          options.log(
            `history: ${done}/${tasks.length} batches, ${Math.round((performance.now() - started) / 1000)} s`,
          );
        }
      }
    } finally {
      await client.end();
    }
  };
  try {
    await Promise.all(Array.from({ length: parallel }, worker));
  } finally {
    const t = performance.now();
    let i = 0;
    const build = (): Promise<void> =>
      withClient(url, async (client) => {
        await client.query("SET maintenance_work_mem = '512MB'");
        while (i < indexes.length) {
          const index = indexes[i] as (typeof indexes)[number];
          i += 1;
          await client.query(index.def);
        }
      });
    await Promise.all(Array.from({ length: parallel }, build));
    perTable['(indexes rebuilt)'] = { rows: 0, ms: performance.now() - t };
    if (options.ownCluster) await tune(url, false);
  }
  await withClient(url, (client) =>
    client.query(`ANALYZE ${TABLES.map((t) => t.table).join(', ')}`),
  );
  const rows = Object.values(perTable).reduce((sum, t) => sum + t.rows, 0);
  return { cases, rows, ms: performance.now() - started, perTable };
}

/** Every reference of the loaded rows resolves (the checks the load skipped), and counts add up. */
export async function verifyHistory(url: string): Promise<string[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const checks: Array<[string, string]> = [
      [
        'step runs without their case',
        'SELECT count(*) FROM step_runs s LEFT JOIN cases c ON c.id = s.case_id WHERE c.id IS NULL',
      ],
      [
        'fact records without their case',
        'SELECT count(*) FROM fact_records f LEFT JOIN cases c ON c.id = f.case_id WHERE f.case_id IS NOT NULL AND c.id IS NULL',
      ],
      [
        'fact records without their step run',
        'SELECT count(*) FROM fact_records f LEFT JOIN step_runs s ON s.id = f.step_run_id WHERE f.step_run_id IS NOT NULL AND s.id IS NULL',
      ],
      [
        'events without their case',
        'SELECT count(*) FROM case_events e LEFT JOIN cases c ON c.id = e.case_id WHERE c.id IS NULL',
      ],
      [
        'disclosures without their step run',
        'SELECT count(*) FROM disclosures d LEFT JOIN step_runs s ON s.id = d.step_run_id WHERE s.id IS NULL',
      ],
      [
        'disclosed fact ids that are no fact record',
        'SELECT count(*) FROM (SELECT unnest(disclosed_fact_ids) AS id FROM step_runs) x LEFT JOIN fact_records f ON f.id = x.id WHERE f.id IS NULL',
      ],
      [
        'cases whose revision is not their event count',
        'SELECT count(*) FROM cases c JOIN (SELECT case_id, max(seq) AS m FROM case_events GROUP BY case_id) e ON e.case_id = c.id WHERE e.m <> c.revision',
      ],
    ];
    const problems: string[] = [];
    for (const [what, sql] of checks) {
      const n = Number((await client.query<{ count: string }>(sql)).rows[0]?.count ?? 0);
      if (n > 0) problems.push(`${n} ${what}`);
    }
    return problems;
  } finally {
    await client.end();
  }
}

// ---- `npm run bench:history` -----------------------------------------------------------------

async function cli(): Promise<void> {
  const { values } = parseArgs({
    options: {
      cases: { type: 'string' },
      verify: { type: 'boolean' },
      'database-url': { type: 'string' },
    },
  });
  const cases = Number(values.cases ?? 1_000_000);
  if (!Number.isInteger(cases) || cases < 1) throw new Error('--cases must be a positive integer');
  const log = (m: string): void => {
    process.stderr.write(`[history] ${m}\n`);
  };
  const given = values['database-url'] ?? process.env.DATABASE_URL;
  let url: string;
  let stop = (): Promise<void> => Promise.resolve();
  if (given) {
    url = given;
  } else {
    // A throwaway cluster: migrated and seeded by starting leo on it once, dropped afterwards.
    const { startBenchInfra } = await import('./infra.js');
    const { startLeo } = await import('./leo.js');
    const infra = await startBenchInfra(log);
    stop = () => infra.stop();
    const onSignal = (): void => {
      void stop().finally(() => process.exit(130));
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    try {
      url = await infra.createDatabase('leo_history');
      const leo = await startLeo({
        topology: 'all',
        databaseUrl: url,
        redisUrl: infra.redisUrl,
        logDir: infra.dir,
        onSpawn: (pid) => infra.registerPid(pid),
        log,
      });
      await leo.stop();
    } catch (error) {
      await stop();
      throw error;
    }
  }
  try {
    log(`loading ${cases} completed start-business cases`);
    const report = await loadHistory(url, cases, { log, ownCluster: !given });
    for (const [table, t] of Object.entries(report.perTable)) {
      process.stdout.write(
        `  ${table.padEnd(14)} ${String(t.rows).padStart(10)} rows  ${(t.ms / 1000).toFixed(1)} s (statement time)\n`,
      );
    }
    process.stdout.write(
      `history: ${report.cases} cases, ${report.rows} rows in ${(report.ms / 1000).toFixed(1)} s\n`,
    );
    if (values.verify) {
      const t = performance.now();
      const problems = await verifyHistory(url);
      process.stdout.write(
        `verify: ${problems.length === 0 ? 'every reference resolves' : problems.join('; ')} (${((performance.now() - t) / 1000).toFixed(1)} s)\n`,
      );
      if (problems.length > 0) process.exitCode = 1;
    }
  } finally {
    await stop();
  }
}

const invokedAs = process.argv[1] ? pathToFileURL(path.resolve(process.argv[1])).href : '';
if (import.meta.url === invokedAs || fileURLToPath(import.meta.url) === process.argv[1]) {
  cli().catch((error: unknown) => {
    process.stderr.write(
      `history load failed: ${error instanceof Error ? error.message : String(error)}\n`,
    );
    process.exit(1);
  });
}
