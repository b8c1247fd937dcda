import type pg from 'pg';

/**
 * The shape of one case's rows in every table the engine writes: which columns are set, the
 * codes and keys they hold, with what differs between any two cases (ids, times, names,
 * references' serial numbers) abstracted away. Two cases of the standard workload have the same
 * shape; `npm run bench:history -- --compare` checks a loaded case against a live one, so that a
 * change to what the engine writes shows up as a difference here rather than as a history that
 * quietly stopped looking like production.
 */

const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g;
const TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

/**
 * Strings with what varies per case replaced: ids (by what they name: `<fact person.name>`, so
 * that references compare too), times, serials, digits.
 */
function normaliseString(s: string, ids: ReadonlyMap<string, string>): string {
  if (TIMESTAMP.test(s)) return '<time>';
  if (/^[0-9a-f]{64}$/.test(s)) return '<sha256>';
  if (/^[A-Za-z0-9_-]{43}$/.test(s) && /\d/.test(s)) return '<checksum>';
  return s
    .replace(UUID, (id) => ids.get(id) ?? '<uuid>')
    .replace(/[0-9A-F]{10}/g, '<serial>')
    .replace(/\d+/g, '9');
}

/** Values whose content is the person's own (names, addresses, answers): only their kind. */
function kindOf(value: unknown): unknown {
  if (value === null) return 'null';
  if (Array.isArray(value)) return value.map(kindOf);
  if (typeof value === 'object') {
    return Object.fromEntries(
      Object.keys(value)
        .sort()
        .map((k) => [k, typeof (value as Record<string, unknown>)[k]]),
    );
  }
  return typeof value;
}

function normalise(value: unknown, ids: ReadonlyMap<string, string>, key = ''): unknown {
  if (value === null || value === undefined) return undefined;
  // Fact values: the facts of a record (`value`) or of a job (`facts`), the person's own.
  if (key === 'value') return kindOf(value);
  if (key === 'facts' && typeof value === 'object' && !Array.isArray(value)) {
    return Object.fromEntries(
      Object.keys(value)
        .sort()
        .map((k) => [k, kindOf((value as Record<string, unknown>)[k])]),
    );
  }
  if (typeof value === 'string') return normaliseString(value, ids);
  if (Array.isArray(value)) return value.map((v) => normalise(v, ids));
  if (typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(value).sort()) {
      const v = normalise((value as Record<string, unknown>)[k], ids, k);
      if (v !== undefined) out[k] = v;
    }
    return out;
  }
  return value;
}

