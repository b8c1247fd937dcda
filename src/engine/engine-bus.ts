import { createCipheriv, createDecipheriv, randomBytes, randomUUID } from 'node:crypto';
import { Injectable, Logger, type OnApplicationShutdown } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { Redis } from 'ioredis';
import type { ResolvedConfig } from '../config/config.schema.js';
import { redisOptions } from '../queue/redis-connection.js';
import { PartitionLeases } from './partition-leases.js';

/** How a request ended for the one who sent it. */
export type Delivery<R> =
  | { status: 'answered'; reply: R }
  | { status: 'no-listener' }
  | { status: 'timeout' }
  | { status: 'abandoned' }
  /** This process is shutting down: nothing more is sent. */
  | { status: 'closed' };

interface RequestMessage {
  t: 'req';
  id: string;
  from: string;
  /** When it was sent (ms): a sealed message older than MAX_AGE_MS is not served. */
  at: number;
  body: unknown;
}

interface ReplyMessage {
  t: 'rep';
  id: string;
  at: number;
  body: unknown;
}

/** A message older than this is dropped (a replay, or a clock far off). */
const MAX_AGE_MS = 60_000;
/** The name of the bus key in `engine_secrets`. */
const KEY_NAME = 'engine-bus';

/**
 * Requests between leo's processes, addressed to one process (decision 0020): an input for a
 * case goes to the engine that owns the case's partition, and its outcome comes back. Redis
 * pub/sub, one channel per process (`<prefix>:engine:bus:<member>`): a request to a process that
 * is not listening is known at once (PUBLISH reaches no one), and one that gets no answer in time
 * (the process died with it) times out. Nothing is kept: the sender decides what to do next.
 *
 * Redis is shared with the agency adapters, which must neither read what the bus carries (a
 * citizen's answers) nor send commands on it. So every message is sealed (AES-256-GCM) with a
 * key that leo's processes share through Postgres (`engine_secrets`), which adapters cannot
 * reach: a message that does not open with the key, or is older than a minute, is dropped. An
 * opened message is still parsed, not trusted: what a request carries is checked by whoever
 * serves it (CaseRouter), and a reply by whoever asked.
 */
@Injectable()
export class EngineBus implements OnApplicationShutdown {
  private readonly logger = new Logger(EngineBus.name);
  private readonly url: string;
  private readonly prefix: string;
  private subscriber: Redis | undefined;
  private publisher: Redis | undefined;
  private starting: Promise<void> | undefined;
  private key: Buffer | undefined;
  private closed = false;
  private server: ((body: unknown) => Promise<unknown>) | undefined;
  private readonly waiting = new Map<
    string,
    { resolve: (reply: unknown) => void; timer: NodeJS.Timeout }
  >();

  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
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
    if (this.closed) return Promise.resolve();
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
    if (this.closed) return { status: 'closed' };
    // Not before Redis answers (it may be away): but never past the caller's time.
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.start().catch(() => undefined),
      new Promise((resolve) => (timer = setTimeout(resolve, timeoutMs))),
    ]);
    clearTimeout(timer);
    const publisher = this.publisher;
    if (this.isClosed()) return { status: 'closed' };
    if (!publisher) return { status: 'timeout' };
    const id = randomUUID();
    const replied = new Promise<unknown>((resolve) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        resolve(TIMEOUT);
      }, timeoutMs);
      this.waiting.set(id, { resolve, timer });
    });
    const message: RequestMessage = {
      t: 'req',
      id,
      from: this.leases.member,
      at: Date.now(),
      body,
    };
    // Redis away (the command failed after its retries): as if nobody listened; asked again.
    const receivers = await publisher
      .publish(this.channel(member), this.seal(message))
      .catch(() => 0);
    if (receivers === 0) {
      this.settle(id, NO_LISTENER);
    }
    void abandon?.then(() => {
      this.settle(id, ABANDONED);
    });
    const reply = await replied;
    if (reply === TIMEOUT) return { status: 'timeout' };
    if (reply === ABANDONED) return { status: 'abandoned' };
    if (reply === CLOSED) return { status: 'closed' };
    if (reply === NO_LISTENER) return { status: 'no-listener' };
    return { status: 'answered', reply: reply as R };
  }

  async onApplicationShutdown(): Promise<void> {
    this.closed = true;
    for (const [id] of this.waiting) this.settle(id, CLOSED);
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

  /** Read afresh (shutdown sets it while a request awaits). */
  private isClosed(): boolean {
    return this.closed;
  }

  private channel(member: string): string {
    return `${this.prefix}:engine:bus:${member}`;
  }

  /** The shared key: made by the first process that needs it, read by the others. */
  private async loadKey(): Promise<Buffer> {
    await this.dataSource.query(
      'INSERT INTO engine_secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING',
      [KEY_NAME, randomBytes(32)],
    );
    const rows = await this.dataSource.query<Array<{ value: Buffer }>>(
      'SELECT value FROM engine_secrets WHERE name = $1',
      [KEY_NAME],
    );
    const key = rows[0]?.value;
    if (!key || key.length !== 32) throw new Error('the engine bus key is missing or malformed');
    return key;
  }

  /** IV (12 bytes), tag (16) and ciphertext, base64. */
  private seal(message: RequestMessage | ReplyMessage): string {
    const key = this.key;
    if (!key) throw new Error('the engine bus is not started');
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', key, iv);
    const sealed = Buffer.concat([cipher.update(JSON.stringify(message), 'utf8'), cipher.final()]);
    return Buffer.concat([iv, cipher.getAuthTag(), sealed]).toString('base64');
  }

  private open(text: string): string | undefined {
    const key = this.key;
    if (!key) return undefined;
    try {
      const raw = Buffer.from(text, 'base64');
      if (raw.length < 29) return undefined;
      const decipher = createDecipheriv('aes-256-gcm', key, raw.subarray(0, 12));
      decipher.setAuthTag(raw.subarray(12, 28));
      return Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString('utf8');
    } catch {
      return undefined;
    }
  }

  private async listen(): Promise<void> {
    this.key ??= await this.loadKey();
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
    const opened = this.open(text);
    const message = opened === undefined ? undefined : parse(opened);
    if (!message || Math.abs(Date.now() - message.at) > MAX_AGE_MS) {
      // Not sealed with leo's key (someone else on Redis), malformed, or stale.
      this.logger.warn('engine bus message dropped: not sealed by leo, malformed or stale');
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
        const out: ReplyMessage = { t: 'rep', id: message.id, at: Date.now(), body: reply };
        return this.publisher?.publish(this.channel(message.from), this.seal(out));
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
const CLOSED = Symbol('closed');

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
  if (typeof m.id !== 'string' || m.id.length > 64 || typeof m.at !== 'number') return undefined;
  if (m.t === 'rep') return { t: 'rep', id: m.id, at: m.at, body: m.body };
  if (m.t === 'req' && typeof m.from === 'string' && MEMBER.test(m.from)) {
    return { t: 'req', id: m.id, from: m.from, at: m.at, body: m.body };
  }
  return undefined;
}
