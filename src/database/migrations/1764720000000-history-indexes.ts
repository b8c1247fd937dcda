import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Indexes for a database with a large stored history (docs/decisions/0012-history-and-indexes.md).
 *
 * The administrators' case search lists cases newest first, keyset-paged by (created_at, id):
 * without an index on that order every page read and sorted the whole cases table. With it a page
 * is a walk of the index from the cursor. Built inside the migration's transaction (the runner
 * holds an advisory lock, so replicas starting at once build it once): it locks cases against
 * writes for as long as the build takes, a second or two for a million cases.
 */
export class HistoryIndexes1764720000000 implements MigrationInterface {
  name = 'HistoryIndexes1764720000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query('CREATE INDEX cases_created ON cases (created_at, id)');
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query('DROP INDEX cases_created');
  }
}
