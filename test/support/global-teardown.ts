import pg from 'pg';
import { Redis } from 'ioredis';
import { TEST_DB_PREFIX } from './global-setup.js';

/** Drops every database of this run and its Redis keys, then stops embedded servers. */
export default async function globalTeardown(): Promise<void> {
  const runId = process.env.LEOTEST_RUN_ID;
  const services = globalThis.__leoTestServices;
  if (!runId || !services) return;

  const admin = new pg.Client({ connectionString: services.adminDatabaseUrl });
  await admin.connect();
  try {
    const { rows } = await admin.query<{ datname: string }>(
      'SELECT datname FROM pg_database WHERE datname LIKE $1',
      [`${TEST_DB_PREFIX}${runId}_%`],
    );
    for (const { datname } of rows) {
      await admin.query(`DROP DATABASE IF EXISTS ${admin.escapeIdentifier(datname)} WITH (FORCE)`);
    }
  } finally {
    await admin.end();
  }

  const redis = new Redis(services.redisUrl, { maxRetriesPerRequest: 1 });
  try {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `{leo-test-${runId}*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) await redis.unlink(...keys);
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
  await services.stop();
}
