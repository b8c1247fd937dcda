import { createHash, randomBytes } from 'node:crypto';
import { Injectable, type OnApplicationShutdown } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { Redis } from 'ioredis';
import type { ResolvedConfig } from '../config/config.schema.js';
import { redisOptions } from '../queue/redis-connection.js';

/** A session id: 32 random bytes, base64url. */
const SESSION_ID = /^[A-Za-z0-9_-]{43}$/;

export interface DashboardSession {
  /** The administrator's token subject, for the logs. */
  subject: string;
  expiresAt: string;
}

/**
 * Queue dashboard sessions, in Redis so that every `api` replica knows them and they expire on
 * their own. The cookie holds a random id; Redis holds only its SHA-256, so a copy of Redis
 * does not contain usable cookies. Redis losing them only means signing in to the board again.
 */
@Injectable()
export class DashboardSessionsRepository implements OnApplicationShutdown {
  private readonly client: Redis;
  private readonly prefix: string;

  constructor(config: ConfigService<ResolvedConfig, true>) {
    this.prefix = `${config.get('queue', { infer: true }).prefix}:queue-dashboard-session:`;
    this.client = new Redis({
      ...redisOptions(config.get('redis', { infer: true }).url),
      // A board request fails soon when Redis is away, rather than waiting for it to return.
      maxRetriesPerRequest: 1,
      connectionName: 'leo-queue-dashboard',
      disconnectTimeout: 200,
      retryStrategy: (attempt) => Math.min(attempt * 200, 2_000),
    });
    this.client.on('error', () => undefined);
  }

  private key(id: string): string {
    return this.prefix + createHash('sha256').update(id).digest('hex');
  }

  /** Opens a session for `ttlSeconds` and returns its id (the cookie's value). */
  async open(subject: string, ttlSeconds: number): Promise<{ id: string; expiresAt: Date }> {
    const id = randomBytes(32).toString('base64url');
    const expiresAt = new Date(Date.now() + ttlSeconds * 1000);
    const session: DashboardSession = { subject, expiresAt: expiresAt.toISOString() };
    await this.client.set(this.key(id), JSON.stringify(session), 'EX', ttlSeconds);
    return { id, expiresAt };
  }

  /** The live session with this id, or null (unknown, expired, or not an id at all). */
  async find(id: string): Promise<DashboardSession | null> {
    if (!SESSION_ID.test(id)) return null;
    const stored = await this.client.get(this.key(id));
    if (stored === null) return null;
    const session = JSON.parse(stored) as DashboardSession;
    return Date.parse(session.expiresAt) > Date.now() ? session : null;
  }

  async close(id: string): Promise<void> {
    if (SESSION_ID.test(id)) await this.client.del(this.key(id));
  }

  async onApplicationShutdown(): Promise<void> {
    if (this.client.status === 'ready') {
      await this.client.quit().catch(() => {
        this.client.disconnect();
      });
    } else {
      this.client.disconnect();
    }
  }
}
