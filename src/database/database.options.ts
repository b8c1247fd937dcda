import type { DataSourceOptions } from 'typeorm';
import type { ResolvedConfig } from '../config/config.schema.js';
import { ENTITIES } from './entities.js';
import { MIGRATIONS } from './migrations/index.js';

/**
 * The one description of leo's database connection, shared by the Nest module, the migration
 * runner at start-up and the migration CLI. Schema changes are migrations, never `synchronize`.
 */
export function databaseOptions(
  config: Pick<ResolvedConfig, 'database' | 'role'>,
  overrides: { poolSize?: number; applicationName?: string } = {},
): DataSourceOptions {
  return {
    type: 'postgres',
    url: config.database.url,
    synchronize: false,
    migrationsRun: false,
    migrations: MIGRATIONS,
    migrationsTableName: 'migrations',
    entities: ENTITIES,
    applicationName: overrides.applicationName ?? `leo-${config.role}`,
    poolSize: overrides.poolSize ?? config.database.poolSize,
    extra: { connectionTimeoutMillis: 10_000 },
  };
}
