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
        // No auto-pipelining: ioredis builds a Pipeline for every tick that sends a command, and
        // a Pipeline copies every script BullMQ defines on the connection (about fifty), so at
        // moderate load, where a tick sends one command, that copy cost 3 ms of CPU per case
        // (decision 0021). BullMQ pipelines what it sends together itself (addBulk).
        connection: redisOptions(config.get('redis', { infer: true }).url),
        prefix: config.get('queue', { infer: true }).prefix,
      }),
    }),
  ],
  providers: [QueueService, RedisProbe, ResultsStreamProbe],
  exports: [QueueService, RedisProbe, ResultsStreamProbe],
})
export class QueueModule {}
