import { Injectable, type OnApplicationShutdown } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { Redis } from 'ioredis';
import { agencyResultsStreamKey } from '#agency-contract';
import type { ResolvedConfig } from '../config/config.schema.js';
import { redisOptions } from './redis-connection.js';

/** The consumer group the engines read the results streams in (see ResultStreamConsumer). */
const GROUP = 'engine';

export interface ResultsStreamBacklog {
  agency: string;
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
 * Reads the backlog of the agencies' results streams for the metrics, on a connection of its own
 * made on first use (only processes that are scraped open it).
 */
@Injectable()
export class ResultsStreamProbe implements OnApplicationShutdown {
  private readonly prefix: string;
  private readonly url: string;
  private client: Redis | undefined;

  constructor(config: ConfigService<ResolvedConfig, true>) {
    this.prefix = config.get('queue', { infer: true }).prefix;
    this.url = config.get('redis', { infer: true }).url;
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

  /** The backlog of each agency's results stream. */
  backlogs(agencies: readonly string[]): Promise<ResultsStreamBacklog[]> {
    return Promise.all(agencies.map((agency) => this.backlog(agency)));
  }

  async backlog(agency: string): Promise<ResultsStreamBacklog> {
    const client = this.connect();
    const key = agencyResultsStreamKey(this.prefix, agency);
    const none = { agency, length: 0, pending: 0, lag: 0, oldestPendingAgeSeconds: 0 };
    const length = await client.xlen(key);
    if (length === 0) return none;
    let groups: unknown[][];
    try {
      groups = (await client.xinfo('GROUPS', key)) as unknown[][];
    } catch (error) {
      if (error instanceof Error && /no such key/i.test(error.message)) return none;
      throw error;
    }
    const group = groups.map(toMap).find((g) => g.get('name') === GROUP);
    // No group yet: no engine has read anything, every entry waits.
    if (!group) return { ...none, length, lag: length };
    const pending = Number(group.get('pending') ?? 0);
    const lagValue = group.get('lag');
    const lag = lagValue === null || lagValue === undefined ? Number.NaN : Number(lagValue);
    let oldestPendingAgeSeconds = 0;
    if (pending > 0) {
      const summary = (await client.xpending(key, GROUP)) as [number, string | null, ...unknown[]];
      const since = Number((summary[1] ?? '').split('-')[0]);
      if (Number.isFinite(since) && since > 0) {
        oldestPendingAgeSeconds = Math.max(0, Date.now() - since) / 1000;
      }
    }
    return { agency, length, pending, lag, oldestPendingAgeSeconds };
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
