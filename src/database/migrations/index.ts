import type { MigrationInterface } from 'typeorm';
import { Definitions1763884800000 } from './1763884800000-definitions.js';
import { Engine1763884900000 } from './1763884900000-engine.js';
import { OnceOnly1764633600000 } from './1764633600000-once-only.js';
import { HistoryIndexes1764720000000 } from './1764720000000-history-indexes.js';
import { LazyTimers1764806400000 } from './1764806400000-lazy-timers.js';
import { SubjectFactsRevision1764892800000 } from './1764892800000-subject-facts-revision.js';
import { EnginePartitions1765065600000 } from './1765065600000-engine-partitions.js';
import { EngineBusKey1765072800000 } from './1765072800000-engine-bus-key.js';
import { AgencyCredentials1765152000000 } from './1765152000000-agency-credentials.js';
import { CaseIdempotency1765238400000 } from './1765238400000-case-idempotency.js';

type MigrationClass = new () => MigrationInterface;

/**
 * Every migration, in order. Listed explicitly rather than found by a glob, so the set that runs
 * is the set that was compiled and reviewed. `npm run migration:generate` appends here.
 */
export const MIGRATIONS: MigrationClass[] = [
  Definitions1763884800000,
  Engine1763884900000,
  OnceOnly1764633600000,
  HistoryIndexes1764720000000,
  LazyTimers1764806400000,
  SubjectFactsRevision1764892800000,
  EnginePartitions1765065600000,
  EngineBusKey1765072800000,
  AgencyCredentials1765152000000,
  CaseIdempotency1765238400000,
];
