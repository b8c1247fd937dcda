import { Global, Module } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { BullModule } from '@nestjs/bullmq';
import type { ResolvedConfig } from '../config/config.schema.js';
import { redisOptions } from './redis-connection.js';
import { QueueService } from './queue.service.js';
import { RedisProbe } from './redis-probe.js';
import { ResultsStreamProbe } from './results-stream-probe.js';

@Global()
@Module({
  imports: [
    BullModule.forRootAsync({
      inject: [ConfigService],
      useFactory: (config: ConfigService<ResolvedConfig, true>) => ({
        // Commands issued in one tick go out in one write (BullMQ's scripts for a batch of jobs).
        connection: {
          ...redisOptions(config.get('redis', { infer: true }).url),
          enableAutoPipelining: true,
        },
        prefix: config.get('queue', { infer: true }).prefix,
      }),
    }),
  ],
  providers: [QueueService, RedisProbe, ResultsStreamProbe],
  exports: [QueueService, RedisProbe, ResultsStreamProbe],
})
export class QueueModule {}
