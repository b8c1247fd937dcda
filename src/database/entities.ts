/**
 * Every TypeORM entity, listed explicitly (no globs): the Nest module, the migration runner and
 * `npm run migration:generate` must see the same set. Feature modules add theirs here.
 */
import { DEFINITION_ENTITIES } from '../definitions/definition.entities.js';

// eslint-disable-next-line @typescript-eslint/no-unsafe-function-type
export const ENTITIES: Function[] = [...DEFINITION_ENTITIES];
