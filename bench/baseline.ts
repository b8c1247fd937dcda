import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { stopChild } from '../src/infra/processes.js';
import { cpuBetween, sampleCpu, type CpuGroup } from './proc.js';

/**
 * Runs the transport baseline (baseline-dag.ts) in its own node process on the bench's Redis and
 * measures it as leo is measured: warm-up, then a burst; cases/s over first enqueue → last
 * completion, CPU of the node process and of redis-server over the window.
 */

export interface BaselineResult {
  cases: number;
  warmup: number;
  concurrency: number;
  completed: number;
  windowMs: number;
  casesPerSecond: number;
  stepsPerSecond: number;
  cpuMs: { node: number; redis: number; total: number };
  cpuMsPerCase: { node: number; redis: number; total: number };
}

type ChildMessage =
  | { type: 'ready' }
  | { type: 'done'; startedAt: number; lastCompletionAt: number; completed: number }
  | { type: 'error'; message: string };

const ENTRY = path.join(path.dirname(fileURLToPath(import.meta.url)), 'baseline-dag.js');

function next(child: ChildProcess, timeoutMs: number): Promise<ChildMessage> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`the baseline did not answer in ${timeoutMs} ms`));
    }, timeoutMs);
    const onMessage = (message: ChildMessage): void => {
      cleanup();
      if (message.type === 'error') reject(new Error(`baseline: ${message.message}`));
      else resolve(message);
    };
    const onExit = (code: number | null): void => {
      cleanup();
      reject(new Error(`the baseline exited (code ${String(code)})`));
    };
    const cleanup = (): void => {
      clearTimeout(timer);
      child.off('message', onMessage);
      child.off('exit', onExit);
    };
    child.on('message', onMessage);
    child.on('exit', onExit);
  });
}

export async function runBaseline(options: {
  redisUrl: string;
  redisPid: number;
  cases: number;
  warmup: number;
  concurrency: number;
  onSpawn?: (pid: number) => Promise<void>;
}): Promise<BaselineResult> {
  const child = fork(ENTRY, [], {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', REDIS_URL: options.redisUrl },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    detached: true,
  });
  if (child.pid === undefined) throw new Error('could not start the baseline');
  const pid = child.pid;
  await options.onSpawn?.(pid);
  try {
    await next(child, 30_000);
    if (options.warmup > 0) {
      child.send({
        type: 'run',
        tag: 'warmup',
        cases: options.warmup,
        concurrency: options.concurrency,
      });
      await next(child, 120_000);
    }
    const groups: CpuGroup[] = [
      { name: 'node', roots: () => [pid] },
      { name: 'redis', roots: () => [options.redisPid] },
    ];
    const before = sampleCpu(groups);
    child.send({
      type: 'run',
      tag: 'burst',
      cases: options.cases,
      concurrency: options.concurrency,
    });
    const done = await next(child, 600_000);
    const after = sampleCpu(groups);
    if (done.type !== 'done') throw new Error('unexpected message from the baseline');
    const cpu = cpuBetween(before, after);
    const windowMs = done.lastCompletionAt - done.startedAt;
    const node = cpu.ms.node ?? 0;
    const redis = cpu.ms.redis ?? 0;
    return {
      cases: options.cases,
      warmup: options.warmup,
      concurrency: options.concurrency,
      completed: done.completed,
      windowMs,
      casesPerSecond: (done.completed * 1000) / windowMs,
      stepsPerSecond: (done.completed * 5 * 1000) / windowMs,
      cpuMs: { node, redis, total: node + redis },
      cpuMsPerCase: {
        node: node / done.completed,
        redis: redis / done.completed,
        total: (node + redis) / done.completed,
      },
    };
  } finally {
    if (child.connected && child.exitCode === null) {
      // It closes its workers and exits; SIGTERM if it has not after five seconds.
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.send({ type: 'exit' });
      await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 5_000))]);
    }
    await stopChild(child, 'SIGTERM', 10_000);
  }
}
