import { Module } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { HealthController } from './health.controller.js';
import { LifecycleState } from './lifecycle.state.js';
import { RedisHealthIndicator } from './redis.health.js';

/** Health endpoints are served by every role, so each replica can be probed. */
@Module({
  imports: [TerminusModule.forRoot({ logger: false, errorLogStyle: 'json' })],
  controllers: [HealthController],
  providers: [RedisHealthIndicator, LifecycleState],
})
export class HealthModule {}
