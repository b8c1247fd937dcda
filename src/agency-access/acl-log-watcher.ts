import { randomBytes } from 'node:crypto';
import {
  Injectable,
  Logger,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
} from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { agencyOfUserName } from '#agency-contract';
import type { ResolvedConfig } from '../config/config.schema.js';
import { Metrics } from '../observability/metrics.js';
import { redisOptions } from '../queue/redis-connection.js';
import { RedisAcl, type AclLogEntry } from './redis-acl.js';

/** How often Redis' ACL log is read. */
const WATCH_MS = 5_000;
/** Entries read at once (Redis keeps 128 by default). */
const ENTRIES = 128;

/** What one refusal is, for counting it once: Redis adds repeats within a minute to one entry. */
const fingerprint = (e: AclLogEntry): string =>
  `${e.username}\u0000${e.reason}\u0000${e.context}\u0000${e.object}`;

/**
 * Turns what Redis refused to an agency's credential (a read of another agency's queue, a write
 * outside its keys, a forbidden command: Redis' ACL log) into leo's log and the metric
 * `leo_agency_refused_total{reason="redis-acl"}`, so an operator sees an adapter trying more than
 * it may. One process watches at a time (a key held in Redis for a few rounds), so a refusal is
 * logged once whatever the number of replicas.
 */
@Injectable()
export class AclLogWatcher implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(AclLogWatcher.name);
  private readonly me = randomBytes(8).toString('hex');
  private readonly key: string;
  private readonly prefix: string;
  private readonly db: number;
  /** Counts seen per refusal, with the round they were last seen in. */
  private seen = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> = Promise.resolve();
  private first = true;

  constructor(
    private readonly acl: RedisAcl,
    private readonly metrics: Metrics,
    config: ConfigService<ResolvedConfig, true>,
  ) {
    this.prefix = config.get('queue', { infer: true }).prefix;
    this.db = redisOptions(config.get('redis', { infer: true }).url).db ?? 0;
    this.key = `${this.prefix}:acl-log-watcher`;
  }

  onApplicationBootstrap(): void {
    this.timer = setInterval(() => {
      this.running = this.running
        .then(async () => {
          await this.round();
        })
        .catch((error: unknown) => {
          this.logger.debug({ err: error }, 'reading the ACL log failed');
        });
    }, WATCH_MS);
    this.timer.unref();
  }

  async onApplicationShutdown(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }

  /** One look at the log (exposed for tests): the refusals logged. */
  async round(): Promise<number> {
    if (!(await this.acl.hold(this.key, this.me, 3 * WATCH_MS))) {
      this.first = true;
      return 0;
    }
    const entries = await this.acl.log(ENTRIES);
    const next = new Map<string, number>();
    let logged = 0;
    for (const entry of entries) {
      const agency = agencyOfUserName(this.prefix, entry.username, this.db);
      if (agency === undefined) continue;
      const key = fingerprint(entry);
      next.set(key, Math.max(next.get(key) ?? 0, entry.count));
      const before = this.seen.get(key) ?? 0;
      // An entry Redis started again (a minute after the last repeat) counts from 0.
      const fresh = entry.count > before ? entry.count - before : 0;
      // On a first look, only what is recent: older entries were another watcher's to log.
      if (fresh === 0 || (this.first && entry.ageSeconds > (2 * WATCH_MS) / 1000)) continue;
      this.logger.warn(
        {
          agency,
          user: entry.username,
          reason: entry.reason,
          context: entry.context,
          object: entry.object.slice(0, 200),
          count: fresh,
        },
        "Redis refused an agency's credential",
      );
      this.metrics.agencyAnswersRefused.inc({ agency, reason: 'redis-acl' }, fresh);
      logged += fresh;
    }
    this.seen = next;
    this.first = false;
    return logged;
  }
}
