import { type DynamicModule, Module } from '@nestjs/common';
import type { Logger as PinoLogger } from 'pino';
import { ConfigModule } from '@nestjs/config';
import { LoggerModule } from 'nestjs-pino';
import { AdaptersModule } from './adapters/adapters.module.js';
import { AgencyAccessModule } from './agency-access/agency-access.module.js';
import { APP_ENTITIES } from './app.entities.js';
import { AuthModule } from './auth/auth.module.js';
import { CitizenModule } from './citizen/citizen.module.js';
import type { ResolvedConfig, Role } from './config/config.schema.js';
import { DatabaseModule } from './database/database.module.js';
import { DefinitionsModule } from './definitions/definitions.module.js';
import { CaseMetricsModule } from './engine/case-metrics.module.js';
import { EngineModule } from './engine/engine.module.js';
import { HealthModule } from './health/health.module.js';
import { createRootLogger, loggerParams } from './observability/logging.js';
import { MetricsModule } from './observability/metrics.module.js';
import { QueueDashboardModule } from './queue-dashboard/queue-dashboard.module.js';
import { QueueModule } from './queue/queue.module.js';

/** Which parts of leo a role runs. `all` is everything in one process (development). */
export function roleRuns(role: Role): { api: boolean; engine: boolean; adapters: boolean } {
  return {
    api: role === 'all' || role === 'api',
    engine: role === 'all' || role === 'engine',
    adapters: role === 'all' || role === 'adapters',
  };
}

@Module({})
export class AppModule {
  /**
   * Builds the module tree for one role from an already validated configuration. Every role
   * gets configuration, logs, Postgres, Redis, health and metrics; `api` adds the HTTP API and
   * the queue dashboard, `engine` the case engine, `adapters` the mock agencies.
   */
  static forRoot(
    config: ResolvedConfig,
    logger: PinoLogger = createRootLogger(config.logLevel, config.role),
  ): DynamicModule {
    const runs = roleRuns(config.role);
    const engine = EngineModule.forRoot({ workers: runs.engine, api: runs.api });
    return {
      module: AppModule,
      imports: [
        ConfigModule.forRoot({
          isGlobal: true,
          ignoreEnvFile: true,
          ignoreEnvVars: true,
          load: [() => config],
        }),
        LoggerModule.forRoot(loggerParams(logger)),
        DatabaseModule.forRoot(APP_ENTITIES),
        QueueModule,
        HealthModule,
        AuthModule.forRoot({ api: runs.api, devTokens: config.auth.devTokens }),
        DefinitionsModule.forRoot({ api: runs.api }),
        engine,
        MetricsModule,
        CaseMetricsModule.observing(engine),
        ...(runs.api || runs.engine ? [AgencyAccessModule.forRoot({ api: runs.api })] : []),
        ...(runs.api ? [CitizenModule, QueueDashboardModule] : []),
        ...(runs.adapters ? [AdaptersModule] : []),
      ],
    };
  }
}
