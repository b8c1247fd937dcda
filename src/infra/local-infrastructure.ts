import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { AppConfig, ResolvedConfig } from '../config/config.schema.js';
import { startEmbeddedPostgres, type EmbeddedService } from './embedded-postgres.js';
import { startEmbeddedRedis } from './embedded-redis.js';
import { isAlive } from './processes.js';

export interface LocalInfrastructure {
  config: ResolvedConfig;
  /** What was started here (empty when DATABASE_URL and REDIS_URL were both given). */
  started: string[];
  stop(): Promise<void>;
}

/** One leo per data directory: two would fight over the embedded servers. */
async function lockDataDir(dataDir: string): Promise<() => Promise<void>> {
  const lockFile = path.join(dataDir, 'leo.pid');
  if (existsSync(lockFile)) {
    const pid = Number((await readFile(lockFile, 'utf8')).trim());
    if (Number.isInteger(pid) && pid !== process.pid && isAlive(pid)) {
      throw new Error(
        `Another leo (pid ${pid}) is running with the data directory ${dataDir}. Stop it, or set LEO_DATA_DIR to another directory.`,
      );
    }
  }
  await writeFile(lockFile, String(process.pid));
  return () => rm(lockFile, { force: true });
}

async function devSecret(dataDir: string): Promise<string> {
  const file = path.join(dataDir, 'dev-auth-secret');
  if (existsSync(file)) return (await readFile(file, 'utf8')).trim();
  const secret = randomBytes(32).toString('base64url');
  await writeFile(file, secret, { mode: 0o600 });
  return secret;
}

/**
 * Resolves the infrastructure leo runs on: the configured DATABASE_URL and REDIS_URL, or, when
 * absent (never in production: the schema refuses it), an embedded Postgres and a spawned
 * redis-server with their data under LEO_DATA_DIR. Stops what it started in reverse order.
 */
export async function startLocalInfrastructure(
  config: AppConfig,
  log: (message: string) => void,
  want: { redis: boolean } = { redis: true },
): Promise<LocalInfrastructure> {
  const startRedis = want.redis && !config.redis.url;
  const needsDataDir =
    !config.database.url || startRedis || (config.auth.devTokens && !config.auth.devSecret);
  const dataDir = path.resolve(config.dataDir);
  const services: Array<{ name: string; service: EmbeddedService }> = [];
  let unlock: (() => Promise<void>) | undefined;

  const stop = async (): Promise<void> => {
    for (const { service } of services.reverse()) await service.stop();
    services.length = 0;
    await unlock?.();
  };

  try {
    if (needsDataDir) {
      // Personal data lives here (the database, the queues): the owner's alone, also when an
      // earlier version made it with looser rights. As root, the embedded Postgres runs as the
      // postgres user, who must pass through (not list) it; every file in it is the owner's.
      const mode = process.getuid?.() === 0 ? 0o711 : 0o700;
      await mkdir(dataDir, { recursive: true, mode });
      await chmod(dataDir, mode);
      unlock = await lockDataDir(dataDir);
    }
    let databaseUrl = config.database.url;
    if (!databaseUrl) {
      const service = await startEmbeddedPostgres({
        dir: path.join(dataDir, 'postgres'),
        database: 'leo',
        log,
      });
      services.push({ name: 'postgres', service });
      databaseUrl = service.url;
      log(`embedded Postgres ready (data in ${service.dataDir})`);
    }
    let redisUrl = config.redis.url ?? '';
    if (startRedis) {
      const service = await startEmbeddedRedis({ dir: path.join(dataDir, 'redis'), log });
      services.push({ name: 'redis', service });
      redisUrl = service.url;
      log(`redis-server ready (data in ${service.dataDir})`);
    }
    const secret = config.auth.devTokens
      ? (config.auth.devSecret ?? (await devSecret(dataDir)))
      : undefined;
    return {
      config: {
        ...config,
        database: { ...config.database, url: databaseUrl },
        redis: { url: redisUrl },
        auth: { ...config.auth, devSecret: secret },
      },
      started: services.map((s) => s.name),
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}
