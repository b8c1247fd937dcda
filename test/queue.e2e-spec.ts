import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { QueueEvents, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import { agencyQueueName } from '#agency-contract';
import { redisOptions } from '../src/queue/redis-connection.js';
import { QueueService } from '../src/queue/queue.service.js';
import { startTestApp, type TestApp } from './support/test-env.js';

// A contract of this test's own: the mechanism is generic, the engine's contracts come later.
interface GreetingJobs {
  'greeting.send': { to: string; times: number };
  'greeting.slow': { ms: number };
}

describe('typed queues on the configured Redis and prefix', () => {
  let leo: TestApp;
  let queues: QueueService;
  let redis: Redis;
  beforeAll(async () => {
    leo = await startTestApp();
    queues = leo.app.get(QueueService);
    redis = new Redis(redisOptions(leo.config.redis.url));
  });
  afterAll(async () => {
    redis.disconnect();
    await leo.close();
  });

  it('delivers each payload to the handler for its job name, under the hash-tagged prefix', async () => {
    const name = agencyQueueName('testverket');
    const seen: string[] = [];
    const events = new QueueEvents(name, {
      connection: redisOptions(leo.config.redis.url),
      prefix: queues.prefix,
    });
    await events.waitUntilReady();
    queues.worker<GreetingJobs, string>(name, {
      'greeting.send': async ({ to, times }) => {
        seen.push(`${to}x${times}`);
        return `hej ${to}`;
      },
      'greeting.slow': async ({ ms }) => {
        await new Promise((r) => setTimeout(r, ms));
        return 'slow';
      },
    });
    const queue = queues.queue<GreetingJobs>(name);
    const job = await queue.add('greeting.send', { to: 'Anna', times: 2 }, { jobId: 'step-run-1' });
    await expect(job.waitUntilFinished(events, 10_000)).resolves.toBe('hej Anna');
    expect(seen).toEqual(['Annax2']);

    // The job id is the idempotency key: adding it again is a no-op.
    const again = await queue.add(
      'greeting.send',
      { to: 'Anna', times: 2 },
      { jobId: 'step-run-1' },
    );
    expect(again.id).toBe('step-run-1');
    await new Promise((r) => setTimeout(r, 200));
    expect(seen).toEqual(['Annax2']);

    const keys = await redis.keys(`${queues.prefix}:${name}:*`);
    expect(keys.length).toBeGreaterThan(0);
    expect(queues.prefix).toMatch(/^\{leo-test-.+\}$/);
    await events.close();
  });

  it('fails a job whose name has no handler at once, without retrying', async () => {
    const name = agencyQueueName('okandverket');
    const events = new QueueEvents(name, {
      connection: redisOptions(leo.config.redis.url),
      prefix: queues.prefix,
    });
    await events.waitUntilReady();
    queues.worker<GreetingJobs, string>(name, {
      'greeting.send': async () => 'ok',
      'greeting.slow': async () => 'ok',
    });
    const raw = queues.queue<GreetingJobs>(name).raw;
    const job = await raw.add(
      'greeting.unknown',
      { x: 1 },
      { attempts: 5, backoff: { type: 'fixed', delay: 10 } },
    );
    await expect(job.waitUntilFinished(events, 10_000)).rejects.toThrow(
      /no handler for job "greeting.unknown"/,
    );
    const failed = (await raw.getJob(job.id ?? '')) as Job;
    expect(failed.attemptsMade).toBe(1);
    await events.close();
  });

  it('lets in-flight jobs finish when shutting down', async () => {
    const other = await startTestApp({ QUEUE_PREFIX: leo.config.queue.prefix });
    const name = agencyQueueName('langsamverket');
    const service = other.app.get(QueueService);
    let finished = false;
    let started!: () => void;
    const hasStarted = new Promise<void>((r) => (started = r));
    service.worker<GreetingJobs, string>(name, {
      'greeting.send': async () => 'unused',
      'greeting.slow': async ({ ms }) => {
        started();
        await new Promise((r) => setTimeout(r, ms));
        finished = true;
        return 'done';
      },
    });
    const job = await service.queue<GreetingJobs>(name).add('greeting.slow', { ms: 400 });
    await hasStarted;
    await other.close();
    expect(finished).toBe(true);
    const stored = await queues.queue<GreetingJobs>(name).raw.getJob(job.id ?? '');
    expect(await stored?.getState()).toBe('completed');
    expect(stored?.returnvalue).toBe('done');
  });
});

describe('agency queue names', () => {
  it('are permanent wire names derived from the agency code, and refuse anything else', () => {
    expect(agencyQueueName('bolagsverket')).toBe('agency.bolagsverket');
    for (const bad of ['', 'Bolagsverket', 'a', 'x y', 'skatteverket:*', 'å']) {
      expect(() => agencyQueueName(bad)).toThrow(/invalid agency code/);
    }
  });
});
