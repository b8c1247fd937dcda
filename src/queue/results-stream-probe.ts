import { Injectable, type OnApplicationShutdown } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { Redis } from 'ioredis';
import { partitionStreamKey, resultsStreamKey } from '#agency-contract';
import type { ResolvedConfig } from '../config/config.schema.js';
import { redisOptions } from './redis-connection.js';

/** The consumer group the engines read the results stream in (see ResultStreamConsumer). */
const GROUP = 'engine';

/** One partition's results stream (decision 0020): read but unacknowledged, and unread. */
export interface PartitionBacklog {
  partition: number;
  pending: number;
  /** NaN when Redis cannot tell (after trimming). */
  lag: number;
}

export interface ResultsStreamBacklog {
  /** Entries in the stream (read or not; trimmed at about RESULTS_STREAM_MAXLEN). */
  length: number;
  /** Entries read by an engine but not yet acknowledged (being applied, or failed to). */
  pending: number;
  /** Entries not yet read by any engine; NaN when Redis cannot tell (after trimming). */
  lag: number;
  /** Age of the oldest pending entry, from its id's time; 0 when none is pending. */
  oldestPendingAgeSeconds: number;
}

/**
 * Reads the results stream's backlog for the metrics, on a connection of its own made on first
 * use (only processes that are scraped open it).
 */
@Injectable()
export class ResultsStreamProbe implements OnApplicationShutdown {
  readonly key: string;
  private readonly prefix: string;
  private readonly url: string;
  private client: Redis | undefined;

  constructor(config: ConfigService<ResolvedConfig, true>) {
    this.prefix = config.get('queue', { infer: true }).prefix;
    this.key = resultsStreamKey(this.prefix);
    this.url = config.get('redis', { infer: true }).url;
  }

  /** The backlog of each of `count` partitions' results streams, in one round trip. */
  async partitions(count: number): Promise<PartitionBacklog[]> {
    const client = this.connect();
    const pipeline = client.pipeline();
    for (let p = 0; p < count; p += 1) pipeline.xinfo('GROUPS', partitionStreamKey(this.prefix, p));
    const replies = (await pipeline.exec()) ?? [];
    return replies.map(([error, groups], partition) => {
      // No stream yet (no job of the partition answered since Redis started): nothing waits.
      if (error) return { partition, pending: 0, lag: 0 };
      const group = (groups as unknown[][]).map(toMap).find((g) => g.get('name') === GROUP);
      if (!group) return { partition, pending: 0, lag: 0 };
      const lagValue = group.get('lag');
      return {
        partition,
        pending: Number(group.get('pending') ?? 0),
        lag: lagValue === null || lagValue === undefined ? Number.NaN : Number(lagValue),
      };
    });
  }

  private connect(): Redis {
    if (!this.client) {
      this.client = new Redis({
        ...redisOptions(this.url),
        maxRetriesPerRequest: 1,
        connectionName: 'leo-results-probe',
      });
      // Errors surface through the commands (the collector reports itself down).
      this.client.on('error', () => undefined);
    }
    return this.client;
  }

  async backlog(): Promise<ResultsStreamBacklog> {
    const client = this.connect();
    const length = await client.xlen(this.key);
    if (length === 0) return { length, pending: 0, lag: 0, oldestPendingAgeSeconds: 0 };
    let groups: unknown[][];
    try {
      groups = (await client.xinfo('GROUPS', this.key)) as unknown[][];
    } catch (error) {
      if (error instanceof Error && /no such key/i.test(error.message)) {
        return { length: 0, pending: 0, lag: 0, oldestPendingAgeSeconds: 0 };
      }
      throw error;
    }
    const group = groups.map(toMap).find((g) => g.get('name') === GROUP);
    // No group yet: no engine has read anything, every entry waits.
    if (!group) return { length, pending: 0, lag: length, oldestPendingAgeSeconds: 0 };
    const pending = Number(group.get('pending') ?? 0);
    const lagValue = group.get('lag');
    const lag = lagValue === null || lagValue === undefined ? Number.NaN : Number(lagValue);
    let oldestPendingAgeSeconds = 0;
    if (pending > 0) {
      const summary = (await client.xpending(this.key, GROUP)) as [
        number,
        string | null,
        ...unknown[],
      ];
      const since = Number((summary[1] ?? '').split('-')[0]);
      if (Number.isFinite(since) && since > 0) {
        oldestPendingAgeSeconds = Math.max(0, Date.now() - since) / 1000;
      }
    }
    return { length, pending, lag, oldestPendingAgeSeconds };
  }

  onApplicationShutdown(): void {
    this.client?.disconnect();
    this.client = undefined;
  }
}

function toMap(flat: unknown[]): Map<string, unknown> {
  const map = new Map<string, unknown>();
  for (let i = 0; i + 1 < flat.length; i += 2) map.set(String(flat[i]), flat[i + 1]);
  return map;
}
