import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import pg from 'pg';

/**
 * Loads N completed "start a business" cases of history into leo's database with SQL alone
 * (INSERT … SELECT over generate_series, in batches, two connections at a time), not through the
 * API: a million cases in minutes rather than hours. Each case is what the engine writes for the
 * standard workload (copied from live cases, and compared with one by `--compare`): per case
 *
 * - its subject (the person, found by the SHA-256 digest of their personal identity number, as
 *   src/citizen/citizen.service.ts computes it);
 * - the case (submitted with consent to a preview checksum, completed);
 * - one look-up at Skatteverket for person.name and person.address, answered;
 * - 8 step runs (A, B, C, D, F completed; the limited company, food premises and alcohol
 *   licence skipped);
 * - 14 fact records: 7 answers, the personal number from the e-identification, name and address
 *   looked up (source `lookup`, with the look-up's id), 4 produced by the agencies;
 * - 18 case events, from case-opened through the look-up, the submission, each step's dispatch
 *   (or skip) and completion, to case-completed;
 * - 6 disclosures: the personal number to Skatteverket for the look-up (basis `lookup`), and
 *   each step's facts to its agency (basis `consent`);
 * - 7 messages: the receipt, four decisions (step-granted), case-completed and fewer-answers;
 * - 11 sent outbox rows: the look-up's job, each step's job and its deadline timer.
 *
 * The mock agencies' ledgers are left empty: a real deployment has none.
 *
 * Every id is derived from the case number (md5 → uuid): the case's own rows from a per-load
 * salt, the subject's from the case number alone (a second load into the same database gives the
 * same persons a second case). So each table is loaded by its own statement that needs nothing
 * from the others: to follow a schema change, edit that table's entry in TABLES (or add one).
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

/** Distinct personal numbers withPnr makes (1900–1999, twice): one person per case up to this. */
export const HISTORY_CAPACITY = 2 * 36_524 * 20;
/** The days from 1900-01-01 to 1999-12-31. */
const CENTURY_DAYS = 36_524;

// ---- when: each moment is the now() of one engine transaction, in seconds after opening ----

const T = {
  /** The citizen's first request creates their subject. */
  signIn: '-0.2',
  /** POST /v1/cases: the case, the answers, the e-identification, the look-up dispatched. */
  opened: '0',
  lookupSent: '0.025',
  /** Skatteverket's answer applied: name and address recorded. */
  lookupAnswered: '0.05',
  /** POST /v1/cases/{id}/submit: consent, A dispatched, three steps skipped. */
  submitted: '300',
  /** A's result: the organisation number; B, C and D dispatched. */
  aCompleted: '300.035',
  bCompleted: '300.07',
  cCompleted: '300.085',
  /** D's result completes B, C, D: F dispatched. */
  dCompleted: '300.1',
  /** F's result: the case completed. */
  fCompleted: '300.14',
} as const;

/** How long after its transaction a row of the outbox was published (the relay's delay). */
const PUBLISH_DELAY = 0.015;

const plus = (seconds: string, delta: number): string => String(Number(seconds) + delta);

// ---- what one case is made of ----------------------------------------------------------------

/** The history person's town: postal code, town and its municipality code (kommunkod). */
const TOWNS = [
  { postalCode: '352 30', town: 'Växjö', municipality: '0780' },
  { postalCode: '111 22', town: 'Stockholm', municipality: '0180' },
  { postalCode: '411 01', town: 'Göteborg', municipality: '1480' },
  { postalCode: '211 20', town: 'Malmö', municipality: '1280' },
  { postalCode: '753 20', town: 'Uppsala', municipality: '0380' },
];
const townOf = (field: 'postalCode' | 'town' | 'municipality'): string =>
  `(ARRAY[${TOWNS.map((t) => sqlText(t[field])).join(', ')}])[1 + n % ${TOWNS.length}]`;

interface Fact {
  f: number;
  key: string;
  source: 'citizen' | 'e-identification' | 'lookup' | 'agency';
  value: string;
  agency?: string;
  /** The step run that produced it (source agency). */
  step?: number;
  at: string;
}

