import { Injectable, Logger, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { Redis } from 'ioredis';
import type { ResolvedConfig } from '../config/config.schema.js';
import { redisOptions } from '../queue/redis-connection.js';
import { CaseChanges } from './case-changes.js';

type Listener = () => void;

/**
 * Tells every process that a case changed, so that live streams (server-sent events) and
 * waiting requests in any api replica learn of a change committed by any engine replica: the
 * ids of changed cases are published on a Redis channel after commit, batched per tick. A
 * signal carries no data (listeners read what changed from Postgres) and may be lost: listeners
 * also re-read now and then, so a lost signal only delays.
 */
@Injectable()
export class CaseSignals implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger(CaseSignals.name);
  private readonly channel: string;
  private readonly options: ReturnType<typeof redisOptions>;
  private publisher: Redis | undefined;
  private subscriber: Redis | undefined;
  private readonly listeners = new Map<string, Set<Listener>>();
  private pending = new Set<string>();
  private flushing = false;
  private closed = false;

  constructor(
    private readonly changes: CaseChanges,
    config: ConfigService<ResolvedConfig, true>,
  ) {
    this.options = redisOptions(config.get('redis', { infer: true }).url);
    this.channel = `${config.get('queue', { infer: true }).prefix}:case-changes`;
  }

  onModuleInit(): void {
    this.changes.subscribe((change) => {
      const caseId = change.caseRecord.id;
      this.deliver(caseId);
      this.pending.add(caseId);
      if (!this.flushing) {
        this.flushing = true;
        setImmediate(() => {
          void this.flush();
        });
      }
    });
  }

  /** Calls `listener` whenever case `caseId` may have changed, until the returned function is called. */
  listen(caseId: string, listener: Listener): () => void {
    this.ensureSubscribed();
    let set = this.listeners.get(caseId);
    if (!set) this.listeners.set(caseId, (set = new Set()));
    set.add(listener);
    return () => {
      set.delete(listener);
      if (set.size === 0) this.listeners.delete(caseId);
    };
  }

  /**
   * Resolves when `check` holds (tried at once, on every signal for the case, and every
   * `pollMs` in case a signal is lost) or `timeoutMs` passed; resolves to the last result.
   */
  async waitFor<T>(
    caseId: string,
    check: () => Promise<T | undefined>,
    timeoutMs: number,
    pollMs = 1_000,
  ): Promise<T | undefined> {
    if (timeoutMs <= 0) return check();
    // Listening starts before the first check: a change committed while that check runs is a
    // signal that checks again, not one lost until the next poll.
    return new Promise<T | undefined>((resolve, reject) => {
      let running = false;
      let again = false;
      let settled = false;
      let first = true;
      const finish = (value: T | undefined): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        clearInterval(poll);
        stop();
        resolve(value);
      };
      const attempt = (): void => {
        if (running) {
          again = true;
          return;
        }
        running = true;
        const initial = first;
        first = false;
        void check()
          .then((value) => {
            if (value !== undefined) finish(value);
          })
          // The first check's error is the caller's (a case that is not theirs); a later one
          // (a passing database error) leaves the next signal or poll to try again.
          .catch((error: unknown) => {
            if (!initial || settled) return;
            settled = true;
            clearTimeout(timer);
            clearInterval(poll);
            stop();
            reject(error instanceof Error ? error : new Error(String(error)));
          })
          .finally(() => {
            running = false;
            if (again && !settled) {
              again = false;
              attempt();
            }
          });
      };
      const stop = this.listen(caseId, attempt);
      const poll = setInterval(attempt, pollMs);
      const timer = setTimeout(() => {
        void check()
          .catch(() => undefined)
          .then(finish);
      }, timeoutMs);
      attempt();
    });
  }

  private deliver(caseId: string): void {
    for (const listener of this.listeners.get(caseId) ?? []) {
      try {
        listener();
      } catch (error) {
        this.logger.warn({ err: error }, 'case signal listener failed');
      }
    }
  }

  private async flush(): Promise<void> {
    const ids = [...this.pending];
    this.pending = new Set();
    this.flushing = false;
    if (ids.length === 0 || this.closed) return;
    try {
      this.publisher ??= this.connect('leo-signals-pub');
      await this.publisher.publish(this.channel, ids.join(','));
    } catch (error) {
      this.logger.warn({ err: error, cases: ids.length }, 'publishing case signals failed');
    }
  }

  private ensureSubscribed(): void {
    if (this.subscriber || this.closed) return;
    const subscriber = this.connect('leo-signals-sub');
    this.subscriber = subscriber;
    subscriber.on('message', (_channel: string, message: string) => {
      for (const caseId of message.split(',')) this.deliver(caseId);
    });
    void subscriber.subscribe(this.channel).catch((error: unknown) => {
      this.logger.warn({ err: error }, 'subscribing to case signals failed');
    });
  }

  private connect(name: string): Redis {
    const client = new Redis({ ...this.options, connectionName: name, lazyConnect: false });
    client.on('error', (error) => {
      this.logger.warn({ err: error, connection: name }, 'case signal connection error');
    });
    return client;
  }

  async onApplicationShutdown(): Promise<void> {
    this.closed = true;
    await Promise.all(
      [this.publisher, this.subscriber].map(async (client) => {
        if (!client) return;
        if (client.status === 'ready') {
          await client.quit().catch(() => {
            client.disconnect();
          });
        } else {
          client.disconnect();
        }
      }),
    );
  }
}
