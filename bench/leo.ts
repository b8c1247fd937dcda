import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, sleep, stopChild } from '../src/infra/processes.js';
import { memoryOf } from './proc.js';

/**
 * leo as the benchmark runs it: child processes of `dist/src/main.js` (the production entry) in
 * one of two topologies, on the bench's own Postgres and Redis, with the mock agencies answering
 * at once. NODE_ENV=production needs an OpenID Connect issuer, so the processes run as
 * development with dev tokens and a fixed secret; LOG_LEVEL=warn keeps logging out of the figure.
 */

export type Topology = 'all' | 'split' | 'api';
export type LeoRole = 'all' | 'api' | 'engine' | 'adapters';

export const ROLES_OF: Record<Topology, readonly LeoRole[]> = {
  all: ['all'],
  split: ['api', 'engine', 'adapters'],
  /** The API alone: what the citizen's reads need (bench/read-latency.ts). */
  api: ['api'],
};

/** Fixed so that runs are alike; dev tokens only exist on the bench's own loopback servers. */
export const BENCH_DEV_SECRET = 'leo-bench-dev-secret-only-for-loopback-benchmarks';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const LEO_ENTRY = path.join(REPO_ROOT, 'dist', 'src', 'main.js');

export interface LeoProcess {
  role: LeoRole;
  pid: number;
  port: number;
  url: string;
  logFile: string;
  child: ChildProcess;
}

export interface Leo {
  processes: LeoProcess[];
  /** The process that serves the citizen API. */
  apiUrl: string;
  /** Peak and current RSS of each process, read now (call before stop). */
  memory(): Array<{ role: LeoRole; pid: number; peakRssMiB: number; rssMiB: number }>;
  stop(): Promise<void>;
}

export interface LeoOptions {
  topology: Topology;
  databaseUrl: string;
  redisUrl: string;
  logDir: string;
  /** The script each process runs; leo's production entry unless overridden. */
  entry?: string;
  /** Extra environment (e.g. DATABASE_POOL_SIZE). */
  env?: Record<string, string>;
  /** Write a V8 CPU profile of each leo process into this directory (`--cpu-prof`). */
  profileDir?: string;
  onSpawn?: (pid: number) => Promise<void>;
  log: (message: string) => void;
}

/** The environment of a leo process: built from nothing, so no stray LEO_/AUTH_ variable leaks in. */
export function leoEnvironment(
  role: LeoRole,
  port: number,
  options: Pick<LeoOptions, 'databaseUrl' | 'redisUrl' | 'logDir' | 'env'>,
): Record<string, string> {
  return {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: process.env.HOME ?? '/tmp',
    NODE_ENV: 'development',
    LEO_ROLE: role,
    HOST: '127.0.0.1',
    PORT: String(port),
    DATABASE_URL: options.databaseUrl,
    REDIS_URL: options.redisUrl,
    LEO_DATA_DIR: path.join(options.logDir, 'leo-data'),
    AUTH_DEV_TOKENS: 'true',
    AUTH_DEV_SECRET: BENCH_DEV_SECRET,
    LOG_LEVEL: 'warn',
    MOCK_AGENCY_LATENCY_MS: '0',
    MOCK_AGENCY_FAILURE_RATE: '0',
    MOCK_DECISION_DELAY_MS: '0',
    MOCK_REJECTION_RATE: '0',
    ...options.env,
  };
}

async function tail(file: string, lines = 20): Promise<string> {
  try {
    return (await readFile(file, 'utf8')).trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

async function waitReady(proc: LeoProcess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (proc.child.exitCode !== null || proc.child.signalCode !== null) {
      throw new Error(
        `leo (${proc.role}) exited during start-up (code ${String(proc.child.exitCode)}); last log lines:\n${await tail(proc.logFile)}`,
      );
    }
    try {
      const response = await fetch(`${proc.url}/health/ready`, {
        signal: AbortSignal.timeout(2_000),
      });
      await response.arrayBuffer();
      if (response.ok) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      throw new Error(
        `leo (${proc.role}) not ready after ${timeoutMs} ms; last log lines:\n${await tail(proc.logFile)}`,
      );
    }
    await sleep(100);
  }
}

/** Starts the topology's processes at once (migrations run under an advisory lock) and waits for each. */
export async function startLeo(options: LeoOptions): Promise<Leo> {
  const processes: LeoProcess[] = [];
  const stop = async (): Promise<void> => {
    // SIGTERM: leo drains and exits (SHUTDOWN_TIMEOUT_MS, 10 s by default); killed after 20 s.
    await Promise.all(processes.map((p) => stopChild(p.child, 'SIGTERM', 20_000)));
  };
  try {
    for (const role of ROLES_OF[options.topology]) {
      const port = await freePort();
      const logFile = path.join(options.logDir, `leo-${role}-${port}.log`);
      const out = createWriteStream(logFile, { flags: 'a' });
      const profile = options.profileDir
        ? [
            '--cpu-prof',
            `--cpu-prof-dir=${options.profileDir}`,
            `--cpu-prof-name=leo-${role}-${port}.cpuprofile`,
          ]
        : [];
      const child = spawn(
        process.execPath,
        [...profile, '--enable-source-maps', options.entry ?? LEO_ENTRY],
        {
          cwd: REPO_ROOT,
          env: leoEnvironment(role, port, options),
          // Its own process group: a Ctrl-C at the terminal reaches the bench, which stops leo
          // first and the servers after.
          detached: true,
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      child.stdout.pipe(out);
      child.stderr.pipe(out);
      if (child.pid === undefined) throw new Error(`could not start leo (${role})`);
      await options.onSpawn?.(child.pid);
      processes.push({
        role,
        pid: child.pid,
        port,
        url: `http://127.0.0.1:${port}`,
        logFile,
        child,
      });
    }
    await Promise.all(processes.map((p) => waitReady(p, 90_000)));
  } catch (error) {
    await stop();
    throw error;
  }
  const api = processes.find((p) => p.role === 'api' || p.role === 'all');
  if (!api) throw new Error('no process serves the API');
  options.log(
    `leo ready (${processes.map((p) => `${p.role} pid ${p.pid} :${p.port}`).join(', ')})`,
  );
  return {
    processes,
    apiUrl: api.url,
    memory: () =>
      processes.map((p) => ({
        role: p.role,
        pid: p.pid,
        ...(memoryOf(p.pid) ?? { peakRssMiB: NaN, rssMiB: NaN }),
      })),
    stop,
  };
}
