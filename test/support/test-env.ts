import { randomBytes } from 'node:crypto';
import type { INestApplication } from '@nestjs/common';
import { Redis } from 'ioredis';
import pg from 'pg';
import { agencyUserScope } from '#agency-contract';
import { loadConfig, type ResolvedConfig } from '../../src/config/config.schema.js';
import { createApp } from '../../src/http/create-app.js';
import { redisOptions } from '../../src/queue/redis-connection.js';
import { withDatabase } from './infra.js';

function required(name: string): string {
  const value = process.env[name];
  if (!value)
    throw new Error(`${name} is not set: run the e2e tests through \`npm test\` (global setup)`);
  return value;
}

export const testRunId = (): string => required('LEOTEST_RUN_ID');
export const testRedisUrl = (): string => required('LEOTEST_REDIS_URL');
export const adminDatabaseUrl = (): string => required('LEOTEST_ADMIN_DATABASE_URL');

let counter = 0;

/** A unique name within this run: test databases, queue prefixes. */
export function uniqueName(kind: string): string {
  counter += 1;
  return `${testRunId()}_${kind}_${process.pid}_${counter}_${randomBytes(2).toString('hex')}`;
}

/** Runs `fn` on a connection to the maintenance database, as the superuser. */
export async function withAdmin<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const admin = new pg.Client({ connectionString: adminDatabaseUrl() });
  await admin.connect();
  try {
    return await fn(admin);
  } finally {
    await admin.end();
  }
}

export interface TestDatabase {
  name: string;
  url: string;
  drop(): Promise<void>;
}

/**
 * A database of its own for a test file: a copy of the run's migrated template (fast), or an
 * empty one for tests of migrations themselves.
 */
export async function createTestDatabase(options: { empty?: boolean } = {}): Promise<TestDatabase> {
  const name = `leo_test_${uniqueName(options.empty ? 'empty' : 'db')}`.toLowerCase();
  const template = required('LEOTEST_TEMPLATE_DATABASE');
  await withAdmin(async (admin) => {
    const sql = options.empty
      ? `CREATE DATABASE ${admin.escapeIdentifier(name)}`
      : `CREATE DATABASE ${admin.escapeIdentifier(name)} TEMPLATE ${admin.escapeIdentifier(template)}`;
    for (let attempt = 1; ; attempt += 1) {
      try {
        await admin.query(sql);
        return;
      } catch (error) {
        // Copies of one template made at the same moment can collide; a retry settles it.
        if (attempt >= 5 || !/being accessed by other users/.test(String(error))) throw error;
        await new Promise((r) => setTimeout(r, 100 * attempt));
      }
    }
  });
  return {
    name,
    url: withDatabase(adminDatabaseUrl(), name),
    drop: () =>
      withAdmin((admin) =>
        admin.query(`DROP DATABASE IF EXISTS ${admin.escapeIdentifier(name)} WITH (FORCE)`),
      ).then(() => undefined),
  };
}

/** The Redis key prefix (a hash tag) for one test file's queues: never shared with others. */
export function testQueuePrefix(): string {
  return `{leo-test-${uniqueName('q')}}`;
}

/** The environment a test instance of leo reads, with a fresh dev-token secret. */
export function testEnvironment(
  database: TestDatabase,
  overrides: Record<string, string> = {},
): Record<string, string> {
  return {
    NODE_ENV: 'test',
    LOG_LEVEL: 'silent',
    DATABASE_URL: database.url,
    DATABASE_POOL_SIZE: '4',
    REDIS_URL: testRedisUrl(),
    QUEUE_PREFIX: testQueuePrefix(),
    AUTH_DEV_TOKENS: 'true',
    AUTH_DEV_SECRET: randomBytes(32).toString('base64url'),
    ...overrides,
  };
}

export function testConfig(
  database: TestDatabase,
  overrides: Record<string, string> = {},
): ResolvedConfig {
  return loadConfig(testEnvironment(database, overrides)) as ResolvedConfig;
}

export interface TestApp {
  app: INestApplication;
  config: ResolvedConfig;
  database: TestDatabase;
  close(): Promise<void>;
}

/**
 * leo as it serves (same pipes, filters, guards), on its own database and queue prefix — or, to
 * run several roles side by side as separate replicas would, on another app's database (pass
 * `database`, and the same QUEUE_PREFIX in `overrides`).
 */
export async function startTestApp(
  overrides: Record<string, string> = {},
  options: { database?: TestDatabase } = {},
): Promise<TestApp> {
  const database = options.database ?? (await createTestDatabase());
  const config = testConfig(database, overrides);
  const app = await createApp(config);
  await app.init();
  return {
    app,
    config,
    database,
    async close() {
      await app.close();
      if (!options.database) await database.drop();
    },
  };
}

/** One query on a test database, on a connection of its own. */
export async function sql<T extends pg.QueryResultRow>(
  database: TestDatabase,
  text: string,
  values: unknown[] = [],
): Promise<T[]> {
  const client = new pg.Client({ connectionString: database.url });
  await client.connect();
  try {
    return (await client.query<T>(text, values)).rows;
  } finally {
    await client.end();
  }
}

/**
 * Removes the Redis users of agency credentials a test's leo issued (named under its queue
 * prefix's scope): Redis keeps users across runs, unlike a test's keys, which are its own prefix's.
 */
export async function deleteAgencyUsers(prefix: string): Promise<void> {
  const options = redisOptions(testRedisUrl());
  const redis = new Redis(options);
  try {
    const scope = agencyUserScope(prefix, options.db ?? 0);
    for (const user of (await redis.call('ACL', 'USERS')) as string[]) {
      if (user.startsWith(scope)) await redis.call('ACL', 'DELUSER', user);
    }
  } finally {
    redis.disconnect();
  }
}
