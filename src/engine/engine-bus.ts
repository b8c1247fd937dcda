import { randomUUID } from 'node:crypto';
import { Injectable, Logger, type OnApplicationShutdown } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { Redis } from 'ioredis';
import type { ResolvedConfig } from '../config/config.schema.js';
import { redisOptions } from '../queue/redis-connection.js';
import { PartitionLeases } from './partition-leases.js';

/** How a request ended for the one who sent it. */
export type Delivery<R> =
  | { status: 'answered'; reply: R }
  | { status: 'no-listener' }
  | { status: 'timeout' }
  | { status: 'abandoned' };

interface RequestMessage {
  t: 'req';
  id: string;
  from: string;
  body: unknown;
}

interface ReplyMessage {
  t: 'rep';
  id: string;
  body: unknown;
}

/**
 * Requests between leo's processes, addressed to one process (decision 0020): an input for a
 * case goes to the engine that owns the case's partition, and its outcome comes back. Redis
 * pub/sub, one channel per process (`<prefix>:engine:bus:<member>`): a request to a process that
 * is not listening is known at once (PUBLISH reaches no one), and one that gets no answer in time
 * (the process died with it) times out. Nothing is kept: the sender decides what to do next.
 *
 * A message is parsed, never trusted: anything not shaped like a request or reply is dropped.
 * What a request carries is checked by whoever serves it (CaseRouter).
 */
@Injectable()
export class EngineBus implements OnApplicationShutdown {
  private readonly logger = new Logger(EngineBus.name);
  private readonly url: string;
  private readonly prefix: string;
  private subscriber: Redis | undefined;
  private publisher: Redis | undefined;
  private starting: Promise<void> | undefined;
  private server: ((body: unknown) => Promise<unknown>) | undefined;
  private readonly waiting = new Map<
    string,
    { resolve: (reply: unknown) => void; timer: NodeJS.Timeout }
  >();

  constructor(
    private readonly leases: PartitionLeases,
    config: ConfigService<ResolvedConfig, true>,
  ) {
    this.url = config.get('redis', { infer: true }).url;
    this.prefix = config.get('queue', { infer: true }).prefix;
  }

  /** Serves requests to this process with `server` (its answer is the reply). */
  serve(server: (body: unknown) => Promise<unknown>): void {
    this.server = server;
  }

  /** Listens on this process' channel (once; later calls wait for the first). */
  start(): Promise<void> {
    this.starting ??= this.listen().catch((error: unknown) => {
      this.starting = undefined;
      throw error;
    });
    return this.starting;
  }

  /**
   * Sends `body` to process `member` and waits up to `timeoutMs` for its reply, or until
   * `abandon` settles (the sender learnt that the process it asked is gone).
   */
  async request<R>(
    member: string,
    body: unknown,
    timeoutMs: number,
    abandon?: Promise<unknown>,
  ): Promise<Delivery<R>> {
    // Not before Redis answers (it may be away): but never past the caller's time.
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.start().catch(() => undefined),
      new Promise((resolve) => (timer = setTimeout(resolve, timeoutMs))),
    ]);
    clearTimeout(timer);
    const publisher = this.publisher;
    if (!publisher) return { status: 'timeout' };
    const id = randomUUID();
    const replied = new Promise<unknown>((resolve) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        resolve(TIMEOUT);
      }, timeoutMs);
      this.waiting.set(id, { resolve, timer });
    });
    const message: RequestMessage = { t: 'req', id, from: this.leases.member, body };
    const receivers = await publisher.publish(this.channel(member), JSON.stringify(message));
    if (receivers === 0) {
      this.settle(id, NO_LISTENER);
    }
    void abandon?.then(() => {
      this.settle(id, ABANDONED);
    });
    const reply = await replied;
    if (reply === TIMEOUT) return { status: 'timeout' };
    if (reply === ABANDONED) return { status: 'abandoned' };
    if (reply === NO_LISTENER) return { status: 'no-listener' };
    return { status: 'answered', reply: reply as R };
  }

  async onApplicationShutdown(): Promise<void> {
    for (const [id] of this.waiting) this.settle(id, TIMEOUT);
    await Promise.all(
      [this.subscriber, this.publisher].map(async (client) => {
        if (!client) return;
        // QUIT would wait for a Redis that is away: then the connection is just dropped.
        if (client.status !== 'ready') {
          client.disconnect();
          return;
        }
        await client.quit().catch(() => {
          client.disconnect();
        });
      }),
    );
    this.subscriber = undefined;
    this.publisher = undefined;
    this.starting = undefined;
  }

  private channel(member: string): string {
    return `${this.prefix}:engine:bus:${member}`;
  }

  private async listen(): Promise<void> {
    const options = { ...redisOptions(this.url), connectionName: `leo-bus-${this.leases.member}` };
    const subscriber = new Redis(options);
    const publisher = new Redis({ ...options, maxRetriesPerRequest: 3, lazyConnect: true });
    for (const client of [subscriber, publisher]) {
      client.on('error', (error) => {
        this.logger.warn({ err: error }, 'engine bus connection error');
      });
    }
    subscriber.on('message', (_channel: string, text: string) => {
      this.receive(text);
    });
    // Kept before the subscription is confirmed: a shutdown while Redis is away closes them.
    this.subscriber = subscriber;
    await subscriber.subscribe(this.channel(this.leases.member));
    this.publisher = publisher;
  }

  private receive(text: string): void {
    const message = parse(text);
    if (!message) {
      this.logger.warn('malformed engine bus message dropped');
      return;
    }
    if (message.t === 'rep') {
      this.settle(message.id, message.body);
      return;
    }
    const server = this.server;
    if (!server) return;
    void server(message.body)
      .then((reply) => {
        const out: ReplyMessage = { t: 'rep', id: message.id, body: reply };
        return this.publisher?.publish(this.channel(message.from), JSON.stringify(out));
      })
      .catch((error: unknown) => {
        // The sender times out and tries again.
        this.logger.warn({ err: error }, 'serving an engine bus request failed');
      });
  }

  private settle(id: string, reply: unknown): void {
    const waiting = this.waiting.get(id);
    if (!waiting) return;
    clearTimeout(waiting.timer);
    this.waiting.delete(id);
    waiting.resolve(reply);
  }
}

const TIMEOUT = Symbol('timeout');
const NO_LISTENER = Symbol('no-listener');
const ABANDONED = Symbol('abandoned');

const MEMBER = /^[\w.:-]{1,200}$/;

function parse(text: string): RequestMessage | ReplyMessage | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const m = value as Record<string, unknown>;
  if (typeof m.id !== 'string' || m.id.length > 64) return undefined;
  if (m.t === 'rep') return { t: 'rep', id: m.id, body: m.body };
  if (m.t === 'req' && typeof m.from === 'string' && MEMBER.test(m.from)) {
    return { t: 'req', id: m.id, from: m.from, body: m.body };
  }
  return undefined;
}
