import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, isAlive, sleep } from '../src/infra/processes.js';
import { killLeftoverServices } from './support/leo-process.js';
import { createTestDatabase, testRedisUrl, type TestDatabase } from './support/test-env.js';

/**
 * The README's promise, tested as a newcomer meets it: the built service started with no
 * DATABASE_URL or REDIS_URL brings up its own Postgres and Redis, serves, stops cleanly on a
 * signal, reuses its data on the next start, and cleans up after a run that was killed.
 */

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const main = path.join(root, 'dist/src/main.js');

interface Running {
  child: ChildProcess;
  port: number;
  lines: string[];
  stderr: string[];
  exited: Promise<number | null>;
}

function baseEnv(extra: Record<string, string>): Record<string, string> {
  // Only what a fresh shell has: nothing of the test run's own configuration leaks in.
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: process.env.HOME ?? '/tmp',
  };
  return { ...env, LOG_LEVEL: 'info', ...extra };
}

const runs: Running[] = [];

afterAll(() => {
  // A failed expectation must not leave a leo running.
  for (const run of runs)
    if (run.child.exitCode === null && run.child.signalCode === null) run.child.kill('SIGKILL');
});

async function start(extra: Record<string, string>): Promise<Running> {
  const port = await freePort();
  const child = spawn(process.execPath, [main], {
    cwd: root,
    env: baseEnv({ PORT: String(port), ...extra }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  const stderr: string[] = [];
  let buffer = '';
  child.stdout.on('data', (chunk: Buffer) => {
    buffer += chunk.toString();
    const parts = buffer.split('\n');
    buffer = parts.pop() ?? '';
    lines.push(...parts);
  });
  child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk.toString()));
  const exited = new Promise<number | null>((resolve) => {
    child.once('exit', (code) => {
      resolve(code);
    });
  });
  const run = { child, port, lines, stderr, exited };
  runs.push(run);
  return run;
}

async function ready(run: Running, timeoutMs = 45_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (run.child.exitCode !== null) {
      throw new Error(
        `leo exited with ${run.child.exitCode}: ${run.stderr.join('')}${run.lines.join('\n')}`,
      );
    }
    try {
      const response = await fetch(`http://127.0.0.1:${run.port}/health/ready`);
      if (response.status === 200) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline)
      throw new Error(`not ready in ${timeoutMs} ms:\n${run.lines.join('\n')}`);
    await sleep(100);
  }
}

const logged = (run: Running, text: string): boolean => run.lines.some((l) => l.includes(text));

function pidIn(file: string): number {
  return Number(readFileSync(file, 'utf8').split('\n')[0]);
}

async function exitWithin(run: Running, ms: number): Promise<number | null> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      reject(new Error(`still running after ${ms} ms`));
    }, ms);
  });
  try {
    return await Promise.race([run.exited, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

describe('npm start with embedded infrastructure', () => {
  let dataDir: string;
  beforeAll(async () => {
    dataDir = await mkdtemp(path.join(tmpdir(), 'leo-start-'));
    // As root, Postgres runs as the postgres user, who must be able to enter the directory.
    await chmod(dataDir, 0o755);
  });
  afterAll(async () => {
    // Leave nothing running even if a test failed half-way.
    killLeftoverServices(dataDir);
    await rm(dataDir, { recursive: true, force: true });
  });

  it('starts its own Postgres and Redis, serves, and stops them on Ctrl-C', async () => {
    const run = await start({ LEO_DATA_DIR: dataDir });
    await ready(run);
    expect(logged(run, 'initialising a new Postgres cluster')).toBe(true);
    const readyLine = run.lines.find((l) => l.includes('leo is ready'));
    expect(readyLine).toBeDefined();
    expect(JSON.parse(readyLine ?? '{}')).toMatchObject({
      embedded: ['postgres', 'redis'],
      devTokens: true,
    });
    expect(readyLine).toContain(`/docs`);
    // It says how to attach an agency's adapter: where Redis is, never its password.
    const attach = run.lines.find((l) => l.includes("to attach an agency's adapter"));
    expect(JSON.parse(attach ?? '{}')).toMatchObject({
      redis: expect.stringMatching(/^127\.0\.0\.1:\d+$/),
      prefix: expect.any(String),
    });

    const docs = await fetch(`http://127.0.0.1:${run.port}/docs`);
    expect(docs.status).toBe(200);
    const token = await fetch(`http://127.0.0.1:${run.port}/v1/dev/token`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ role: 'admin' }),
    });
    expect(token.status).toBe(200);

    const postgresPid = pidIn(path.join(dataDir, 'postgres/postmaster.pid'));
    const redisPid = pidIn(path.join(dataDir, 'redis/redis.pid'));
    expect(isAlive(postgresPid)).toBe(true);
    expect(isAlive(redisPid)).toBe(true);

    // The data directory is no one else's to read (it was made 0755 above), nor Redis' data and
    // secrets; Redis' password is in a file of its own, not on its command line (which any local
    // user can read in ps until Redis rewrites its title, so the title cannot show it either way).
    const others = (file: string): number => statSync(path.join(dataDir, file)).mode & 0o077;
    expect(others('.')).toBe(process.getuid?.() === 0 ? 0o011 : 0);
    expect(others('redis')).toBe(0);
    expect(others('redis/secrets.conf')).toBe(0);
    const password = /requirepass (\S+)/.exec(
      readFileSync(path.join(dataDir, 'redis/secrets.conf'), 'utf8'),
    )?.[1];
    expect(password).toMatch(/^[A-Za-z0-9_-]{24}$/);

    run.child.kill('SIGINT');
    await expect(exitWithin(run, 30_000)).resolves.toBe(0);
    expect(logged(run, 'stopped')).toBe(true);
    expect(isAlive(postgresPid)).toBe(false);
    expect(isAlive(redisPid)).toBe(false);
    expect(existsSync(path.join(dataDir, 'leo.pid'))).toBe(false);
    // Nothing personal and nothing secret in what it printed.
    const output = run.lines.join('\n');
    expect(output).not.toContain(readFileSync(path.join(dataDir, 'dev-auth-secret'), 'utf8'));
    expect(output).not.toContain(readFileSync(path.join(dataDir, 'postgres.password'), 'utf8'));
  });

  it('reuses its data on the next start: no new cluster, the same dev signing secret', async () => {
    const secret = readFileSync(path.join(dataDir, 'dev-auth-secret'), 'utf8');
    const run = await start({ LEO_DATA_DIR: dataDir });
    await ready(run);
    expect(logged(run, 'initialising a new Postgres cluster')).toBe(false);
    expect(readFileSync(path.join(dataDir, 'dev-auth-secret'), 'utf8')).toBe(secret);
    run.child.kill('SIGTERM');
    await expect(exitWithin(run, 30_000)).resolves.toBe(0);
  });

  it('cleans up the Postgres and Redis a killed run left behind', async () => {
    const killed = await start({ LEO_DATA_DIR: dataDir });
    await ready(killed);
    const postgresPid = pidIn(path.join(dataDir, 'postgres/postmaster.pid'));
    const redisPid = pidIn(path.join(dataDir, 'redis/redis.pid'));
    killed.child.kill('SIGKILL');
    await killed.exited;
    expect(isAlive(postgresPid)).toBe(true); // orphaned, as after a crash

    const run = await start({ LEO_DATA_DIR: dataDir });
    await ready(run);
    expect(logged(run, `stopping a Postgres (pid ${postgresPid}) left running`)).toBe(true);
    expect(logged(run, `stopping a redis-server (pid ${redisPid}) left running`)).toBe(true);
    expect(isAlive(postgresPid)).toBe(false);
    run.child.kill('SIGINT');
    await expect(exitWithin(run, 30_000)).resolves.toBe(0);
  });

  it('refuses a second leo on the same data directory', async () => {
    const first = await start({ LEO_DATA_DIR: dataDir });
    await ready(first);
    const second = await start({ LEO_DATA_DIR: dataDir });
    await expect(exitWithin(second, 30_000)).resolves.toBe(1);
    expect(second.lines.join('\n')).toMatch(
      /Another leo \(pid \d+\) is running with the data directory/,
    );
    await ready(first, 5_000); // undisturbed
    first.child.kill('SIGINT');
    await expect(exitWithin(first, 30_000)).resolves.toBe(0);
  });
});

