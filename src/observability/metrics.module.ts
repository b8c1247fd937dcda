import { Global, type MiddlewareConsumer, Module, type NestModule } from '@nestjs/common';
import { BacklogMetrics } from './backlog-metrics.js';
import { HttpMetricsMiddleware } from './http-metrics.middleware.js';
import { MetricsController } from './metrics.controller.js';
import { MetricsRepository } from './metrics.repository.js';
import { Metrics } from './metrics.js';
import { MonitoredQueues } from './monitored-queues.js';

/**
 * `/metrics` in every role, the HTTP request histogram, and the scrape-time queue and database
 * gauges. Global, so that what is measured elsewhere (the engine's result worker) needs no
 * import of it; it depends on nothing but the global queue and database providers and the
 * AgencyDirectory the global definitions module provides. The case and step counters come from
 * CaseMetricsModule (src/engine/), which watches the engine: observability imports no engine code.
 */
@Global()
@Module({
  controllers: [MetricsController],
  providers: [Metrics, MonitoredQueues, MetricsRepository, BacklogMetrics, HttpMetricsMiddleware],
  exports: [Metrics, MonitoredQueues],
})
export class MetricsModule implements NestModule {
  configure(consumer: MiddlewareConsumer): void {
    consumer.apply(HttpMetricsMiddleware).forRoutes('*');
  }
}
