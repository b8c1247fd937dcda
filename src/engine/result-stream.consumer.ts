import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { Injectable, Logger } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { Redis } from 'ioredis';
import {
  LOOKUP_RESULT,
  parseResultEntry,
  partitionStreamKey,
  resultsStreamKey,
  type ResultEntry,
} from '#agency-contract';
import { DomainError } from '../common/domain-error.js';
import type { ResolvedConfig } from '../config/config.schema.js';
import { Metrics } from '../observability/metrics.js';
import { redisOptions } from '../queue/redis-connection.js';
import { EngineService } from './engine.service.js';
import { PartitionLeases } from './partition-leases.js';

/** The consumer group every engine reads the results stream in (decision 0018). */
export const RESULTS_GROUP = 'engine';
/** How long one XREADGROUP waits for entries, in milliseconds. */
const BLOCK_MS = 1_000;
/** How often an engine looks for entries another consumer read but never acknowledged. */
const CLAIM_INTERVAL_MS = 5_000;
/** An entry pending this long is taken over: its consumer died (or its application failed). */
export const CLAIM_MIN_IDLE_MS = 30_000;
/** A consumer with nothing pending, idle this long, is gone (a stopped process): removed. */
const CONSUMER_GONE_MS = 60 * 60_000;
/** After an error (Redis or the database away), wait this long before reading again. */
const RETRY_MS = 1_000;

/** An entry as XREADGROUP and XAUTOCLAIM return it: its id and its fields, flat. */
type RawEntry = [id: string, fields: string[] | null];

export interface StreamConsumerOptions {
  /** Entries read at once and applied concurrently (LEO_RESULT_CONCURRENCY). */
  batchSize: number;
  /** Overrides for tests: the idle time before a claim, and how often to look. */
  claimMinIdleMs?: number;
  claimIntervalMs?: number;
}

/**
 * Applies agency answers from the results streams in batches (decisions 0018 and 0020): the
 * stream of each partition this engine holds (`replyTo` of the jobs its cases dispatched), and
 * the shared results stream (answers to jobs of engines before partitions, and reports without a
 * job: each is taken to its case's owner). Each engine is a consumer in the group `engine` of
 * every stream it reads, reads up to LEO_RESULT_CONCURRENCY entries per XREADGROUP (over all its
 * streams),
 * applies them concurrently (group commit turns them into few statements), and acknowledges
 * with one XACK those whose application settled (applied, ignored, refused, or malformed). An
 * entry whose application failed (the database away) stays pending and is claimed again after
 * CLAIM_MIN_IDLE_MS, by this engine or another, as are entries of an engine that died. Applying
 * twice is harmless: the engine ignores a duplicate or stale answer.
 */
@Injectable()
export class ResultStreamConsumer {
  private readonly logger = new Logger(ResultStreamConsumer.name);
  readonly key: string;
  private readonly prefix: string;
  /** The partitions whose streams this engine reads (those it holds). */
  private readonly partitions = new Set<number>();
  /** Streams whose group is to be made (sure) before they are read. */
  private readonly unready = new Set<string>();
  /** Streams just taken over: everything pending in them is claimed at once. */
  private readonly takenOver = new Set<string>();
  readonly consumer = `${hostname()}-${String(process.pid)}-${randomBytes(4).toString('hex')}`;
  private readonly url: string;
  private options: StreamConsumerOptions;
  private client: Redis | undefined;
  private running: Promise<void> | undefined;
  private stopping = false;
  private groupReady = false;
  private nextClaimAt = 0;
  private claimRounds = 0;
  private wake: (() => void) | undefined;
  /** Batches read since start, and the largest (read by tests and for logs). */
  readonly stats = { batches: 0, entries: 0, largestBatch: 0 };

  constructor(
    private readonly engine: EngineService,
    private readonly metrics: Metrics,
    leases: PartitionLeases,
    config: ConfigService<ResolvedConfig, true>,
  ) {
    this.prefix = config.get('queue', { infer: true }).prefix;
    this.key = resultsStreamKey(this.prefix);
    this.unready.add(this.key);
    leases.listen({
      acquired: (partitions) => {
        for (const p of partitions) {
          this.partitions.add(p);
          const key = partitionStreamKey(this.prefix, p);
          this.unready.add(key);
          // Its last owner's unacknowledged entries: it can no longer commit, so take them now.
          this.takenOver.add(key);
        }
      },
      releasing: (partitions) => {
        for (const p of partitions) this.partitions.delete(p);
        return Promise.resolve();
      },
      lost: (partitions) => {
        for (const p of partitions) this.partitions.delete(p);
      },
    });
    this.url = config.get('redis', { infer: true }).url;
    this.options = { batchSize: config.get('engine', { infer: true }).resultConcurrency };
  }

