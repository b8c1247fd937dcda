import type pg from 'pg';
import type { DataSource } from 'typeorm';

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
  return (await pool.query<T>({ name: `leo.${name}`, text, values })).rows;
}
