import { createHash } from 'node:crypto';
import type pg from 'pg';
import type { DataSource } from 'typeorm';

/** Postgres keeps the first NAMEDATALEN - 1 bytes of an identifier, a statement's name included. */
const MAX_NAME_BYTES = 63;
const HASH_CHARS = 12;
const names = new Map<string, string>();

/**
 * The name a statement is prepared under: `leo.<name>`, or, when that is longer than Postgres
 * keeps, its start and a digest of the whole. Postgres would silently cut a long name, so two
 * statements whose names differ only after the cut would share one prepared statement on a
 * connection (the second fails with "prepared statement already exists").
 */
export function statementName(name: string): string {
  let safe = names.get(name);
  if (safe === undefined) {
    safe = `leo.${name}`;
    if (Buffer.byteLength(safe) > MAX_NAME_BYTES) {
      const digest = createHash('sha256').update(name).digest('hex').slice(0, HASH_CHARS);
      let head = safe.slice(0, MAX_NAME_BYTES - HASH_CHARS - 1);
      while (Buffer.byteLength(head) > MAX_NAME_BYTES - HASH_CHARS - 1) head = head.slice(0, -1);
      safe = `${head}~${digest}`;
    }
    names.set(name, safe);
  }
  return safe;
}

/**
 * Runs a named statement on TypeORM's pool: each pooled connection parses and plans it once and
 * afterwards only binds and executes it. For the statements on leo's hot path (large ones with
 * many CTEs especially) that is most of their cost in Postgres. `name` must be unique per text.
 */
export async function preparedQuery<T extends pg.QueryResultRow>(
  dataSource: DataSource,
  name: string,
  text: string,
  values: unknown[],
): Promise<T[]> {
  const pool = (dataSource.driver as unknown as { master: pg.Pool }).master;
  return (await pool.query<T>({ name: statementName(name), text, values })).rows;
}