describe('npm start with configured infrastructure', () => {
  let database: TestDatabase;
  beforeAll(async () => {
    database = await createTestDatabase();
  });
  afterAll(async () => {
    await database.drop();
  });

  it('starts nothing of its own when DATABASE_URL and REDIS_URL are given', async () => {
    const dataDir = path.join(tmpdir(), `leo-unused-${process.pid}`);
    const run = await start({
      DATABASE_URL: database.url,
      REDIS_URL: testRedisUrl(),
      QUEUE_PREFIX: `{leo-test-${process.env.LEOTEST_RUN_ID ?? 'x'}-start}`,
      AUTH_DEV_TOKENS: 'true',
      AUTH_DEV_SECRET: 'a-test-secret-that-is-long-enough-000000',
      LEO_DATA_DIR: dataDir,
      LEO_ROLE: 'engine',
    });
    await ready(run);
    const readyLine = JSON.parse(
      run.lines.find((l) => l.includes('leo is ready')) ?? '{}',
    ) as Record<string, unknown>;
    expect(readyLine).toMatchObject({ embedded: [], role: 'engine' });
    expect(existsSync(dataDir)).toBe(false);
    // The engine role serves health but not the API.
    expect((await fetch(`http://127.0.0.1:${run.port}/v1/me`)).status).toBe(404);
    run.child.kill('SIGTERM');
    await expect(exitWithin(run, 30_000)).resolves.toBe(0);
  });

  it('on SIGTERM fails readiness first, keeps serving through the drain, then exits cleanly', async () => {
    const run = await start({
      DATABASE_URL: database.url,
      REDIS_URL: testRedisUrl(),
      QUEUE_PREFIX: `{leo-test-${process.env.LEOTEST_RUN_ID ?? 'x'}-drain}`,
      AUTH_DEV_TOKENS: 'true',
      AUTH_DEV_SECRET: 'a-test-secret-that-is-long-enough-000000',
      LEO_ROLE: 'api',
      SHUTDOWN_DRAIN_MS: '1500',
    });
    await ready(run);
    run.child.kill('SIGTERM');
    await sleep(300);
    const draining = await fetch(`http://127.0.0.1:${run.port}/health/ready`);
    expect(draining.status).toBe(503);
    expect(((await draining.json()) as { status: string }).status).toBe('shutting_down');
    // Still serving while draining.
    expect((await fetch(`http://127.0.0.1:${run.port}/health/live`)).status).toBe(200);
    await expect(exitWithin(run, 30_000)).resolves.toBe(0);
  });

  it('stops at once with a message naming each bad variable', async () => {
    const run = await start({ PORT: 'x', LEO_ROLE: 'worker', DATABASE_URL: database.url });
    // start() set PORT itself; the bad value above wins because it comes later.
    await expect(exitWithin(run, 15_000)).resolves.toBe(1);
    const message = run.stderr.join('');
    expect(message).toContain('PORT: must be an integer number');
    expect(message).toContain('LEO_ROLE: must be one of the following values');
    expect(message).toContain('README');
  });
});