  /** Starts the read loop on a connection of its own (a blocking read holds its connection). */
  start(options: Partial<StreamConsumerOptions> = {}): void {
    if (this.running) return;
    this.options = { ...this.options, ...options };
    this.stopping = false;
    this.nextClaimAt = 0;
    const client = new Redis({
      ...redisOptions(this.url),
      connectionName: `leo-results-${this.consumer}`,
    });
    client.on('error', (error) => {
      this.logger.warn({ err: error }, 'results stream connection error');
    });
    this.client = client;
    this.running = this.loop(client);
  }

  /**
   * Stops reading and waits for the batch being applied (the database pool is still open: this
   * runs in the first shutdown phase). A read blocked on an unreachable Redis is cut off.
   */
  async stop(): Promise<void> {
    const running = this.running;
    const client = this.client;
    if (!running || !client) return;
    this.stopping = true;
    this.wake?.();
    let timer: NodeJS.Timeout | undefined;
    const late = await Promise.race([
      running.then(() => false),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => {
          resolve(true);
        }, BLOCK_MS + 1_000);
      }),
    ]);
    clearTimeout(timer);
    if (late) {
      // A command sent while Redis is unreachable may never settle, even after the connection
      // is closed under it: the loop is left to end on its own (it sees `stopping`).
      client.disconnect();
      await Promise.race([running, new Promise((resolve) => setTimeout(resolve, 1_000).unref())]);
    } else {
      await running;
    }
    if (client.status === 'ready') {
      await client.quit().catch(() => {
        client.disconnect();
      });
    } else {
      client.disconnect();
    }
    this.running = undefined;
    this.client = undefined;
  }

  /** The streams read: the shared one, then each held partition's. */
  private keys(): string[] {
    return [
      this.key,
      ...[...this.partitions].sort((a, b) => a - b).map((p) => partitionStreamKey(this.prefix, p)),
    ];
  }

  private async loop(client: Redis): Promise<void> {
    while (!this.stopping) {
      try {
        if (!this.groupReady) for (const key of this.keys()) this.unready.add(key);
        this.groupReady = true;
        for (const key of [...this.unready]) {
          await this.createGroup(client, key);
          this.unready.delete(key);
        }
        for (const key of [...this.takenOver]) {
          this.takenOver.delete(key);
          if (this.keys().includes(key)) await this.claim(client, key, 0);
        }
        if (Date.now() >= this.nextClaimAt) {
          this.nextClaimAt = Date.now() + (this.options.claimIntervalMs ?? CLAIM_INTERVAL_MS);
          const minIdle = this.options.claimMinIdleMs ?? CLAIM_MIN_IDLE_MS;
          for (const key of this.keys()) await this.claim(client, key, minIdle);
          this.claimRounds += 1;
          if (this.claimRounds % 60 === 1) {
            for (const key of this.keys()) await this.removeGoneConsumers(client, key);
          }
        }
        if (this.isStopping()) break;
        const read = await this.read(client);
        if (read.length > 0) await this.applyBatches(client, read);
      } catch (error) {
        if (this.isStopping()) break;
        // After Redis lost its data the group is gone with the stream (NOGROUP): create it
        // again. Whatever was lost, the reconciler re-dispatches from Postgres.
        this.groupReady = false;
        if (isNoGroup(error)) {
          this.logger.warn({ key: this.key }, 'results stream group missing: creating it again');
        } else {
          this.logger.warn({ err: error, key: this.key }, 'reading the results stream failed');
          await this.pause(RETRY_MS);
        }
      }
    }
  }

  /** Read afresh (stop() sets it while the loop awaits). */
  private isStopping(): boolean {
    return this.stopping;
  }

  private async pause(ms: number): Promise<void> {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
    this.wake = undefined;
  }

  /** `XGROUP CREATE … 0 MKSTREAM`: from the stream's start, so nothing written before is skipped. */
  private async createGroup(client: Redis, key: string): Promise<void> {
    try {
      await client.xgroup('CREATE', key, RESULTS_GROUP, '0', 'MKSTREAM');
      this.logger.log({ key, group: RESULTS_GROUP }, 'results stream group created');
    } catch (error) {
      if (!(error instanceof Error && error.message.startsWith('BUSYGROUP'))) throw error;
    }
  }

  /** Up to a batch of new entries from each stream read, in one XREADGROUP. */
  private async read(client: Redis): Promise<Array<[string, RawEntry[]]>> {
    const keys = this.keys();
    const reply = (await client.xreadgroup(
      'GROUP',
      RESULTS_GROUP,
      this.consumer,
      'COUNT',
      this.options.batchSize,
      'BLOCK',
      BLOCK_MS,
      'STREAMS',
      ...keys,
      ...keys.map(() => '>'),
    )) as Array<[string, RawEntry[]]> | null;
    return reply ?? [];
  }

  /**
   * Takes over entries pending longer than the idle time (`XAUTOCLAIM`), whoever holds them,
   * and applies them. Entries trimmed from the stream meanwhile are dropped from the pending
   * list by Redis itself. Now and then, removes consumers long gone.
   */
  private async claim(client: Redis, key: string, minIdle: number): Promise<void> {
    let cursor = '0-0';
    // A bounded number of pages per round: a huge backlog is taken a batch at a time.
    for (let page = 0; page < 10 && !this.stopping; page += 1) {
      const [next, entries] = (await client.xautoclaim(
        key,
        RESULTS_GROUP,
        this.consumer,
        minIdle,
        cursor,
        'COUNT',
        this.options.batchSize,
      )) as [string, RawEntry[], string[]?];
      const live = entries.filter((entry) => Array.isArray(entry[1]));
      if (live.length > 0) {
        this.logger.log({ key, count: live.length }, 'claimed results left pending');
        await this.applyBatches(client, [[key, live]]);
      }
      cursor = next;
      if (cursor === '0-0') break;
    }
  }

  private async removeGoneConsumers(client: Redis, key: string): Promise<void> {
    const consumers = (await client.xinfo('CONSUMERS', key, RESULTS_GROUP)) as unknown[][];
    for (const flat of consumers) {
      const info = new Map<string, unknown>();
      for (let i = 0; i + 1 < flat.length; i += 2) info.set(String(flat[i]), flat[i + 1]);
      const name = String(info.get('name'));
      if (
        name !== this.consumer &&
        Number(info.get('pending')) === 0 &&
        Number(info.get('idle')) > CONSUMER_GONE_MS
      ) {
        await client.xgroup('DELCONSUMER', key, RESULTS_GROUP, name);
      }
    }
  }

  /**
   * Applies a batch concurrently, then acknowledges in one XACK every entry that settled. An
   * application that failed is left pending: it is claimed again later.
   */
  private async applyBatches(
    client: Redis,
    read: ReadonlyArray<readonly [string, readonly RawEntry[]]>,
  ): Promise<void> {
    // Counted as read, before applying: a change an entry makes is visible in Postgres before
    // this batch's applications have all settled.
    const count = read.reduce((n, [, entries]) => n + entries.length, 0);
    this.stats.batches += 1;
    this.stats.entries += count;
    this.stats.largestBatch = Math.max(this.stats.largestBatch, count);
    const settled = await Promise.all(
      read.map(async ([key, entries]) => {
        const ids = await Promise.all(
          entries.map(async ([id, fields]) =>
            (await this.applyEntry(id, fields ?? [])) ? id : null,
          ),
        );
        return [key, ids.filter((id): id is string => id !== null)] as const;
      }),
    );
    for (const [key, done] of settled) {
      if (done.length > 0) await client.xack(key, RESULTS_GROUP, ...done);
    }
  }

  /** Whether the entry settled (to acknowledge); false when it should be tried again. */
  private async applyEntry(id: string, fields: readonly string[]): Promise<boolean> {
    const parsed = parseResultEntry(fields);
    if (!parsed.ok) {
      // Never the body: it may carry fact values.
      this.logger.warn(
        { entryId: id, kind: parsed.kind, problem: parsed.problem },
        'malformed results stream entry dropped',
      );
      return true;
    }
    const ids = entryIds(parsed.entry);
    try {
      await this.apply(parsed.entry);
      return true;
    } catch (error) {
      if (error instanceof DomainError && error.kind !== 'unavailable') {
        // Refused on its merits: trying again will not change that.
        this.logger.warn({ ...ids, entryId: id, code: error.code }, 'result refused');
        return true;
      }
      this.logger.warn({ ...ids, entryId: id, err: error }, 'applying a result failed: kept');
      return false;
    }
  }

  private apply(entry: ResultEntry): Promise<'applied' | 'ignored'> {
    if (entry.kind === LOOKUP_RESULT) {
      const result = entry.result;
      return this.metrics.observeResultApplication(result, () =>
        this.engine.applyLookupResult(result),
      );
    }
    const result = entry.result;
    return this.metrics.observeResultApplication(result, () => this.engine.applyResult(result));
  }
}

function entryIds(entry: ResultEntry): Record<string, unknown> {
  return entry.kind === LOOKUP_RESULT
    ? { lookupId: entry.result.lookupId, attempt: entry.result.attempt }
    : { stepRunId: entry.result.stepRunId, attempt: entry.result.attempt };
}

function isNoGroup(error: unknown): boolean {
  return (
    error instanceof Error &&
    (error.message.startsWith('NOGROUP') || error.message.includes('no longer exists'))
  );
}
