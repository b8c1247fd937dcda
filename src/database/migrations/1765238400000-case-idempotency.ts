import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The `Idempotency-Key`s of case creations: per citizen (subject), the key's SHA-256 (a key is
 * the client's choice of text, kept only as a digest), the digest of the request it came with,
 * and the case it made. The case's id is derived from the subject and the key, so a retry whose
 * first answer was lost finds the case it made even before this row was written.
 */
export class CaseIdempotency1765238400000 implements MigrationInterface {
  name = 'CaseIdempotency1765238400000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE TABLE IF NOT EXISTS case_idempotency_keys (
        subject_id text NOT NULL,
        key_sha256 text NOT NULL CHECK (key_sha256 ~ '^[0-9a-f]{64}$'),
        request_sha256 text NOT NULL CHECK (request_sha256 ~ '^[0-9a-f]{64}$'),
        case_id uuid NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (subject_id, key_sha256)
      )`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query('DROP TABLE IF EXISTS case_idempotency_keys');
  }
}
