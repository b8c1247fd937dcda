import { DataSource, type DataSourceOptions } from 'typeorm';

/**
 * A fixed key for pg_advisory_lock: "leo migrations" as two int4s would be clearer, but one bigint
 * is what the functions take. Do not change it: replicas of different versions must agree.
 */
export const MIGRATION_LOCK_KEY = 7_359_420_271_001n;

export interface MigrationReport {
  applied: string[];
  waitedForLockMs: number;
}

/**
 * Runs pending migrations under a session-level Postgres advisory lock, so several replicas
 * starting at once apply each migration exactly once: the first takes the lock and migrates,
 * the others wait, then find nothing pending. Each migration runs in its own transaction.
 */
export async function runMigrationsLocked(options: DataSourceOptions): Promise<MigrationReport> {
  const dataSource = new DataSource({ ...options, poolSize: 2 } as DataSourceOptions);
  await dataSource.initialize();
  const lock = dataSource.createQueryRunner();
  try {
    await lock.connect();
    const started = Date.now();
    await lock.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_KEY.toString()]);
    const waitedForLockMs = Date.now() - started;
    try {
      const applied = await dataSource.runMigrations({ transaction: 'each' });
      return { applied: applied.map((m) => m.name), waitedForLockMs };
    } finally {
      await lock.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY.toString()]);
    }
  } finally {
    await lock.release();
    await dataSource.destroy();
  }
}

/** Reverts the last applied migration, under the same lock. */
export async function revertLastMigrationLocked(options: DataSourceOptions): Promise<void> {
  const dataSource = new DataSource({ ...options, poolSize: 2 } as DataSourceOptions);
  await dataSource.initialize();
  const lock = dataSource.createQueryRunner();
  try {
    await lock.connect();
    await lock.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_KEY.toString()]);
    try {
      await dataSource.undoLastMigration({ transaction: 'each' });
    } finally {
      await lock.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY.toString()]);
    }
  } finally {
    await lock.release();
    await dataSource.destroy();
  }
}