/** The fact records of a case, numbered 1…14 (their ids: factId(n, f)). */
const FACTS: Fact[] = [
  {
    f: 1,
    key: 'business.name',
    source: 'citizen',
    value: "to_jsonb('Historikföretag ' || n)",
    at: T.opened,
  },
  {
    f: 2,
    key: 'business.legalForm',
    source: 'citizen',
    value: `'"enskild-naringsidkare"'::jsonb`,
    at: T.opened,
  },
  { f: 3, key: 'business.sniCode', source: 'citizen', value: `'"62010"'::jsonb`, at: T.opened },
  {
    f: 4,
    key: 'business.expectedTurnover',
    source: 'citizen',
    value: `'500000'::jsonb`,
    at: T.opened,
  },
  {
    f: 5,
    key: 'business.willEmployStaff',
    source: 'citizen',
    value: `'true'::jsonb`,
    at: T.opened,
  },
  { f: 6, key: 'business.servesFood', source: 'citizen', value: `'false'::jsonb`, at: T.opened },
  {
    f: 7,
    key: 'business.servesAlcohol',
    source: 'citizen',
    value: `'false'::jsonb`,
    at: T.opened,
  },
  {
    f: 8,
    key: 'person.personalNumber',
    source: 'e-identification',
    value: 'to_jsonb(pnr)',
    at: T.opened,
  },
  {
    f: 9,
    key: 'person.name',
    source: 'lookup',
    agency: 'skatteverket',
    value: `jsonb_build_object('givenName', (ARRAY['Anna','Erik','Maria','Lars','Karin','Johan','Eva','Anders'])[1 + n % 8],
              'surname', (ARRAY['Lindqvist','Andersson','Johansson','Karlsson','Nilsson','Eriksson','Larsson'])[1 + n % 7])`,
    at: T.lookupAnswered,
  },
  {
    f: 10,
    key: 'person.address',
    source: 'lookup',
    agency: 'skatteverket',
    value: `jsonb_build_object('street', 'Storgatan ' || (1 + n % 60),
              'postalCode', ${townOf('postalCode')}, 'town', ${townOf('town')})`,
    at: T.lookupAnswered,
  },
  // A sole trader's organisation number is their personal identity number.
  {
    f: 11,
    key: 'business.orgNumber',
    source: 'agency',
    agency: 'bolagsverket',
    step: 1,
    value: 'to_jsonb(pnr)',
    at: T.aCompleted,
  },
  {
    f: 12,
    key: 'business.fTaxStatus',
    source: 'agency',
    agency: 'skatteverket',
    step: 3,
    value: `jsonb_build_object('taxForm', 'F', 'validFrom', to_char(${at(T.bCompleted)}, 'YYYY-MM-DD'))`,
    at: T.bCompleted,
  },
  {
    f: 13,
    key: 'business.vatNumber',
    source: 'agency',
    agency: 'skatteverket',
    step: 4,
    value: `to_jsonb('SE' || substr(pnr, 3) || '01')`,
    at: T.cCompleted,
  },
  {
    f: 14,
    key: 'business.employerId',
    source: 'agency',
    agency: 'skatteverket',
    step: 5,
    value: 'to_jsonb(pnr)',
    at: T.dCompleted,
  },
];

const fact = (f: number): Fact => FACTS.find((x) => x.f === f) as Fact;
const factKey = (f: number): string => fact(f).key;
const IDENTITY = 8;

/** The look-up made when the case was opened: what the population register is asked for. */
const LOOKUP = {
  agency: 'skatteverket',
  /** As the resolution lists them (sorted). */
  factKeys: ['person.address', 'person.name'],
  maxAttempts: 5,
};

interface StepRun {
  k: number;
  stepId: string;
  agency: string;
  action: string;
  kind: 'decision' | 'automatic';
  maxAttempts: number;
  /** Steps that ran (the others are skipped when the case is submitted): */
  run?: {
    /** The transaction that dispatched it (ready_at) and the one that applied its result. */
    dispatched: string;
    finished: string;
    deadline: string;
    needs: number[];
    produces: number[];
    reference: 'BV' | 'SKV' | 'KOM';
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
      dispatched: T.submitted,
      finished: T.aCompleted,
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
      dispatched: T.aCompleted,
      finished: T.bCompleted,
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
      dispatched: T.aCompleted,
      finished: T.cCompleted,
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
      dispatched: T.aCompleted,
      finished: T.dCompleted,
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
      dispatched: T.dCompleted,
      finished: T.fCompleted,
      deadline: '4 hours',
      needs: [11, 10],
      produces: [],
      reference: 'KOM',
    },
  },
];

type Ran = StepRun & { run: NonNullable<StepRun['run']> };
const COMPLETED = STEPS.filter((s): s is Ran => !!s.run);
const SKIPPED = STEPS.filter((s) => !s.run);
const ran = (stepId: string): Ran => COMPLETED.find((s) => s.stepId === stepId) as Ran;

/**
 * What the engine tells a citizen, after their first case, of the other life events it made
 * shorter (proactive reuse): the counts for the shipped catalogue and definitions.
 */
const FEWER_ANSWERS = [
  { lifeEvent: 'become-parent', before: 5, now: 4 },
  { lifeEvent: 'death-of-relative', before: 4, now: 3 },
  { lifeEvent: 'move-house', before: 4, now: 3 },
];

// ---- SQL building blocks: n is the case number, k the load's constants ----------------------

