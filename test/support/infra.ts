import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { Redis } from 'ioredis';
import { startEmbeddedPostgres, type EmbeddedService } from '../../src/infra/embedded-postgres.js';
import { startEmbeddedRedis } from '../../src/infra/embedded-redis.js';

/**
 * Where the tests' Postgres and Redis come from, in order: DATABASE_URL / REDIS_URL when given;
 * else the machine's services on 127.0.0.1:5432 / 6379 when they answer; else embedded servers
 * started for this run in a temporary directory. LEOTEST_INFRA=embedded forces the last.
 */

export interface TestServices {
  /** A URL to a maintenance database on the server, for CREATE/DROP DATABASE. */
  adminDatabaseUrl: string;
  redisUrl: string;
  sources: { postgres: string; redis: string };
  stop(): Promise<void>;
}

async function postgresAnswers(url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 1_500 });
  try {
    await client.connect();
    await client.query('SELECT 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

async function redisAnswers(url: string): Promise<boolean> {
  const client = new Redis(url, {
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    connectTimeout: 1_500,
  });
  client.on('error', () => undefined);
  try {
    await client.connect();
    // Whatever listens on the port answers; ioredis types the reply as 'PONG' regardless.
    const reply: string = await client.ping();
    return reply === 'PONG';
  } catch {
    return false;
  } finally {
    client.disconnect();
  }
}

function withDatabase(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${database}`;
  return parsed.toString();
}

export async function acquireTestServices(env: NodeJS.ProcessEnv): Promise<TestServices> {
  const forceEmbedded = env.LEOTEST_INFRA === 'embedded';
  const stops: Array<() => Promise<void>> = [];
  let scratch: string | undefined;
  const scratchDir = async (): Promise<string> =>
    (scratch ??= await mkdtemp(path.join(tmpdir(), 'leo-test-')));
  const log = (): void => undefined;

  let adminDatabaseUrl: string;
  let postgresSource: string;
  if (!forceEmbedded && env.DATABASE_URL) {
    adminDatabaseUrl = withDatabase(env.DATABASE_URL, 'postgres');
    if (!(await postgresAnswers(adminDatabaseUrl))) adminDatabaseUrl = env.DATABASE_URL;
    postgresSource = 'DATABASE_URL';
  } else if (
    !forceEmbedded &&
    (await postgresAnswers('postgresql://postgres@127.0.0.1:5432/postgres'))
  ) {
    adminDatabaseUrl = 'postgresql://postgres@127.0.0.1:5432/postgres';
    postgresSource = '127.0.0.1:5432';
  } else {
    const service: EmbeddedService = await startEmbeddedPostgres({
      dir: path.join(await scratchDir(), 'postgres'),
      database: 'postgres',
      log,
    });
    stops.push(() => service.stop());
    adminDatabaseUrl = service.url;
    postgresSource = 'embedded';
  }

  let redisUrl: string;
  let redisSource: string;
  if (!forceEmbedded && env.REDIS_URL) {
    redisUrl = env.REDIS_URL;
    redisSource = 'REDIS_URL';
  } else if (!forceEmbedded && (await redisAnswers('redis://127.0.0.1:6379'))) {
    redisUrl = 'redis://127.0.0.1:6379';
    redisSource = '127.0.0.1:6379';
  } else {
    const service = await startEmbeddedRedis({ dir: path.join(await scratchDir(), 'redis'), log });
    stops.push(() => service.stop());
    redisUrl = service.url;
    redisSource = 'embedded';
  }

  return {
    adminDatabaseUrl,
    redisUrl,
    sources: { postgres: postgresSource, redis: redisSource },
    async stop() {
      for (const stop of stops.reverse()) await stop();
      if (scratch) await rm(scratch, { recursive: true, force: true });
    },
  };
}

export { withDatabase };
