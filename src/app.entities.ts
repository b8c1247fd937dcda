/**
 * Every TypeORM entity, listed explicitly (no globs): the Nest module, the migration runner and
 * `npm run migration:generate` must see the same set. Feature modules add theirs here. Listed
 * beside app.module.ts, where the features are known: database/ imports no feature folder, so
 * it is handed this list (databaseOptions, DatabaseModule.forRoot).
 */
import { DEFINITION_ENTITIES } from './definitions/definition.entities.js';

// eslint-disable-next-line @typescript-eslint/no-unsafe-function-type
export const APP_ENTITIES: Function[] = [...DEFINITION_ENTITIES];
