import { Injectable, type OnApplicationShutdown } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { Redis } from 'ioredis';
import type { ResolvedConfig } from '../config/config.schema.js';
import { redisOptions } from './redis-connection.js';

/** A small connection for health checks: it fails fast instead of queueing commands. */
@Injectable()
export class RedisProbe implements OnApplicationShutdown {
  private readonly client: Redis;

  constructor(config: ConfigService<ResolvedConfig, true>) {
    this.client = new Redis({
      ...redisOptions(config.get('redis', { infer: true }).url),
      maxRetriesPerRequest: 1,
      enableOfflineQueue: false,
      connectionName: 'leo-health',
      // ioredis otherwise keeps a refused socket around for 2 s after disconnect().
      disconnectTimeout: 200,
      retryStrategy: (attempt) => Math.min(attempt * 200, 2_000),
    });
    // Errors surface through ping(); without a listener ioredis would print them.
    this.client.on('error', () => undefined);
  }

  /** Round-trip time of a PING in milliseconds; rejects when Redis cannot be reached. */
  async ping(timeoutMs: number): Promise<number> {
    const started = performance.now();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        reject(new Error(`no answer within ${timeoutMs} ms`));
      }, timeoutMs);
    });
    try {
      await Promise.race([this.client.ping(), timeout]);
      return Math.round(performance.now() - started);
    } finally {
      clearTimeout(timer);
    }
  }

  async onApplicationShutdown(): Promise<void> {
    if (this.client.status === 'ready') {
      await this.client.quit().catch(() => {
        this.client.disconnect();
      });
    } else {
      // Not connected (Redis down): stop reconnecting rather than wait for it.
      this.client.disconnect();
    }
  }
}
