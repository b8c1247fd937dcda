import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { DataSource } from 'typeorm';
import { APP_ENTITIES } from '../../src/app.entities.js';
import {
  CatalogueSeedService,
  DEFAULT_SEED_DIR,
} from '../../src/definitions/catalogue-seed.service.js';
import { DefinitionsRepository } from '../../src/definitions/definitions.repository.js';
import { runMigrationsLocked } from '../../src/database/migrate.js';
import { databaseOptions } from '../../src/database/database.options.js';
import { acquireTestServices, withDatabase, type TestServices } from './infra.js';

/** Test databases are named leo_test_<run>_…; a run id starts with its start time in base 36. */
export const TEST_DB_PREFIX = 'leo_test_';
const STALE_AFTER_MS = 6 * 60 * 60 * 1000;

declare global {
  var __leoTestServices: TestServices | undefined;
}

/** Drops test databases left by runs that crashed hours ago (never a live run's). */
async function dropStaleDatabases(admin: pg.Client): Promise<void> {
  const { rows } = await admin.query<{ datname: string }>(
    "SELECT datname FROM pg_database WHERE datname LIKE 'leo\\_test\\_%'",
  );
  for (const { datname } of rows) {
    const started = Number.parseInt(datname.slice(TEST_DB_PREFIX.length).split('_')[0] ?? '', 36);
    if (Number.isFinite(started) && Date.now() - started > STALE_AFTER_MS) {
      await admin
        .query(`DROP DATABASE IF EXISTS ${admin.escapeIdentifier(datname)} WITH (FORCE)`)
        .catch(() => undefined);
    }
  }
}

export default async function globalSetup(): Promise<void> {
  const services = await acquireTestServices(process.env);
  globalThis.__leoTestServices = services;
  const runId = `${Date.now().toString(36)}_${randomBytes(3).toString('hex')}`;
  const template = `${TEST_DB_PREFIX}${runId}_template`;

  const admin = new pg.Client({ connectionString: services.adminDatabaseUrl });
  await admin.connect();
  try {
    await dropStaleDatabases(admin);
    await admin.query(`CREATE DATABASE ${admin.escapeIdentifier(template)}`);
  } finally {
    await admin.end();
  }
  const templateOptions = databaseOptions(
    {
      database: { url: withDatabase(services.adminDatabaseUrl, template), poolSize: 2 },
      role: 'all',
    },
    APP_ENTITIES,
  );
  await runMigrationsLocked(templateOptions);
  // Seed the template too, so each test database starts as a started leo leaves it.
  const dataSource = new DataSource(templateOptions);
  await dataSource.initialize();
  try {
    await new CatalogueSeedService(new DefinitionsRepository(dataSource)).seed(DEFAULT_SEED_DIR);
  } finally {
    await dataSource.destroy();
  }

  // Read by test/support/test-env.ts in every worker (workers inherit the environment).
  process.env.LEOTEST_RUN_ID = runId;
  process.env.LEOTEST_ADMIN_DATABASE_URL = services.adminDatabaseUrl;
  process.env.LEOTEST_TEMPLATE_DATABASE = template;
  process.env.LEOTEST_REDIS_URL = services.redisUrl;
  if (process.env.LEOTEST_VERBOSE) {
    process.stderr.write(
      `\ntest services: postgres ${services.sources.postgres}, redis ${services.sources.redis}\n`,
    );
  }
}
