import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { userInfo } from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import type { EmbeddedService } from './embedded-postgres.js';
import { commandLine, freePort, isAlive, stopChild, stopPid, waitFor } from './processes.js';

export interface EmbeddedRedisOptions {
  dir: string;
  log: (message: string) => void;
}

export class RedisServerMissingError extends Error {
  constructor(detail: string) {
    super(
      `redis-server was not found on PATH${detail}. Ways out:\n` +
        '  - install it: `sudo apt-get install redis-server` (Debian/Ubuntu) or `brew install redis` (macOS);\n' +
        '  - point leo at a Redis of your own: `REDIS_URL=redis://127.0.0.1:6379 npm start`;\n' +
        '  - or start one in Docker: `docker compose up -d redis` and set REDIS_URL=redis://127.0.0.1:6379.',
    );
    this.name = 'RedisServerMissingError';
  }
}

function which(command: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    const candidate = path.join(dir, command);
    if (dir && existsSync(candidate)) return candidate;
  }
  for (const dir of ['/usr/bin', '/usr/local/bin', '/usr/sbin', '/opt/homebrew/bin']) {
    const candidate = path.join(dir, command);
    if (existsSync(candidate)) return candidate;
  }
  return undefined;
}

/** Finds redis-server, installing Debian's package when we are root and apt-get is there. */
export function findOrInstallRedisServer(log: (m: string) => void): string {
  const found = which('redis-server');
  if (found) return found;
  const aptGet = which('apt-get');
  if (userInfo().uid !== 0 || !aptGet) {
    throw new RedisServerMissingError(
      userInfo().uid !== 0
        ? ' (not root, so leo did not install it)'
        : ' (no apt-get to install it with)',
    );
  }
  log('redis-server is missing: installing Debian package redis-server with apt-get');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const install = (): boolean =>
    spawnSync(aptGet, ['install', '-y', '--no-install-recommends', 'redis-server'], {
      stdio: 'ignore',
      env,
    }).status === 0;
  if (!install()) {
    spawnSync(aptGet, ['update'], { stdio: 'ignore', env });
    if (!install()) throw new RedisServerMissingError(' and `apt-get install redis-server` failed');
  }
  const installed = which('redis-server');
  if (!installed) throw new RedisServerMissingError(' even after installing the package');
  return installed;
}

async function stopStaleServer(pidFile: string, log: (m: string) => void): Promise<void> {
  if (!existsSync(pidFile)) return;
  const pid = Number((await readFile(pidFile, 'utf8')).trim());
  if (
    Number.isInteger(pid) &&
    pid > 0 &&
    isAlive(pid) &&
    ((await commandLine(pid)) ?? '').includes('redis-server')
  ) {
    log(`stopping a redis-server (pid ${pid}) left running by an earlier run`);
    await stopPid(pid, 'SIGTERM', 15_000);
  }
  await rm(pidFile, { force: true });
}

/**
 * Spawns redis-server on a free loopback port with append-only persistence in `dir`, so queued
 * jobs survive a restart of `npm start`. A random password guards it from other local users.
 */
export async function startEmbeddedRedis(options: EmbeddedRedisOptions): Promise<EmbeddedService> {
  const executable = findOrInstallRedisServer(options.log);
  const dir = path.resolve(options.dir);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await chmod(dir, 0o700);
  const pidFile = path.join(dir, 'redis.pid');
  await stopStaleServer(pidFile, options.log);

  const port = await freePort();
  const password = randomBytes(18).toString('base64url');
  // The password goes in a file only its owner reads, not on the command line (which every local
  // user can read in `ps`); the configuration file is the first argument, the rest follow it.
  const secrets = path.join(dir, 'secrets.conf');
  await writeFile(secrets, `requirepass ${password}\n`, { mode: 0o600 });
  await chmod(secrets, 0o600);
  const child = spawn(
    executable,
    [
      secrets,
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--dir',
      dir,
      '--appendonly',
      'yes',
      '--save',
      '',
      '--pidfile',
      pidFile,
      '--logfile',
      path.join(dir, 'redis.log'),
      '--daemonize',
      'no',
    ],
    // detached: the terminal's Ctrl-C must not stop Redis before leo has finished its jobs.
    { detached: true, stdio: 'ignore' },
  );
  let exited: string | undefined;
  child.once('exit', (code, signal) => {
    exited = `redis-server exited (code ${code ?? 'none'}, signal ${signal ?? 'none'}); see ${path.join(dir, 'redis.log')}`;
  });
  child.once('error', (error) => {
    exited = `redis-server could not start: ${error.message}`;
  });

  const url = `redis://:${password}@127.0.0.1:${port}`;
  await waitFor(
    'embedded Redis',
    async () => {
      const client = new Redis(url, {
        lazyConnect: true,
        maxRetriesPerRequest: 0,
        retryStrategy: () => null,
      });
      client.on('error', () => undefined); // refused until it listens: that is what we wait out
      try {
        await client.connect();
        // Whatever listens on the port answers; ioredis types the reply as 'PONG' regardless.
        const reply: string = await client.ping();
        return reply === 'PONG';
      } finally {
        client.disconnect();
      }
    },
    15_000,
    () => exited,
  );

  return {
    url,
    dataDir: dir,
    // SIGTERM: Redis flushes the append-only file and exits.
    stop: () => stopChild(child, 'SIGTERM', 15_000),
  };
}
