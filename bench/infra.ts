import { readFileSync } from 'node:fs';
import { chmod, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { Redis } from 'ioredis';
import { startEmbeddedPostgres, type EmbeddedService } from '../src/infra/embedded-postgres.js';
import { startEmbeddedRedis } from '../src/infra/embedded-redis.js';
import { commandLine, isAlive, stopPid } from '../src/infra/processes.js';

/**
 * The benchmark's own infrastructure: an embedded Postgres cluster and a redis-server, on free
 * loopback ports with their data in a fresh temporary directory, started through leo's own
 * src/infra code (so they run as `npm start` runs them) and torn down afterwards. Nothing else
 * runs on them, so their CPU is the benchmark's.
 *
 * The directory holds `bench.pid` (the owning bench process) and `leo.pids`; a bench that was
 * killed with SIGKILL leaves them behind, and the next bench stops what they name and removes
 * the directory before starting (see `cleanUpStale`).
 */

const DIR_PREFIX = 'leo-bench-';

export interface BenchInfra {
  dir: string;
  /** A URL of the cluster's maintenance database `postgres` (superuser). */
  postgresAdminUrl: string;
  redisUrl: string;
  /** The postmaster's pid: every backend is its child. */
  postgresPid(): number;
  redisPid(): number;
  /** A URL of another database on the same cluster. */
  databaseUrl(database: string): string;
  /** Creates `database`, optionally as a file copy of `template`. */
  createDatabase(database: string, template?: string): Promise<string>;
  dropDatabase(database: string): Promise<void>;
  /** Empties Redis (between runs and before the baseline). */
  flushRedis(): Promise<void>;
  /** Records a leo process, so a later bench can stop it if this one is killed. */
  registerPid(pid: number): Promise<void>;
  postgresSettings(): Promise<Record<string, string>>;
  stop(): Promise<void>;
}

function readPidFile(file: string): number | undefined {
  try {
    const pid = Number(readFileSync(file, 'utf8').split('\n')[0]?.trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

async function stopIfItIs(pid: number | undefined, name: string, signal: NodeJS.Signals) {
  if (pid === undefined || !isAlive(pid)) return;
  if (!((await commandLine(pid)) ?? '').includes(name)) return;
  await stopPid(pid, signal, 15_000);
}

/** Stops what a killed bench left running (its pid files say what) and removes its directory. */
export async function cleanUpStale(log: (m: string) => void): Promise<void> {
  const base = tmpdir();
  for (const entry of await readdir(base)) {
    if (!entry.startsWith(DIR_PREFIX)) continue;
    const dir = path.join(base, entry);
    // Only a directory a bench made: its bench.pid says so, and it is this user's. Anything else
    // whose name happens to begin the same is someone else's, and left alone.
    const info = await stat(dir).catch(() => undefined);
    if (!info?.isDirectory() || info.uid !== process.getuid?.()) continue;
    const owner = readPidFile(path.join(dir, 'bench.pid'));
    if (owner === undefined || isAlive(owner)) continue;
    log(`cleaning up ${dir}, left behind by a bench that did not finish`);
    let leoPids: number[] = [];
    try {
      leoPids = (await readFile(path.join(dir, 'leo.pids'), 'utf8'))
        .split('\n')
        .filter(Boolean)
        .map(Number);
    } catch {
      // none started
    }
    for (const pid of leoPids) await stopIfItIs(pid, 'node', 'SIGKILL');
    await stopIfItIs(readPidFile(path.join(dir, 'redis', 'redis.pid')), 'redis-server', 'SIGTERM');
    await stopIfItIs(
      readPidFile(path.join(dir, 'postgres', 'postmaster.pid')),
      'postgres',
      'SIGINT',
    );
    await rm(dir, { recursive: true, force: true });
  }
}

export async function startBenchInfra(
  log: (m: string) => void,
  options: { statements?: boolean } = {},
): Promise<BenchInfra> {
  await cleanUpStale(log);
  const dir = await mkdtemp(path.join(tmpdir(), DIR_PREFIX));
  // The postgres system user (Postgres runs as it when we are root) must reach its data dir.
  await chmod(dir, 0o711);
  await writeFile(path.join(dir, 'bench.pid'), String(process.pid));
  const services: EmbeddedService[] = [];
  const stop = async (): Promise<void> => {
    for (const service of services.reverse()) await service.stop().catch(() => undefined);
    services.length = 0;
    await rm(dir, { recursive: true, force: true });
  };
  try {
    const postgres = await startEmbeddedPostgres({
      dir: path.join(dir, 'postgres'),
      database: 'postgres',
      log,
      ...(options.statements
        ? {
            settings: {
              shared_preload_libraries: 'pg_stat_statements',
              // Planning time apart from execution: a statement planned anew at every call
              // shows here (the commit statements are custom-planned).
              'pg_stat_statements.track_planning': 'on',
            },
          }
        : {}),
    });
    services.push(postgres);
    const redis = await startEmbeddedRedis({ dir: path.join(dir, 'redis'), log });
    services.push(redis);
    const postmasterPidFile = path.join(postgres.dataDir, 'postmaster.pid');
    const redisPidFile = path.join(dir, 'redis', 'redis.pid');
    const pidOf = (file: string, what: string): number => {
      const pid = readPidFile(file);
      if (pid === undefined) throw new Error(`${what} has no pid file at ${file}`);
      return pid;
    };
    const databaseUrl = (database: string): string => {
      const url = new URL(postgres.url);
      url.pathname = `/${database}`;
      return url.toString();
    };
    const admin = async <T>(work: (client: pg.Client) => Promise<T>): Promise<T> => {
      const client = new pg.Client({ connectionString: postgres.url });
      await client.connect();
      try {
        return await work(client);
      } finally {
        await client.end();
      }
    };
    return {
      dir,
      postgresAdminUrl: postgres.url,
      redisUrl: redis.url,
      postgresPid: () => pidOf(postmasterPidFile, 'Postgres'),
      redisPid: () => pidOf(redisPidFile, 'redis-server'),
      databaseUrl,
      async createDatabase(database, template) {
        await admin(async (client) => {
          const name = client.escapeIdentifier(database);
          await client.query(
            template
              ? `CREATE DATABASE ${name} TEMPLATE ${client.escapeIdentifier(template)} STRATEGY FILE_COPY`
              : `CREATE DATABASE ${name}`,
          );
        });
        return databaseUrl(database);
      },
      async dropDatabase(database) {
        await admin(async (client) => {
          await client.query(
            `DROP DATABASE IF EXISTS ${client.escapeIdentifier(database)} WITH (FORCE)`,
          );
        });
      },
      async flushRedis() {
        const client = new Redis(redis.url, { maxRetriesPerRequest: 1 });
        try {
          await client.flushall();
        } finally {
          client.disconnect();
        }
      },
      async registerPid(pid) {
        await writeFile(path.join(dir, 'leo.pids'), `${pid}\n`, { flag: 'a' });
      },
      async postgresSettings() {
        return admin(async (client) => {
          const rows = await client.query<{ name: string; setting: string }>(
            `SELECT name, setting FROM pg_settings WHERE name = ANY($1::text[])`,
            [
              [
                'server_version',
                'shared_buffers',
                'synchronous_commit',
                'fsync',
                'max_connections',
                'wal_level',
                'max_wal_size',
              ],
            ],
          );
          return Object.fromEntries(rows.rows.map((r) => [r.name, r.setting]));
        });
      },
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

/**
 * On SIGINT or SIGTERM, runs `stop` (leo, Postgres and Redis of the bench's own cluster) and
 * exits 130; a second signal exits at once (the next bench removes what is left, see
 * cleanUpStale).
 */
export function stopOnSignal(stop: () => Promise<void>, log: (m: string) => void): void {
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stopping) {
      log(`${signal} again: exiting now (the next bench cleans up what is left)`);
      process.exit(130);
    }
    stopping = true;
    log(`${signal}: stopping leo, Postgres and Redis`);
    void stop()
      .catch(() => undefined)
      .finally(() => process.exit(130));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
}
