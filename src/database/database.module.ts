import { type DynamicModule, Module } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { TypeOrmModule } from '@nestjs/typeorm';
import type { ResolvedConfig } from '../config/config.schema.js';
import { databaseOptions, type EntityList } from './database.options.js';

/**
 * The TypeORM connection pool. Migrations are not run here: main.ts runs them under an advisory
 * lock before the application is built, so no module ever sees an unmigrated schema. The
 * entities are given by the application module (src/app.entities.ts).
 */
@Module({})
export class DatabaseModule {
  static forRoot(entities: EntityList): DynamicModule {
    return {
      module: DatabaseModule,
      imports: [
        TypeOrmModule.forRootAsync({
          inject: [ConfigService],
          useFactory: (config: ConfigService<ResolvedConfig, true>) =>
            databaseOptions(
              {
                database: config.get('database', { infer: true }),
                role: config.get('role', { infer: true }),
              },
              entities,
            ),
        }),
      ],
    };
  }
}
