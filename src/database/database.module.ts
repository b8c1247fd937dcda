import { Module } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { TypeOrmModule } from '@nestjs/typeorm';
import type { ResolvedConfig } from '../config/config.schema.js';
import { databaseOptions } from './database.options.js';

/**
 * The TypeORM connection pool. Migrations are not run here: main.ts runs them under an advisory
 * lock before the application is built, so no module ever sees an unmigrated schema.
 */
@Module({
  imports: [
    TypeOrmModule.forRootAsync({
      inject: [ConfigService],
      useFactory: (config: ConfigService<ResolvedConfig, true>) =>
        databaseOptions({
          database: config.get('database', { infer: true }),
          role: config.get('role', { infer: true }),
        }),
    }),
  ],
})
export class DatabaseModule {}
