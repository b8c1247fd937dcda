import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, isAlive } from '../../src/infra/processes.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const main = path.join(root, 'dist/src/main.js');

/** A leo started from the build as its own process, in one role, as a replica would run. */
export interface LeoProcess {
  role: string;
  port: number;
  child: ChildProcess;
  /** Its log lines (JSON) so far. */
  lines: string[];
  stop(): Promise<void>;
}

async function isReady(port: number): Promise<boolean> {
  try {
    const response = await fetch(`http://127.0.0.1:${String(port)}/health/ready`);
    return response.status === 200;
  } catch {
    return false;
  }
}

/**
 * Starts `node dist/src/main.js` with exactly `env` (plus PATH and HOME) and waits until its
 * readiness endpoint answers 200; rejects with its output if it exits first.
 */
export async function startLeoProcess(
  env: Record<string, string>,
  timeoutMs = 45_000,
): Promise<LeoProcess> {
  const port = await freePort();
  const child = spawn(process.execPath, [main], {
    cwd: root,
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: process.env.HOME ?? '/tmp',
      ...env,
      PORT: String(port),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  let buffer = '';
  child.stdout.on('data', (chunk: Buffer) => {
    buffer += chunk.toString();
    const parts = buffer.split('\n');
    buffer = parts.pop() ?? '';
    lines.push(...parts);
  });
  child.stderr.on('data', (chunk: Buffer) => {
    lines.push(chunk.toString());
  });
  const exited = new Promise<number | null>((resolve) => {
    child.once('exit', (code) => {
      resolve(code);
    });
  });
  const leo: LeoProcess = {
    role: env.LEO_ROLE ?? 'all',
    port,
    child,
    lines,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
    },
  };
  const deadline = Date.now() + timeoutMs;
  while (!(await isReady(port))) {
    if (child.exitCode !== null) {
      throw new Error(
        `leo (${leo.role}) exited with ${String(child.exitCode)}:\n${lines.join('\n')}`,
      );
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(
        `leo (${leo.role}) was not ready in ${String(timeoutMs)} ms:\n${lines.join('\n')}`,
      );
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return leo;
}

/**
 * Kills the Postgres and Redis that a leo started without DATABASE_URL and REDIS_URL (as
 * `npm start` does) left running in `dataDir`: after a test that failed half-way, or a leo killed
 * with SIGKILL. Nothing happens when they stopped with it.
 */
export function killLeftoverServices(dataDir: string): void {
  for (const file of ['postgres/postmaster.pid', 'redis/redis.pid']) {
    const full = path.join(dataDir, file);
    if (!existsSync(full)) continue;
    const pid = Number(readFileSync(full, 'utf8').split('\n')[0]);
    if (pid > 0 && isAlive(pid)) process.kill(pid, 'SIGKILL');
  }
}
