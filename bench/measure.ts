import pg from 'pg';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * What the benchmark reads from leo's database after a phase: completion times, step
 * executions, dispatch latency, and the exactly-once check on the mock agencies' ledgers. Only
 * reads; the one query made during a phase (waiting for completion) uses the status index and
 * touches only cases still running.
 */

/** The five steps the standard workload runs (A, B, C, D, F); the other three are skipped. */
export const WORKLOAD_STEPS = [
  {
    step: 'A',
    stepId: 'register-sole-trader',
    agency: 'bolagsverket',
    action: 'register-sole-trader',
  },
  { step: 'B', stepId: 'f-tax', agency: 'skatteverket', action: 'register-f-tax' },
  { step: 'C', stepId: 'vat-registration', agency: 'skatteverket', action: 'register-vat' },
  {
    step: 'D',
    stepId: 'employer-registration',
    agency: 'skatteverket',
    action: 'register-employer',
  },
  { step: 'F', stepId: 'business-notice', agency: 'kommun', action: 'notify-new-business' },
] as const;

export const STEPS_PER_CASE = WORKLOAD_STEPS.length;

export function openDatabase(url: string): pg.Pool {
  return new pg.Pool({ connectionString: url, max: 2, application_name: 'leo-bench' });
}

/**
 * Waits until no case is running (every submitted case has finished, or stopped needing
 * action), calling `onTick` after each look so the caller can sample CPU at the moment it is
 * seen. Returns the epoch ms when it was seen.
 */
export async function waitUntilNoneRunning(
  db: pg.Pool,
  timeoutMs: number,
  onTick: (running: number) => void,
  intervalMs = 100,
): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const rows = await db.query<{ n: string }>(
      "SELECT count(*) AS n FROM cases WHERE status = 'running'",
    );
    const running = Number(rows.rows[0]?.n ?? 0);
    onTick(running);
    if (running === 0) return Date.now();
    if (Date.now() > deadline) {
      throw new Error(`${running} case(s) still running after ${timeoutMs} ms`);
    }
    await sleep(intervalMs);
  }
}

export interface CaseTimes {
  id: string;
  status: string;
  /** Epoch ms of the submit's transaction (Postgres now()), or null. */
  submittedAt: number | null;
  finishedAt: number | null;
}

const epochMs = (v: string | null): number | null => (v === null ? null : Number(v));

export async function caseTimes(db: pg.Pool, ids: readonly string[]): Promise<CaseTimes[]> {
  const rows = await db.query<{
    id: string;
    status: string;
    submitted_ms: string | null;
    finished_ms: string | null;
  }>(
    `SELECT id, status,
            extract(epoch FROM submitted_at) * 1000 AS submitted_ms,
            extract(epoch FROM finished_at) * 1000 AS finished_ms
       FROM cases WHERE id = ANY($1::uuid[])`,
    [ids],
  );
  return rows.rows.map((r) => ({
    id: r.id,
    status: r.status,
    submittedAt: epochMs(r.submitted_ms),
    finishedAt: epochMs(r.finished_ms),
  }));
}

/** Step executions that finished `completed`, and their finish times (epoch ms). */
export async function completedSteps(db: pg.Pool, ids: readonly string[]): Promise<number> {
  const rows = await db.query<{ n: string }>(
    `SELECT count(*) AS n FROM step_runs WHERE case_id = ANY($1::uuid[]) AND state = 'completed'`,
    [ids],
  );
  return Number(rows.rows[0]?.n ?? 0);
}

/**
 * Dispatch latency of each completed step: from `step_runs.ready_at` (the transaction that made
 * it ready) to the mock agency's first `received_at` for the same step run and attempt; and its
 * reply latency, from that `received_at` (the agency answers at once) to the step's
 * `finished_at` (the engine applied the answer).
 */
export async function dispatchLatencies(
  db: pg.Pool,
  ids: readonly string[],
): Promise<{ dispatch: number[]; reply: number[] }> {
  const rows = await db.query<{ ms: string; reply_ms: string }>(
    `SELECT extract(epoch FROM (r.received_at - s.ready_at)) * 1000 AS ms,
            extract(epoch FROM (s.finished_at - r.received_at)) * 1000 AS reply_ms
       FROM step_runs s
       JOIN (SELECT step_run_id, attempt, min(received_at) AS received_at
               FROM mock_agency_requests GROUP BY step_run_id, attempt) r
         ON r.step_run_id = s.id AND r.attempt = s.attempt
      WHERE s.case_id = ANY($1::uuid[]) AND s.state = 'completed' AND s.ready_at IS NOT NULL`,
    [ids],
  );
  return {
    dispatch: rows.rows.map((r) => Number(r.ms)),
    reply: rows.rows.map((r) => Number(r.reply_ms)),
  };
}

