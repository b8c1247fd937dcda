import { afterAll, afterEach, describe, expect, it } from '@jest/globals';
import type { DataSourceOptions, MigrationInterface, QueryRunner } from 'typeorm';
import { APP_ENTITIES } from '../src/app.entities.js';
import { databaseOptions } from '../src/database/database.options.js';
import { MIGRATIONS } from '../src/database/migrations/index.js';
import { revertLastMigrationLocked, runMigrationsLocked } from '../src/database/migrate.js';
import { createTestDatabase, sql, type TestDatabase } from './support/test-env.js';

// Two migrations that take long enough for concurrent runners to overlap, and that would fail
// if applied twice (CREATE TABLE without IF NOT EXISTS).
class CreateProbeTable1700000000001 implements MigrationInterface {
  name = 'CreateProbeTable1700000000001';
  async up(runner: QueryRunner): Promise<void> {
    await runner.query('SELECT pg_sleep(0.3)');
    await runner.query('CREATE TABLE probe (id int PRIMARY KEY)');
  }
  async down(runner: QueryRunner): Promise<void> {
    await runner.query('DROP TABLE probe');
  }
}
class AddProbeColumn1700000000002 implements MigrationInterface {
  name = 'AddProbeColumn1700000000002';
  async up(runner: QueryRunner): Promise<void> {
    await runner.query('ALTER TABLE probe ADD COLUMN note text');
  }
  async down(runner: QueryRunner): Promise<void> {
    await runner.query('ALTER TABLE probe DROP COLUMN note');
  }
}

const optionsFor = (
  database: TestDatabase,
  migrations?: DataSourceOptions['migrations'],
): DataSourceOptions => ({
  ...databaseOptions({ database: { url: database.url, poolSize: 2 }, role: 'all' }, APP_ENTITIES),
  ...(migrations ? { migrations } : {}),
});

describe('migrations', () => {
  const databases: TestDatabase[] = [];
  const fresh = async (): Promise<TestDatabase> => {
    const database = await createTestDatabase({ empty: true });
    databases.push(database);
    return database;
  };
  afterEach(async () => {
    await Promise.all(databases.splice(0).map((d) => d.drop()));
  });
  afterAll(async () => {
    await Promise.all(databases.map((d) => d.drop()));
  });

  it("apply leo's own migrations to an empty database, and a second run finds nothing to do", async () => {
    const database = await fresh();
    const first = await runMigrationsLocked(optionsFor(database));
    expect(first.applied).toHaveLength(MIGRATIONS.length);
    const again = await runMigrationsLocked(optionsFor(database));
    expect(again.applied).toEqual([]);
    const recorded = await sql<{ name: string }>(
      database,
      'SELECT name FROM migrations ORDER BY id',
    );
    expect(recorded.map((r) => r.name)).toEqual(MIGRATIONS.map((m) => new m().name ?? m.name));
  });

  it('are applied exactly once when several replicas start at the same moment', async () => {
    const database = await fresh();
    const migrations = [CreateProbeTable1700000000001, AddProbeColumn1700000000002];
    const reports = await Promise.all(
      Array.from({ length: 4 }, () => runMigrationsLocked(optionsFor(database, migrations))),
    );
    // One replica did the work; the others waited for the lock and found nothing pending.
    const applied = reports.map((r) => r.applied.length).sort();
    expect(applied).toEqual([0, 0, 0, 2]);
    expect(Math.max(...reports.map((r) => r.waitedForLockMs))).toBeGreaterThanOrEqual(250);
    const recorded = await sql<{ name: string }>(
      database,
      'SELECT name FROM migrations ORDER BY id',
    );
    expect(recorded.map((r) => r.name)).toEqual([
      'CreateProbeTable1700000000001',
      'AddProbeColumn1700000000002',
    ]);
    const columns = await sql<{ column_name: string }>(
      database,
      "SELECT column_name FROM information_schema.columns WHERE table_name = 'probe' ORDER BY ordinal_position",
    );
    expect(columns.map((c) => c.column_name)).toEqual(['id', 'note']);
  });

  it('revert the last migration only', async () => {
    const database = await fresh();
    const options = optionsFor(database, [
      CreateProbeTable1700000000001,
      AddProbeColumn1700000000002,
    ]);
    await runMigrationsLocked(options);
    await revertLastMigrationLocked(options);
    const recorded = await sql<{ name: string }>(database, 'SELECT name FROM migrations');
    expect(recorded.map((r) => r.name)).toEqual(['CreateProbeTable1700000000001']);
    const columns = await sql<{ column_name: string }>(
      database,
      "SELECT column_name FROM information_schema.columns WHERE table_name = 'probe'",
    );
    expect(columns.map((c) => c.column_name)).toEqual(['id']);
  });

  it('roll back a failing migration and leave earlier ones applied', async () => {
    class Broken1700000000003 implements MigrationInterface {
      name = 'Broken1700000000003';
      async up(runner: QueryRunner): Promise<void> {
        await runner.query('CREATE TABLE half_done (id int)');
        await runner.query('SELECT * FROM no_such_table');
      }
      async down(): Promise<void> {}
    }
    const database = await fresh();
    await expect(
      runMigrationsLocked(
        optionsFor(database, [CreateProbeTable1700000000001, Broken1700000000003]),
      ),
    ).rejects.toThrow(/no_such_table/);
    const tables = await sql<{ table_name: string }>(
      database,
      "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY table_name",
    );
    expect(tables.map((t) => t.table_name)).toEqual(['migrations', 'probe']);
    // The lock was released: another run can take it at once.
    const after = await runMigrationsLocked(optionsFor(database, [CreateProbeTable1700000000001]));
    expect(after.waitedForLockMs).toBeLessThan(250);
  });
});
