import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Agency credentials (docs/decisions/0022-agency-credentials.md): one row per credential leo
 * issued to an agency's adapter, each a Redis user limited to the agency's own keys. Only the
 * SHA-256 of the password is kept (Redis takes a password by its hash too); the password itself
 * is shown once, when issued. A revoked credential stays, for the record of who held what when.
 */
export class AgencyCredentials1765152000000 implements MigrationInterface {
  name = 'AgencyCredentials1765152000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE TABLE IF NOT EXISTS agency_credentials (
        id text PRIMARY KEY CHECK (id ~ '^[0-9a-f]{12}$'),
        agency text NOT NULL,
        username text NOT NULL UNIQUE,
        password_sha256 text NOT NULL CHECK (password_sha256 ~ '^[0-9a-f]{64}$'),
        label text,
        issued_at timestamptz NOT NULL DEFAULT now(),
        issued_by text NOT NULL,
        revoked_at timestamptz,
        revoked_by text
      )`);
    await queryRunner.query(`
      CREATE INDEX IF NOT EXISTS agency_credentials_agency
        ON agency_credentials (agency, issued_at)`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query('DROP TABLE agency_credentials');
  }
}
