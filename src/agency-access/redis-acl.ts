import { Injectable, Logger, type OnApplicationShutdown } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { Redis } from 'ioredis';
import type { ResolvedConfig } from '../config/config.schema.js';
import { redisOptions } from '../queue/redis-connection.js';

/** Take the key if free, renew it if ours; 1 when ours afterwards. */
const HOLD = `
if redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2], 'NX') then return 1 end
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0`;

/** One entry of Redis' ACL log: a command, key or channel refused to a user. */
export interface AclLogEntry {
  count: number;
  reason: string;
  context: string;
  object: string;
  username: string;
  ageSeconds: number;
}

/**
 * The Redis commands that manage users (`ACL …`, `CLIENT KILL USER`), on a connection of leo's
 * own, made on first use. leo's own Redis user must be allowed them (the default user is); a
 * managed Redis without ACLs cannot hold agency credentials (docs/operating.md).
 */
@Injectable()
export class RedisAcl implements OnApplicationShutdown {
  private readonly logger = new Logger(RedisAcl.name);
  private readonly url: string;
  private client: Redis | undefined;

  constructor(config: ConfigService<ResolvedConfig, true>) {
    this.url = config.get('redis', { infer: true }).url;
  }

  private connect(): Redis {
    if (!this.client) {
      this.client = new Redis({
        ...redisOptions(this.url),
        maxRetriesPerRequest: 1,
        // A Redis that hangs fails the change (503) instead of holding its lock and connection.
        commandTimeout: 5_000,
        connectionName: 'leo-acl',
      });
      this.client.on('error', (error) => {
        this.logger.debug({ err: error }, 'acl connection error');
      });
    }
    return this.client;
  }

  /** `ACL SETUSER name rules…` (creating or replacing the user). */
  async setUser(name: string, rules: readonly string[]): Promise<void> {
    await this.connect().call('ACL', 'SETUSER', name, ...rules);
  }

  /** `ACL DELUSER name`: the user is gone and its connections are closed. */
  async deleteUser(name: string): Promise<void> {
    await this.connect().call('ACL', 'DELUSER', name);
    // Redis closes a deleted user's connections itself; this makes it explicit (and covers an
    // older server).
    await this.connect()
      .call('CLIENT', 'KILL', 'USER', name)
      .catch(() => undefined);
  }

  /** The users Redis knows. */
  async users(): Promise<string[]> {
    return (await this.connect().call('ACL', 'USERS')) as string[];
  }

  /** The newest `count` entries of the ACL log. */
  async log(count: number): Promise<AclLogEntry[]> {
    const raw = (await this.connect().call('ACL', 'LOG', String(count))) as unknown[][];
    return raw.map((flat) => {
      const entry = new Map<string, string>();
      for (let i = 0; i + 1 < flat.length; i += 2) {
        const value = flat[i + 1];
        entry.set(
          String(flat[i]),
          typeof value === 'string' || typeof value === 'number' ? String(value) : '',
        );
      }
      return {
        count: Number(entry.get('count') ?? 0),
        reason: entry.get('reason') ?? '',
        context: entry.get('context') ?? '',
        object: entry.get('object') ?? '',
        username: entry.get('username') ?? '',
        ageSeconds: Number(entry.get('age-seconds') ?? 0),
      };
    });
  }

  /**
   * Takes `key` for `value` for `ms` if nobody holds it, or renews it if `value` does, in one
   * step: whether `value` holds it now.
   */
  async hold(key: string, value: string, ms: number): Promise<boolean> {
    const held = await this.connect().eval(HOLD, 1, key, value, String(ms));
    return held === 1;
  }

  onApplicationShutdown(): void {
    this.client?.disconnect();
    this.client = undefined;
  }
}