/** Per table, the case's rows (in a stable order), each as the normalised row. */
export async function caseShape(
  client: pg.Client,
  caseId: string,
  options: { ledger?: boolean } = {},
): Promise<Record<string, unknown[]>> {
  // Generated ids (bigint identities) are the order of insertion, not part of the shape.
  const queries: Record<string, string> = {
    subjects:
      'SELECT to_jsonb(s) AS row FROM subjects s JOIN cases c ON c.subject_id = s.id WHERE c.id = $1',
    cases: 'SELECT to_jsonb(c) AS row FROM cases c WHERE c.id = $1',
    lookups: 'SELECT to_jsonb(l) AS row FROM lookups l WHERE l.case_id = $1 ORDER BY l.created_at',
    step_runs: 'SELECT to_jsonb(s) AS row FROM step_runs s WHERE s.case_id = $1 ORDER BY s.step_id',
    fact_records:
      'SELECT to_jsonb(f) AS row FROM fact_records f WHERE f.case_id = $1 ORDER BY f.fact_key',
    case_events:
      "SELECT to_jsonb(e) - 'id' AS row FROM case_events e WHERE e.case_id = $1 ORDER BY e.seq",
    disclosures:
      "SELECT to_jsonb(d) - 'id' AS row FROM disclosures d WHERE d.case_id = $1 ORDER BY d.id",
    messages:
      'SELECT to_jsonb(m) AS row FROM messages m WHERE m.case_id = $1 ORDER BY m.created_at, m.id',
    outbox:
      "SELECT to_jsonb(o) - 'id' AS row FROM outbox o WHERE o.payload->>'caseId' = $1::text ORDER BY o.id",
    ...(options.ledger
      ? {
          mock_agency_requests: `SELECT to_jsonb(r) - 'id' AS row FROM mock_agency_requests r
              WHERE r.step_run_id IN (SELECT id FROM step_runs WHERE case_id = $1)
                 OR r.lookup_id IN (SELECT id FROM lookups WHERE case_id = $1) ORDER BY r.id`,
          mock_agency_effects: `SELECT to_jsonb(e) AS row FROM mock_agency_effects e
              WHERE e.step_run_id IN (SELECT id FROM step_runs WHERE case_id = $1)
              ORDER BY e.created_at`,
        }
      : {}),
  };
  const rows: Record<string, Array<Record<string, unknown>>> = {};
  for (const [table, sql] of Object.entries(queries)) {
    rows[table] = (await client.query<{ row: Record<string, unknown> }>(sql, [caseId])).rows.map(
      (r) => r.row,
    );
  }
  // Every id of the case by what it names.
  const ids = new Map<string, string>();
  const name = (table: string, label: (row: Record<string, unknown>) => string): void => {
    for (const row of rows[table] ?? []) ids.set(String(row.id), `<${label(row)}>`);
  };
  name('subjects', () => 'subject');
  name('cases', () => 'case');
  name('lookups', (r) => `lookup ${String(r.agency)}`);
  name('step_runs', (r) => `step ${String(r.step_id)}`);
  name('fact_records', (r) => `fact ${String(r.fact_key)}`);
  name('messages', (r) => `message ${String(r.template)}`);
  // Each table as a set of rows (sorted by content, not time: steps that run in parallel
  // finish in either order), and the order of the case's history by event type.
  const shape: Record<string, unknown[]> = Object.fromEntries(
    Object.entries(rows).map(([table, list]) => [
      table,
      list
        .map((r) => normalise(table === 'case_events' ? { ...r, seq: undefined } : r, ids))
        .map((r) => [JSON.stringify(r), r] as const)
        .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
        .map(([, r]) => r),
    ]),
  );
  shape['case_events order'] = (rows.case_events ?? []).map((e) => e.type);
  return shape;
}

/** Where two shapes differ, as `path: a ≠ b` lines (empty when they are the same). */
export function shapeDifferences(a: unknown, b: unknown, path = ''): string[] {
  if (JSON.stringify(a) === JSON.stringify(b)) return [];
  if (Array.isArray(a) && Array.isArray(b)) {
    const out: string[] = [];
    if (a.length !== b.length) out.push(`${path}: ${a.length} rows ≠ ${b.length} rows`);
    for (let i = 0; i < Math.min(a.length, b.length); i += 1) {
      out.push(...shapeDifferences(a[i], b[i], `${path}[${i}]`));
    }
    return out;
  }
  if (a && b && typeof a === 'object' && typeof b === 'object') {
    const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
    return keys.flatMap((k) =>
      shapeDifferences(
        (a as Record<string, unknown>)[k],
        (b as Record<string, unknown>)[k],
        path ? `${path}.${k}` : k,
      ),
    );
  }
  return [`${path}: ${JSON.stringify(a)} ≠ ${JSON.stringify(b)}`];
}

/**
 * Compares a loaded case with the newest live completed standard case of the database (one whose
 * business name is not a history one). Returns the differences, or throws when there is no live
 * case to compare with.
 */
export async function compareWithLive(
  client: pg.Client,
  options: { ledger?: boolean } = {},
): Promise<{ live: string; loaded: string; differences: string[] }> {
  const pick = async (live: boolean): Promise<string | undefined> => {
    const rows = await client.query<{ id: string }>(
      `SELECT c.id FROM cases c JOIN fact_records f ON f.case_id = c.id AND f.fact_key = 'business.name'
        WHERE c.life_event_key = 'start-business' AND c.status = 'completed'
          AND (f.value #>> '{}' LIKE 'Historikföretag %') = $1
        ORDER BY c.created_at DESC LIMIT 1`,
      [!live],
    );
    return rows.rows[0]?.id;
  };
  const [live, loaded] = [await pick(true), await pick(false)];
  if (!live) throw new Error('no live completed start-business case to compare with');
  if (!loaded) throw new Error('no loaded history case to compare');
  const differences = shapeDifferences(
    await caseShape(client, live, options),
    await caseShape(client, loaded, options),
  );
  return { live, loaded, differences };
}