export interface LedgerCheck {
  ok: boolean;
  cases: number;
  casesCompleted: number;
  statuses: Record<string, number>;
  /** Effects of the five step actions for these cases (expected: 5 per case). */
  effects: number;
  /** (agency, idempotency key) pairs seen more than once (expected: none). */
  duplicateEffects: number;
  /** Cases whose five steps did not each complete with exactly one effect. */
  casesWithWrongEffects: number;
  /** Requests delivered more than once (allowed: at-least-once delivery; for information). */
  redeliveredRequests: number;
  problems: string[];
}

/**
 * The check: every case completed, and each of its five steps (A, B, C, D, F) completed with
 * exactly one effect in the mock agency's ledger under its own agency and action, no effect made
 * twice. Ledger rows of other actions (look-ups) are not counted.
 */
export async function checkLedger(
  db: pg.Pool,
  ids: readonly string[],
  expectedCases: number,
): Promise<LedgerCheck> {
  const problems: string[] = [];
  const statusRows = await db.query<{ status: string; n: string }>(
    'SELECT status, count(*) AS n FROM cases WHERE id = ANY($1::uuid[]) GROUP BY status',
    [ids],
  );
  const statuses = Object.fromEntries(statusRows.rows.map((r) => [r.status, Number(r.n)]));
  const casesCompleted = statuses.completed ?? 0;
  if (ids.length !== expectedCases) {
    problems.push(`${expectedCases - ids.length} of ${expectedCases} cases were never created`);
  }
  if (casesCompleted !== expectedCases) {
    problems.push(
      `${casesCompleted} of ${expectedCases} cases completed (${JSON.stringify(statuses)})`,
    );
  }

  // By step id: the municipality's step runs carry the instance it went to (kommun-0180).
  const stepIds = WORKLOAD_STEPS.map((s) => s.stepId);
  const actions = WORKLOAD_STEPS.map((s) => s.action);
  const perStep = await db.query<{
    case_id: string;
    action: string;
    state: string;
    effects: string;
  }>(
    // The effects counted per step run first and joined by hash: the ledger has no index on
    // step_run_id, and a nested loop through its primary key took 30 s for 2,000 cases.
    `SELECT s.case_id, s.action, s.state, coalesce(e.n, 0) AS effects
       FROM step_runs s
       LEFT JOIN (SELECT step_run_id, agency, action, count(*) AS n
                    FROM mock_agency_effects GROUP BY step_run_id, agency, action) e
         ON e.step_run_id = s.id AND e.agency = s.agency AND e.action = s.action
      WHERE s.case_id = ANY($1::uuid[])
        AND s.step_id = ANY($2::text[])`,
    [ids, stepIds],
  );
  const good = new Map<string, number>();
  let effects = 0;
  for (const row of perStep.rows) {
    const n = Number(row.effects);
    effects += n;
    if (row.state === 'completed' && n === 1)
      good.set(row.case_id, (good.get(row.case_id) ?? 0) + 1);
  }
  const casesWithWrongEffects = ids.filter((id) => good.get(id) !== WORKLOAD_STEPS.length).length;
  if (casesWithWrongEffects > 0) {
    problems.push(
      `${casesWithWrongEffects} case(s) without exactly one effect for each of A, B, C, D, F`,
    );
  }
  if (effects !== ids.length * WORKLOAD_STEPS.length) {
    problems.push(`${effects} effects for ${ids.length} cases (expected ${ids.length * 5})`);
  }

  const duplicates = await db.query<{ n: string }>(
    `SELECT count(*) AS n FROM (
       SELECT e.agency, e.idempotency_key FROM mock_agency_effects e
         JOIN step_runs s ON s.id = e.step_run_id
        WHERE s.case_id = ANY($1::uuid[]) AND e.action = ANY($2::text[])
        GROUP BY e.agency, e.idempotency_key HAVING count(*) > 1) d`,
    [ids, actions],
  );
  const duplicateEffects = Number(duplicates.rows[0]?.n ?? 0);
  if (duplicateEffects > 0) problems.push(`${duplicateEffects} effect(s) made more than once`);

  const redelivered = await db.query<{ n: string }>(
    `SELECT count(*) AS n FROM (
       SELECT r.step_run_id FROM mock_agency_requests r
         JOIN step_runs s ON s.id = r.step_run_id
        WHERE s.case_id = ANY($1::uuid[]) AND r.action = ANY($2::text[])
        GROUP BY r.step_run_id HAVING count(*) > 1) d`,
    [ids, actions],
  );

  return {
    ok: problems.length === 0,
    cases: expectedCases,
    casesCompleted,
    statuses,
    effects,
    duplicateEffects,
    casesWithWrongEffects,
    redeliveredRequests: Number(redelivered.rows[0]?.n ?? 0),
    problems,
  };
}
