import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * A revision of each subject's facts (docs/decisions/0019-case-cache.md): every change that
 * records facts for a subject moves it on, and a change computed from a subject's facts commits
 * only if it has not moved since they were read. So an engine may keep a case, with its
 * subject's facts, in memory between inputs: facts another case recorded meanwhile fail the
 * commit (and the case is read again) instead of being missed.
 *
 * Adding a NOT NULL column with a constant default rewrites nothing on Postgres 11 and later.
 */
export class SubjectFactsRevision1764892800000 implements MigrationInterface {
  name = 'SubjectFactsRevision1764892800000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(
      'ALTER TABLE subjects ADD COLUMN facts_revision bigint NOT NULL DEFAULT 0',
    );
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query('ALTER TABLE subjects DROP COLUMN facts_revision');
  }
}
