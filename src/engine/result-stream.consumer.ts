import { queuedAgencies } from '#workflow';
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { Injectable, Logger } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { Redis } from 'ioredis';
import {
  LOOKUP_RESULT,
  agencyOfResultsStream,
  agencyResultsStreamKey,
  parseResultEntry,
  type ResultEntry,
} from '#agency-contract';
import { DomainError } from '../common/domain-error.js';
import { LogBudget } from '../common/log-budget.js';
import type { ResolvedConfig } from '../config/config.schema.js';
import { Metrics } from '../observability/metrics.js';
import { redisOptions } from '../queue/redis-connection.js';
import { EngineCatalogue } from './engine-catalogue.js';
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
/**
 * After this engine took partitions over from another (whose lease ran out, so it stopped or died
 * at least a lease ago), entries pending this long are taken over at once: the other engine's,
 * not those a live engine is applying (milliseconds).
 */
const TAKEOVER_MIN_IDLE_MS = 2_000;
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
 * Applies agency answers from the agencies' results streams in batches (decisions 0018 and 0022):
 * one stream per agency (`agencyResultsStreamKey`), which only that agency's credential may append
 * to, so the agency of an answer is the stream's, never what the answer says. Every engine is a
 * consumer in the group `engine` of every agency's stream; it reads up to LEO_RESULT_CONCURRENCY
 * entries per XREADGROUP (over all the streams), takes each to its case's owner (itself, or
 * another engine over the EngineBus), applies them concurrently (group commit turns them into few
 * statements), and acknowledges with one XACK per stream those whose application settled
 * (applied, ignored, refused, or malformed). An entry whose application failed (the database
 * away) stays pending and is claimed again after CLAIM_MIN_IDLE_MS, by this engine or another,
 * as are entries of an engine that died (at once when its partitions are taken over). Applying
 * twice is harmless: the engine ignores a duplicate or stale answer. The streams read follow the
 * agency catalogue: an agency added through the API is read within a claim interval.
 */
@Injectable()
export class ResultStreamConsumer {
  private readonly logger = new Logger(ResultStreamConsumer.name);
  private readonly prefix: string;
  /** The agencies whose streams this engine reads, by stream key. */
  private agencies = new Map<string, string>();
  /** Streams whose group is to be made (sure) before they are read. */
  private readonly unready = new Set<string>();
  /** Partitions were taken over: entries their last owner left pending are claimed at once. */
  private takenOver = false;
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
  /** Refused entries are counted each, logged at most 10 a minute per agency (it may flood). */
  private readonly refusals = new LogBudget(10, 60_000);
  /** Batches read since start, and the largest (read by tests and for logs). */
  readonly stats = { batches: 0, entries: 0, largestBatch: 0 };

