import { type DynamicModule, Module } from '@nestjs/common';
import { CaseMetrics } from './case-metrics.js';

/**
 * Case and step counters, from the engine's notifications of committed changes. Given the very
 * engine module instance the application runs (every role runs one), whose CaseChanges it
 * subscribes to.
 */
@Module({})
export class CaseMetricsModule {
  static observing(engine: DynamicModule): DynamicModule {
    return { module: CaseMetricsModule, imports: [engine], providers: [CaseMetrics] };
  }
}