const caseId = 'c.h::uuid';
const uuidOf = (tag: string, k: number | string): string =>
  typeof k === 'number'
    ? `(left(c.h, 29) || '${tag}${String(k).padStart(2, '0')}')::uuid`
    : `(left(c.h, 29) || '${tag}' || lpad(${k}::text, 2, '0'))::uuid`;
const stepRunId = (k: number | string): string => uuidOf('a', k);
const factId = (f: number | string): string => uuidOf('b', f);
const lookupId = uuidOf('c', 1);
const messageId = (m: number | string): string => uuidOf('d', m);
/** The subject: from the person (their number's place in withPnr's sequence), not the salt. */
const subject = `md5('leo-history-subject:' || (n % ${HISTORY_CAPACITY}))::uuid::text`;
/** The moment `seconds` after case n was opened. */
function at(seconds: string): string {
  return seconds === '0' ? 'c.opened' : `(c.opened + interval '${seconds} seconds')`;
}
const isoText = (timestamp: string): string =>
  `to_char((${timestamp}) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;
const deadlineOf = (s: Ran): string => `(${at(s.run.dispatched)} + interval '${s.run.deadline}')`;
/** An agency's case number, as the mock agencies make them: `SKV-2025-…`, `KOM-0180-2025-…`. */
const reference = (s: Ran): string =>
  `'${s.run.reference}-' || ${s.run.reference === 'KOM' ? `${townOf('municipality')} || '-' || ` : ''}c.year || '-' || upper(substr(c.h, ${s.k + 1}, 10))`;
function sqlText(s: string): string {
  return `'${s.replace(/'/g, "''")}'`;
}
const textArray = (items: readonly string[]): string =>
  items.length === 0 ? "'{}'::text[]" : `ARRAY[${items.map(sqlText).join(', ')}]::text[]`;
const jsonOf = (value: unknown): string => `'${JSON.stringify(value).replace(/'/g, "''")}'::jsonb`;
const uuidArray = (facts: readonly number[]): string =>
  facts.length === 0 ? "'{}'::uuid[]" : `ARRAY[${facts.map((f) => factId(f)).join(', ')}]`;
/** The facts a job carries: exactly the step's needs, by key. */
const jobFacts = (facts: readonly number[]): string =>
  `jsonb_build_object(${facts.map((f) => `${sqlText(factKey(f))}, ${fact(f).value}`).join(', ')})`;
/** The preview checksum the citizen consented to (base64url of a SHA-256, as leo makes it). */
const consentChecksum = `translate(rtrim(encode(sha256(convert_to(c.h || ':consent', 'UTF8')), 'base64'), '='), '+/', '-_')`;
/**
 * Every statement's FROM: the load's constants as k (so each statement takes the same seven
 * parameters, used or not), the batch's case numbers as n, and per case (computed once) c.h, an
 * md5 of salt and n that every id of the case derives from, c.opened (to the millisecond, as
 * the engine's own clock gives it) and c.year.
 */
const series = `FROM (SELECT $3::uuid AS def, $4::int AS ver, $5::text AS salt, $6::timestamptz AS t0,
                      $7::double precision AS gap) k
           CROSS JOIN generate_series($1::bigint, $2::bigint) AS n
           CROSS JOIN LATERAL (SELECT md5(k.salt || n) AS h,
                                      date_trunc('milliseconds', k.t0 + n * k.gap * interval '1 second') AS opened
                               OFFSET 0) c0
           CROSS JOIN LATERAL (SELECT c0.h, c0.opened, to_char(c0.opened, 'YYYY') AS year OFFSET 0) c`;
/**
 * The history person's personal identity number for case n, as p.pnr: born 1900-01-01 onwards,
 * twenty a day (birth numbers 980–999); after 1999-12-31 the same dates as coordination numbers
 * (day + 60); after that the numbers repeat (a person's second business). The Luhn check digit
 * over the ten-digit form's first nine digits, doubling the 1st, 3rd, … (bench/personnummer.ts).
 * Plain expressions rather than a function: a fifth of a plpgsql call's cost, per case and table.
 * OFFSET 0 keeps each subquery from being pulled up, so each is computed once per case.
 */
const DOUBLED = 'ARRAY[0, 2, 4, 6, 8, 1, 3, 5, 7, 9]';
const luhnDigit = (i: number): string =>
  i % 2 === 1 ? `(${DOUBLED})[substr(b.body, ${i}, 1)::int + 1]` : `substr(b.body, ${i}, 1)::int`;
const withPnr = `${series}
           CROSS JOIN LATERAL (SELECT date '1900-01-01' + ((n / 20) % ${CENTURY_DAYS})::int AS birth,
                                      ((n / 20 / ${CENTURY_DAYS}) % 2) = 1 AS coordination OFFSET 0) d
           CROSS JOIN LATERAL (SELECT d.birth, to_char(d.birth, 'YYMM')
                                 || lpad((extract(day FROM d.birth)::int + CASE WHEN d.coordination THEN 60 ELSE 0 END)::text, 2, '0')
                                 || (980 + n % 20)::text AS body OFFSET 0) b
           CROSS JOIN LATERAL (SELECT to_char(b.birth, 'YYYY') || substr(b.body, 3)
                                 || ((10 - (${[1, 2, 3, 4, 5, 6, 7, 8, 9].map(luhnDigit).join(' + ')}) % 10) % 10)::text AS pnr
                               OFFSET 0) p`;