  constructor(
    private readonly engine: EngineService,
    private readonly catalogue: EngineCatalogue,
    private readonly metrics: Metrics,
    leases: PartitionLeases,
    config: ConfigService<ResolvedConfig, true>,
  ) {
    this.prefix = config.get('queue', { infer: true }).prefix;
    leases.listen({
      acquired: () => {
        this.takenOver = true;
      },
      releasing: () => Promise.resolve(),
      lost: () => undefined,
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

  /** The streams read: one per agency with a queue (each instance of an agency of many). */
  private keys(): string[] {
    return [...this.agencies.keys()];
  }

  /**
   * Follows the agency catalogue: a stream for each agency. When the catalogue cannot be read
   * (the database away), the streams stay as they were.
   */
  private async refreshAgencies(): Promise<void> {
    let codes: string[];
    try {
      // Each municipality onboarded answers on a stream of its own (decision 0024).
      const { catalogue } = await this.catalogue.catalogue();
      codes = queuedAgencies(catalogue.agencies.values()).map((agency) => agency.code);
    } catch (error) {
      this.logger.warn(
        { err: error },
        'reading the agencies failed: their streams stay as they were',
      );
      return;
    }
    const next = new Map<string, string>();
    for (const code of codes.sort()) {
      const key = agencyResultsStreamKey(this.prefix, code);
      next.set(key, code);
      if (!this.agencies.has(key)) this.unready.add(key);
    }
    this.agencies = next;
  }

  private async loop(client: Redis): Promise<void> {
    while (!this.stopping) {
      try {
        const claimDue = Date.now() >= this.nextClaimAt;
        if (claimDue || this.agencies.size === 0) await this.refreshAgencies();
        if (!this.groupReady) for (const key of this.keys()) this.unready.add(key);
        this.groupReady = true;
        for (const key of [...this.unready]) {
          if (this.agencies.has(key)) await this.createGroup(client, key);
          this.unready.delete(key);
        }
        if (this.takenOver) {
          this.takenOver = false;
          for (const key of this.keys()) await this.claim(client, key, TAKEOVER_MIN_IDLE_MS);
        }
        if (claimDue) {
          this.nextClaimAt = Date.now() + (this.options.claimIntervalMs ?? CLAIM_INTERVAL_MS);
          const minIdle = this.options.claimMinIdleMs ?? CLAIM_MIN_IDLE_MS;
          for (const key of this.keys()) await this.claim(client, key, minIdle);
          this.claimRounds += 1;
          if (this.claimRounds % 60 === 1) {
            for (const key of this.keys()) await this.removeGoneConsumers(client, key);
          }
        }
        if (this.isStopping()) break;
        if (this.agencies.size === 0) {
          await this.pause(BLOCK_MS);
          continue;
        }
        const read = await this.read(client);
        if (read.length > 0) await this.applyBatches(client, read);
      } catch (error) {
        if (this.isStopping()) break;
        // After Redis lost its data the group is gone with the stream (NOGROUP): create it
        // again. Whatever was lost, the reconciler re-dispatches from Postgres.
        this.groupReady = false;
        if (isNoGroup(error)) {
          this.logger.warn('results stream group missing: creating it again');
        } else {
          this.logger.warn({ err: error }, 'reading the results streams failed');
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
      this.logger.log(
        { agency: this.agencies.get(key), group: RESULTS_GROUP },
        'results stream group created',
      );
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
    // COUNT is per stream, so a read may hold a batch from every agency: at most batchSize are
    // applied at once, whatever the number of agencies (one flooding its stream holds no more).
    const work = read.flatMap(([key, entries]) => {
      const agency = this.agencies.get(key) ?? agencyOfResultsStream(this.prefix, key);
      return entries.map(([id, fields]) => ({ key, agency, id, fields: fields ?? [] }));
    });
    const done = new Map<string, string[]>();
    let next = 0;
    const lane = async (): Promise<void> => {
      for (let item = work[next++]; item; item = work[next++]) {
        if (await this.applyEntry(item.agency, item.id, item.fields)) {
          const ids = done.get(item.key) ?? [];
          ids.push(item.id);
          done.set(item.key, ids);
        }
      }
    };
    await Promise.all(
      Array.from({ length: Math.min(this.options.batchSize, work.length) }, () => lane()),
    );
    for (const [key, ids] of done) await client.xack(key, RESULTS_GROUP, ...ids);
  }

  /**
   * Whether the entry settled (to acknowledge); false when it should be tried again. `agency` is
   * the agency whose stream it came by: the only one it may speak for.
   */
  private async applyEntry(
    agency: string | undefined,
    id: string,
    fields: readonly string[],
  ): Promise<boolean> {
    if (agency === undefined) return true;
    const parsed = parseResultEntry(fields);
    if (!parsed.ok) {
      // Never the body: it may carry fact values.
      this.metrics.agencyAnswersRefused.inc({ agency, reason: 'malformed' });
      const { log, held } = this.refusals.take(agency);
      if (log) {
        this.logger.warn(
          { agency, entryId: id, kind: parsed.kind, problem: parsed.problem, alsoRefused: held },
          'malformed results stream entry dropped',
        );
      }
      return true;
    }
    const ids = entryIds(parsed.entry);
    if (parsed.entry.result.agency !== agency) {
      // Another agency's name on this agency's channel: refused, whoever's step it names.
      this.metrics.agencyAnswersRefused.inc({ agency, reason: 'another-agency' });
      const { log, held } = this.refusals.take(agency);
      if (log) {
        this.logger.warn(
          { ...ids, entryId: id, agency, claimed: parsed.entry.result.agency, alsoRefused: held },
          'result naming another agency than its channel refused',
        );
      }
      return true;
    }
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
