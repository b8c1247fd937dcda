import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Once-only provision of data: subjects (the pseudonymous persons cases are about), look-ups of
 * facts from their authoritative agencies (and their disclosures), the citizen's consent to a
 * case's preview, and the messages agencies and leo send the citizen.
 */
export class OnceOnly1764633600000 implements MigrationInterface {
  name = 'OnceOnly1764633600000';

  async up(queryRunner: QueryRunner): Promise<void> {
    // A subject is found by a digest of its identity number, never by the number itself; the
    // number is a fact record like any other (see docs/decisions/0009-once-only.md).
    await queryRunner.query(`
      CREATE TABLE subjects (
        id              text PRIMARY KEY DEFAULT gen_random_uuid()::text,
        identity_digest text UNIQUE,
        created_at      timestamptz NOT NULL DEFAULT now()
      )`);
    // Subjects of cases opened before this migration (by the engine directly) have no digest.
    await queryRunner.query(`
      INSERT INTO subjects (id)
      SELECT subject_id FROM cases UNION SELECT subject_id FROM fact_records
      UNION SELECT subject_id FROM disclosures
      ON CONFLICT DO NOTHING`);
    for (const table of ['cases', 'fact_records', 'disclosures']) {
      await queryRunner.query(
        `ALTER TABLE ${table} ADD CONSTRAINT ${table}_subject_fk FOREIGN KEY (subject_id) REFERENCES subjects (id)`,
      );
    }

    await queryRunner.query(`
      CREATE TABLE lookups (
        id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        case_id            uuid NOT NULL REFERENCES cases (id),
        subject_id         text NOT NULL REFERENCES subjects (id),
        agency             text NOT NULL,
        fact_keys          text[] NOT NULL,
        state              text NOT NULL CHECK (state IN ('pending', 'answered', 'failed')),
        found_keys         text[] NOT NULL DEFAULT '{}',
        unavailable_keys   text[] NOT NULL DEFAULT '{}',
        attempt            integer NOT NULL DEFAULT 1,
        max_attempts       integer NOT NULL,
        disclosed_fact_ids uuid[] NOT NULL DEFAULT '{}',
        last_error         text,
        created_at         timestamptz NOT NULL DEFAULT now(),
        updated_at         timestamptz NOT NULL DEFAULT now(),
        answered_at        timestamptz
      )`);
    await queryRunner.query('CREATE INDEX lookups_case ON lookups (case_id)');
    await queryRunner.query(
      "CREATE INDEX lookups_pending ON lookups (updated_at) WHERE state = 'pending'",
    );

    await queryRunner.query(`
      ALTER TABLE fact_records
        ADD COLUMN lookup_id uuid REFERENCES lookups (id),
        DROP CONSTRAINT fact_records_source_check,
        ADD CONSTRAINT fact_records_source_check
          CHECK (source IN ('citizen', 'e-identification', 'agency', 'lookup'))`);

    // A disclosure is of a step's job or of a look-up's request: exactly one of the two.
    await queryRunner.query(`
      ALTER TABLE disclosures
        ALTER COLUMN step_run_id DROP NOT NULL,
        ADD COLUMN lookup_id uuid REFERENCES lookups (id),
        ADD CONSTRAINT disclosures_one_origin CHECK ((step_run_id IS NULL) <> (lookup_id IS NULL))`);
    await queryRunner.query('CREATE INDEX disclosures_case ON disclosures (case_id, created_at)');

    // The preview the citizen consented to when submitting (its checksum) and when.
    await queryRunner.query(`
      ALTER TABLE cases
        ADD COLUMN consent_checksum text,
        ADD COLUMN consented_at timestamptz`);

    // Messages are stored as a template and parameters (codes, references, dates: never
    // personal data) and rendered in the reader's language.
    await queryRunner.query(`
      CREATE TABLE messages (
        id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        subject_id text NOT NULL REFERENCES subjects (id),
        case_id    uuid REFERENCES cases (id),
        step_id    text,
        sender     text NOT NULL,
        kind       text NOT NULL CHECK (kind IN ('decision', 'request', 'receipt', 'notice')),
        template   text NOT NULL,
        params     jsonb NOT NULL DEFAULT '{}',
        created_at timestamptz NOT NULL DEFAULT now(),
        read_at    timestamptz
      )`);
    await queryRunner.query(
      'CREATE INDEX messages_subject ON messages (subject_id, created_at DESC, id DESC)',
    );

    // The mock agencies' ledger records look-up requests too (they make no effect).
    await queryRunner.query(`
      ALTER TABLE mock_agency_requests
        ALTER COLUMN step_run_id DROP NOT NULL,
        ADD COLUMN lookup_id uuid,
        ADD CONSTRAINT mock_agency_requests_one_origin
          CHECK ((step_run_id IS NULL) <> (lookup_id IS NULL))`);
    // The mock population register finds a person's changes of address by their number.
    await queryRunner.query(`
      CREATE INDEX mock_agency_requests_moves ON mock_agency_requests
        ((facts->>'person.personalNumber')) WHERE action = 'register-change-of-address'`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query('DROP INDEX mock_agency_requests_moves');
    await queryRunner.query(`
      ALTER TABLE mock_agency_requests DROP CONSTRAINT mock_agency_requests_one_origin,
        DROP COLUMN lookup_id`);
    await queryRunner.query('DELETE FROM mock_agency_requests WHERE step_run_id IS NULL');
    await queryRunner.query(
      'ALTER TABLE mock_agency_requests ALTER COLUMN step_run_id SET NOT NULL',
    );
    await queryRunner.query('DROP TABLE messages');
    await queryRunner.query(
      'ALTER TABLE cases DROP COLUMN consent_checksum, DROP COLUMN consented_at',
    );
    await queryRunner.query('DROP INDEX disclosures_case');
    await queryRunner.query('DELETE FROM disclosures WHERE step_run_id IS NULL');
    await queryRunner.query(`
      ALTER TABLE disclosures DROP CONSTRAINT disclosures_one_origin, DROP COLUMN lookup_id,
        ALTER COLUMN step_run_id SET NOT NULL`);
    await queryRunner.query(
      "DELETE FROM fact_records WHERE source IN ('e-identification', 'lookup') AND lookup_id IS NOT NULL",
    );
    await queryRunner.query(
      "UPDATE fact_records SET source = 'citizen' WHERE source = 'e-identification'",
    );
    await queryRunner.query(`
      ALTER TABLE fact_records DROP COLUMN lookup_id,
        DROP CONSTRAINT fact_records_source_check,
        ADD CONSTRAINT fact_records_source_check CHECK (source IN ('citizen', 'agency', 'lookup'))`);
    await queryRunner.query('DROP TABLE lookups');
    for (const table of ['cases', 'fact_records', 'disclosures']) {
      await queryRunner.query(`ALTER TABLE ${table} DROP CONSTRAINT ${table}_subject_fk`);
    }
    await queryRunner.query('DROP TABLE subjects');
  }
}