/** One row per case per entry of `rows`, each a parenthesised list of SQL expressions. */
const lateralValues = (alias: string, columns: string, rows: string[]): string =>
  `CROSS JOIN LATERAL (VALUES ${rows.join(',\n  ')}) AS ${alias}(${columns})`;

// ---- the tables ------------------------------------------------------------------------------

export interface HistoryTable {
  table: string;
  rowsPerCase: number;
  /** INSERT INTO table (columns) */
  insert: string;
  /** SELECT … FROM …: the rows of the batch's cases ($1…$2). */
  select: string;
  /**
   * The order rows are written in: by key where the table has a uuid key (each batch then walks
   * the primary key and (case_id, …) indexes once, in order, instead of at random), by case
   * and the engine's order where ids are generated (so they count up as the engine's do).
   */
  orderBy: string;
  onConflict?: string;
}

export const statementOf = (t: HistoryTable): string =>
  `${t.insert}\n${t.select}\nORDER BY ${t.orderBy}${t.onConflict ? `\n${t.onConflict}` : ''}`;

export const TABLES: HistoryTable[] = [
  {
    table: 'subjects',
    rowsPerCase: 1,
    insert: 'INSERT INTO subjects (id, identity_digest, created_at)',
    select: `SELECT ${subject},
                    encode(sha256(convert_to('se-personal-identity-number:' || pnr, 'UTF8')), 'hex'),
                    ${at(T.signIn)}
             ${withPnr}`,
    orderBy: '1',
    // A second load into the same database: the same persons, who already have their subject.
    onConflict: 'ON CONFLICT DO NOTHING',
  },
  {
    table: 'cases',
    rowsPerCase: 1,
    insert: `INSERT INTO cases (id, subject_id, life_event_key, definition_id, definition_version, status,
                                revision, created_at, updated_at, submitted_at, finished_at,
                                consent_checksum, consented_at)`,
    select: `SELECT ${caseId}, ${subject}, 'start-business', k.def, k.ver, 'completed', ${caseEvents().length},
                    ${at(T.opened)}, ${at(T.fCompleted)}, ${at(T.submitted)}, ${at(T.fCompleted)},
                    ${consentChecksum}, ${at(T.submitted)}
             ${series}`,
    orderBy: '1',
  },
  {
    table: 'lookups',
    rowsPerCase: 1,
    insert: `INSERT INTO lookups (id, case_id, subject_id, agency, fact_keys, state, found_keys,
                                  unavailable_keys, attempt, max_attempts, disclosed_fact_ids,
                                  created_at, updated_at, answered_at)`,
    select: `SELECT ${lookupId}, ${caseId}, ${subject}, ${sqlText(LOOKUP.agency)}, ${textArray(LOOKUP.factKeys)},
                    'answered', ${textArray(LOOKUP.factKeys)}, '{}'::text[], 1, ${LOOKUP.maxAttempts},
                    ARRAY[${factId(IDENTITY)}], ${at(T.opened)}, ${at(T.lookupAnswered)},
                    ${at(T.lookupAnswered)}
             ${series}`,
    orderBy: '1',
  },
  {
    table: 'step_runs',
    rowsPerCase: STEPS.length,
    insert: `INSERT INTO step_runs (id, case_id, step_id, agency, action, kind, state, attempt, max_attempts,
                                    disclosed_fact_ids, result, agency_reference, deadline_at, ready_at,
                                    dispatched_at, finished_at, updated_at)`,
    select: `SELECT ${stepRunId('s.k')}, ${caseId}, s.step_id, s.agency, s.action, s.kind, s.state, s.attempt,
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
                            NULL::timestamptz, NULL::timestamptz, NULL::timestamptz, ${at(T.submitted)})`;
                 }
                 const r = s as Ran;
                 return `(${head}, 'completed', 1, ${s.maxAttempts}, ${uuidArray(r.run.needs)},
                          jsonb_build_object('outcome', 'completed', 'reference', ${reference(r)},
                            'producedKeys', ${jsonOf(r.run.produces.map(factKey))}),
                          ${reference(r)}, ${deadlineOf(r)}, ${at(r.run.dispatched)},
                          ${at(plus(r.run.dispatched, PUBLISH_DELAY))}, ${at(r.run.finished)})`;
               }),
             )}`,
    orderBy: '1',
  },
  {
    table: 'fact_records',
    rowsPerCase: FACTS.length,
    insert: `INSERT INTO fact_records (id, subject_id, fact_key, value, source, agency, case_id, step_run_id,
                                       lookup_id, created_at)`,
    select: `SELECT ${factId('f.f')}, ${subject}, f.fact_key, f.value, f.source, f.agency, ${caseId},
                    f.step_run_id, f.lookup_id, f.created_at
             ${withPnr}
             ${lateralValues(
               'f',
               'f, fact_key, value, source, agency, step_run_id, lookup_id, created_at',
               FACTS.map(
                 (f) =>
                   `(${f.f}, ${sqlText(f.key)}, ${f.value}, ${sqlText(f.source)},
                     ${f.agency ? sqlText(f.agency) : 'NULL::text'},
                     ${f.step ? stepRunId(f.step) : 'NULL::uuid'},
                     ${f.source === 'lookup' ? lookupId : 'NULL::uuid'}, ${at(f.at)})`,
               ),
             )}`,
    orderBy: '1',
  },
  {
    table: 'case_events',
    rowsPerCase: caseEvents().length,
    insert: 'INSERT INTO case_events (case_id, seq, type, step_id, data, created_at)',
    select: `SELECT ${caseId}, e.seq, e.type, e.step_id, e.data, e.created_at
             ${series}
             ${lateralValues('e', 'seq, type, step_id, data, created_at', caseEvents())}`,
    orderBy: '1, 2',
  },
  {
    table: 'disclosures',
    rowsPerCase: 1 + COMPLETED.length,
    insert: `INSERT INTO disclosures (subject_id, case_id, step_run_id, lookup_id, agency, fact_record_ids,
                                      fact_keys, basis, created_at)`,
    select: `SELECT ${subject}, ${caseId}, d.step_run_id, d.lookup_id, d.agency, d.fact_record_ids,
                    d.fact_keys, d.basis, d.created_at
             ${series}
             ${lateralValues(
               'd',
               'ord, step_run_id, lookup_id, agency, fact_record_ids, fact_keys, basis, created_at',
               [
                 `(0, NULL::uuid, ${lookupId}, ${sqlText(LOOKUP.agency)}, ARRAY[${factId(IDENTITY)}],
                 ${textArray([factKey(IDENTITY)])}, 'lookup', ${at(T.opened)})`,
                 ...COMPLETED.map(
                   (s) =>
                     `(${s.k}, ${stepRunId(s.k)}, NULL::uuid, ${sqlText(s.agency)}, ${uuidArray(s.run.needs)},
                     ${textArray(s.run.needs.map(factKey))}, 'consent', ${at(s.run.dispatched)})`,
                 ),
               ],
             )}`,
    orderBy: 'n, d.ord',
  },
  {
    table: 'messages',
    rowsPerCase: messages().length,
    insert: `INSERT INTO messages (id, subject_id, case_id, step_id, sender, kind, template, params,
                                   created_at)`,
    select: `SELECT ${messageId('m.m')}, ${subject}, ${caseId}, m.step_id, m.sender, m.kind, m.template,
                    m.params, m.created_at
             ${series}
             ${lateralValues('m', 'm, step_id, sender, kind, template, params, created_at', messages())}`,
    orderBy: '1',
  },
  {
    table: 'outbox',
    rowsPerCase: 1 + 2 * COMPLETED.length,
    insert:
      'INSERT INTO outbox (queue, job_name, job_id, payload, available_at, created_at, sent_at)',
    select: `SELECT o.queue, o.job_name, o.job_id, o.payload, o.available_at, o.created_at,
                    o.created_at + interval '${PUBLISH_DELAY} seconds'
             ${withPnr}
             ${lateralValues('o', 'ord, queue, job_name, job_id, payload, available_at, created_at', outbox())}`,
    orderBy: 'n, o.ord',
  },
];

/**
 * The mock agencies' ledgers for the same cases (only with `ledger`: a real deployment has
 * none, but a long-running one on the mock agencies does): the look-up request and each step's
 * request and effect, as src/adapters/mock-ledger.repository.ts records them.
 */
export const LEDGER_TABLES: HistoryTable[] = [
  {
    table: 'mock_agency_requests',
    rowsPerCase: 1 + COMPLETED.length,
    insert: `INSERT INTO mock_agency_requests (agency, action, idempotency_key, step_run_id, lookup_id,
                                               attempt, facts, received_at)`,
    select: `SELECT r.agency, r.action, r.idempotency_key, r.step_run_id, r.lookup_id, 1, r.facts,
                    r.received_at
             ${withPnr}
             ${lateralValues(
               'r',
               'ord, agency, action, idempotency_key, step_run_id, lookup_id, facts, received_at',
               [
                 `(0, ${sqlText(LOOKUP.agency)}, 'lookup', ${lookupId}::text, NULL::uuid, ${lookupId},
                 ${jobFacts([IDENTITY])}, ${at(plus(T.opened, PUBLISH_DELAY + 0.002))})`,
                 ...COMPLETED.map(
                   (s) =>
                     `(${s.k}, ${sqlText(s.agency)}, ${sqlText(s.action)}, ${stepRunId(s.k)}::text, ${stepRunId(s.k)},
                     NULL::uuid, ${jobFacts(s.run.needs)}, ${at(plus(s.run.dispatched, PUBLISH_DELAY + 0.001))})`,
                 ),
               ],
             )}`,
    orderBy: 'n, r.ord',
  },
  {
    table: 'mock_agency_effects',
    rowsPerCase: COMPLETED.length,
    insert: `INSERT INTO mock_agency_effects (agency, idempotency_key, action, step_run_id, attempt,
                                              reference, outcome, created_at)`,
    select: `SELECT e.agency, e.step_run_id::text, e.action, e.step_run_id, 1, e.reference,
                    jsonb_build_object('outcome', 'completed', 'produced', e.produced,
                      'reference', e.reference), e.created_at
             ${withPnr}
             ${lateralValues(
               'e',
               'ord, agency, action, step_run_id, reference, produced, created_at',
               COMPLETED.map(
                 (s) =>
                   `(${s.k}, ${sqlText(s.agency)}, ${sqlText(s.action)}, ${stepRunId(s.k)}, ${reference(s)},
                     ${s.run.produces.length ? jobFacts(s.run.produces) : "'{}'::jsonb"},
                     ${at(plus(s.run.dispatched, PUBLISH_DELAY + 0.005))})`,
               ),
             )}`,
    orderBy: 'n, e.ord',
  },
];

/** The 18 events the engine appends for a completed standard case, in its order. */
function caseEvents(): string[] {
  const rows: string[] = [];
  const event = (type: string, stepId: string | null, data: string, seconds: string): void => {
    rows.push(
      `(${rows.length + 1}, ${sqlText(type)}, ${stepId ? sqlText(stepId) : 'NULL::text'}, ${data}, ${at(seconds)})`,
    );
  };
  const dispatched = (id: string): void => {
    const s = ran(id);
    event(
      'step-dispatched',
      id,
      `jsonb_build_object('agency', ${sqlText(s.agency)}, 'attempt', 1, 'delayMs', 0,
         'factKeys', ${jsonOf(s.run.needs.map(factKey))})`,
      s.run.dispatched,
    );
  };
  const completed = (id: string): void => {
    const s = ran(id);
    event(
      'step-completed',
      id,
      `jsonb_build_object('attempt', 1, 'reference', ${reference(s)},
         'producedKeys', ${jsonOf(s.run.produces.map(factKey))})`,
      s.run.finished,
    );
  };
  const answered = FACTS.filter((f) => f.source === 'citizen').map((f) => f.key);
  event(
    'case-opened',
    null,
    `jsonb_build_object('lifeEvent', 'start-business', 'version', k.ver, 'factKeys', ${jsonOf(answered)})`,
    T.opened,
  );
  event(
    'lookup-requested',
    null,
    `jsonb_build_object('agency', ${sqlText(LOOKUP.agency)}, 'attempt', 1, 'delayMs', 0,
       'factKeys', ${jsonOf(LOOKUP.factKeys)})`,
    T.opened,
  );
  event(
    'lookup-answered',
    null,
    `jsonb_build_object('agency', ${sqlText(LOOKUP.agency)}, 'foundKeys', ${jsonOf(LOOKUP.factKeys)},
       'unavailableKeys', '[]'::jsonb)`,
    T.lookupAnswered,
  );
  event(
    'case-submitted',
    null,
    `jsonb_build_object('previewChecksum', ${consentChecksum})`,
    T.submitted,
  );
  dispatched('register-sole-trader');
  for (const s of SKIPPED) event('step-skipped', s.stepId, "'{}'::jsonb", T.submitted);
  completed('register-sole-trader');
  for (const id of ['f-tax', 'vat-registration', 'employer-registration']) dispatched(id);
  for (const id of ['f-tax', 'vat-registration', 'employer-registration']) completed(id);
  dispatched('business-notice');
  completed('business-notice');
  event('case-completed', null, "'{}'::jsonb", T.fCompleted);
  return rows;
}

/**
 * The 7 messages, as the engine writes them (template and parameters; created_at is the
 * clock_timestamp() of its insert, a moment into its transaction).
 */
function messages(): string[] {
  const rows: string[] = [];
  const message = (
    stepId: string | null,
    sender: string,
    kind: string,
    template: string,
    params: string,
    seconds: string,
  ): void => {
    rows.push(
      `(${rows.length + 1}, ${stepId ? sqlText(stepId) : 'NULL::text'}, ${sqlText(sender)}, ${sqlText(kind)},
        ${sqlText(template)}, jsonb_build_object('lifeEvent', 'start-business') || ${params},
        ${at(plus(seconds, 0.001 * (rows.length + 1)))})`,
    );
  };
  message(
    null,
    'leo',
    'receipt',
    'case-submitted',
    `jsonb_build_object('agencies', ${jsonOf([...new Set(COMPLETED.map((s) => s.agency))].sort())})`,
    T.submitted,
  );
  for (const s of COMPLETED.filter((x) => x.kind === 'decision')) {
    message(
      s.stepId,
      s.agency,
      'decision',
      'step-granted',
      `jsonb_build_object('stepId', ${sqlText(s.stepId)}, 'action', ${sqlText(s.action)},
         'reference', ${reference(s)})`,
      s.run.finished,
    );
  }
  message(null, 'leo', 'notice', 'case-completed', "'{}'::jsonb", T.fCompleted);
  message(
    null,
    'leo',
    'notice',
    'fewer-answers',
    `jsonb_build_object('lifeEvents', ${jsonOf(FEWER_ANSWERS)})`,
    T.fCompleted,
  );
  return rows;
}

/**
 * The 11 outbox rows, in the engine's order: the look-up's job; per step its job and its
 * deadline timer (a delayed job, published at once).
 */
function outbox(): string[] {
  const rows: string[] = [];
  const row = (
    queue: string,
    jobName: string,
    jobId: string,
    payload: string,
    availableAt: string,
    seconds: string,
  ): void => {
    rows.push(
      `(${rows.length + 1}, ${sqlText(queue)}, ${sqlText(jobName)}, ${jobId}, ${payload}, ${availableAt}, ${at(seconds)})`,
    );
  };
  row(
    `agency.${LOOKUP.agency}`,
    'fact.lookup',
    `${lookupId}::text || '.1.lookup'`,
    `jsonb_build_object('caseId', ${caseId}, 'lookupId', ${lookupId}, 'attempt', 1,
       'idempotencyKey', ${lookupId}, 'facts', ${jobFacts([IDENTITY])},
       'factKeys', ${jsonOf(LOOKUP.factKeys)})`,
    at(T.opened),
    T.opened,
  );
  for (const s of COMPLETED) {
    const id = stepRunId(s.k);
    row(
      `agency.${s.agency}`,
      'step.execute',
      `${id}::text || '.1'`,
      `jsonb_build_object('caseId', ${caseId}, 'stepRunId', ${id}, 'idempotencyKey', ${id},
         'stepId', ${sqlText(s.stepId)}, 'action', ${sqlText(s.action)}, 'attempt', 1,
         'deadline', ${isoText(deadlineOf(s))}, 'facts', ${jobFacts(s.run.needs)})`,
      at(s.run.dispatched),
      s.run.dispatched,
    );
    row(
      'engine.timers',
      'step.deadline',
      `${id}::text || '.deadline.' || (extract(epoch FROM ${deadlineOf(s)}) * 1000)::bigint`,
      `jsonb_build_object('caseId', ${caseId}, 'stepRunId', ${id}, 'deadline', ${isoText(deadlineOf(s))})`,
      deadlineOf(s),
      s.run.dispatched,
    );
  }
  return rows;
}

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
  /** Load the mock agencies' ledgers too (LEDGER_TABLES). */
  ledger?: boolean;
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
  const tables = [...TABLES, ...(options.ledger ? LEDGER_TABLES : [])];
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
      [tables.map((t) => t.table)],
    );
    for (const index of found.rows) await client.query(`DROP INDEX ${index.name}`);
    return found.rows;
  });

  if (options.ownCluster) await tune(url, true);
  const tasks: Array<{ table: HistoryTable; from: number; to: number }> = [];
  for (const table of tables) {
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
        const result = await client.query(statementOf(task.table), [
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
  // VACUUM, not only ANALYZE: it sets the pages all-visible and their hint bits, as routine
  // vacuuming has for any history in production, and it resets the count of rows inserted since
  // the last vacuum. Left to autovacuum, the insert threshold would start a vacuum of every
  // loaded table (minutes at a million cases) in the middle of the runs that follow.
  const vacuumed = performance.now();
  let v = 0;
  const vacuum = (): Promise<void> =>
    withClient(url, async (client) => {
      await client.query("SET maintenance_work_mem = '512MB'");
      while (v < tables.length) {
        const table = tables[v] as HistoryTable;
        v += 1;
        await client.query(`VACUUM (ANALYZE) ${table.table}`);
      }
    });
  await Promise.all(Array.from({ length: parallel }, vacuum));
  perTable['(vacuum, analyze)'] = { rows: 0, ms: performance.now() - vacuumed };
  const rows = Object.values(perTable).reduce((sum, t) => sum + t.rows, 0);
  return { cases, rows, ms: performance.now() - started, perTable };
}

/**
 * Every reference of the loaded rows resolves (the checks the load skipped: every foreign key of
 * the loaded tables, read from the catalogue, and the uuid arrays that point at fact records),
 * and counts add up.
 */
export async function verifyHistory(url: string): Promise<string[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const foreignKeys = await client.query<{
      name: string;
      child: string;
      column: string;
      parent: string;
      key: string;
    }>(
      `SELECT c.conname AS name, c.conrelid::regclass::text AS child, a.attname AS column,
              c.confrelid::regclass::text AS parent, pa.attname AS key
         FROM pg_constraint c
         JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
         JOIN pg_attribute pa ON pa.attrelid = c.confrelid AND pa.attnum = c.confkey[1]
        WHERE c.contype = 'f' AND cardinality(c.conkey) = 1 AND c.conrelid = ANY($1::regclass[])
        ORDER BY 1`,
      [TABLES.map((t) => t.table)],
    );
    const checks: Array<[string, string]> = foreignKeys.rows.map((fk) => [
      `${fk.child}.${fk.column} that are no ${fk.parent}.${fk.key} (${fk.name})`,
      `SELECT count(*) FROM ${fk.child} t WHERE t.${fk.column} IS NOT NULL
         AND NOT EXISTS (SELECT 1 FROM ${fk.parent} p WHERE p.${fk.key} = t.${fk.column})`,
    ]);
    const arrays: Array<[string, string]> = [
      ['step_runs', 'disclosed_fact_ids'],
      ['lookups', 'disclosed_fact_ids'],
      ['disclosures', 'fact_record_ids'],
    ];
    for (const [table, column] of arrays) {
      checks.push([
        `${table}.${column} that are no fact record`,
        `SELECT count(*) FROM (SELECT unnest(${column}) AS id FROM ${table}) x
           WHERE NOT EXISTS (SELECT 1 FROM fact_records f WHERE f.id = x.id)`,
      ]);
    }
    checks.push(
      [
        'fact records of another subject than their case',
        'SELECT count(*) FROM fact_records f JOIN cases c ON c.id = f.case_id WHERE f.subject_id <> c.subject_id',
      ],
      [
        'cases whose revision is not their event count',
        'SELECT count(*) FROM cases c JOIN (SELECT case_id, max(seq) AS m, count(*) AS n FROM case_events GROUP BY case_id) e ON e.case_id = c.id WHERE e.m <> c.revision OR e.n <> c.revision',
      ],
    );
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
      compare: { type: 'boolean' },
      ledger: { type: 'boolean' },
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
    const { startBenchInfra, stopOnSignal } = await import('./infra.js');
    const { startLeo } = await import('./leo.js');
    const infra = await startBenchInfra(log);
    stop = () => infra.stop();
    stopOnSignal(stop, log);
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
      try {
        if (values.compare) await runLiveCase(leo.apiUrl, log);
      } finally {
        await leo.stop();
      }
    } catch (error) {
      await stop();
      throw error;
    }
  }
  try {
    log(`loading ${cases} completed start-business cases`);
    const report = await loadHistory(url, cases, {
      log,
      ownCluster: !given,
      ledger: values.ledger ?? false,
    });
    for (const [table, t] of Object.entries(report.perTable)) {
      process.stdout.write(
        `  ${table.padEnd(20)} ${String(t.rows).padStart(10)} rows  ${(t.ms / 1000).toFixed(1)} s (statement time)\n`,
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
    if (values.compare) {
      const { compareWithLive } = await import('./history-shape.js');
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      try {
        const { live, loaded, differences } = await compareWithLive(client, {
          ledger: values.ledger ?? false,
        });
        process.stdout.write(
          differences.length === 0
            ? `compare: loaded case ${loaded} has the shape of live case ${live} in every table\n`
            : `compare: loaded case ${loaded} differs from live case ${live}:\n  ${differences.join('\n  ')}\n`,
        );
        if (differences.length > 0) process.exitCode = 1;
      } finally {
        await client.end();
      }
    }
  } finally {
    await stop();
  }
}

/** One standard case through the citizen API, to its completion: what --compare compares with. */
async function runLiveCase(apiUrl: string, log: (m: string) => void): Promise<void> {
  const { LeoClient, workloadAnswers } = await import('./client.js');
  const { livePersonnummer } = await import('./personnummer.js');
  const client = new LeoClient(apiUrl, 4);
  try {
    const token = await client.citizenToken(livePersonnummer(0));
    const { caseId } = await client.citizenFlow(token, workloadAnswers('Jämförelseföretag'));
    const deadline = Date.now() + 30_000;
    while ((await client.caseStatus(token, caseId)) !== 'completed') {
      if (Date.now() > deadline) throw new Error(`live case ${caseId} not completed in 30 s`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    log(`live case ${caseId} completed`);
  } finally {
    client.close();
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
