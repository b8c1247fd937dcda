import type { DataSourceOptions } from 'typeorm';
import type { ResolvedConfig } from '../config/config.schema.js';
import { MIGRATIONS } from './migrations/index.js';

/** The entity classes a connection maps (TypeORM's own type for them). */
export type EntityList = NonNullable<DataSourceOptions['entities']>;

/**
 * The one description of leo's database connection, shared by the Nest module, the migration
 * runner at start-up and the migration CLI. Schema changes are migrations, never `synchronize`.
 * The entities are the caller's: the application's list is src/app.entities.ts (this folder
 * knows no feature).
 */
export function databaseOptions(
  config: Pick<ResolvedConfig, 'database' | 'role'>,
  entities: EntityList,
  overrides: { poolSize?: number; applicationName?: string } = {},
): DataSourceOptions {
  return {
    type: 'postgres',
    url: config.database.url,
    synchronize: false,
    migrationsRun: false,
    migrations: MIGRATIONS,
    migrationsTableName: 'migrations',
    entities,
    applicationName: overrides.applicationName ?? `leo-${config.role}`,
    poolSize: overrides.poolSize ?? config.database.poolSize,
    extra: {
      connectionTimeoutMillis: 10_000,
      // leo's named statements (src/database/prepared.ts) are planned once per connection and
      // then only executed: without this, Postgres keeps planning the engine's commit
      // statements anew at every call, because their custom plans (which see how few rows a
      // batch has) always look cheaper than the generic one; at moderate load that planning was
      // a third of Postgres' time (decision 0021). One-off statements are planned as before.
      options: '-c plan_cache_mode=force_generic_plan',
    },
  };
}
