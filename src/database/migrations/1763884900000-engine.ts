import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Cases and their step runs, the append-only case history, the transactional outbox, the fact
 * records with provenance, the disclosure log, and the mock agencies' ledgers.
 */
export class Engine1763884900000 implements MigrationInterface {
  name = 'Engine1763884900000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE TABLE cases (
        id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        subject_id         text NOT NULL,
        life_event_key     text NOT NULL,
        definition_id      uuid NOT NULL REFERENCES life_event_definitions (id),
        definition_version integer NOT NULL,
        status             text NOT NULL CHECK (status IN
                             ('open', 'running', 'action-required', 'completed', 'failed', 'cancelled')),
        revision           integer NOT NULL DEFAULT 0,
        created_at         timestamptz NOT NULL DEFAULT now(),
        updated_at         timestamptz NOT NULL DEFAULT now(),
        submitted_at       timestamptz,
        finished_at        timestamptz
      )`);
    await queryRunner.query('CREATE INDEX cases_subject ON cases (subject_id, created_at DESC)');
    await queryRunner.query('CREATE INDEX cases_status ON cases (status, updated_at)');
    await queryRunner.query(`
      CREATE TABLE step_runs (
        id                   uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        case_id              uuid NOT NULL REFERENCES cases (id),
        step_id              text NOT NULL,
        agency               text NOT NULL,
        action               text NOT NULL,
        kind                 text NOT NULL,
        state                text NOT NULL CHECK (state IN ('pending', 'ready', 'dispatched', 'awaiting-decision',
                               'awaiting-citizen', 'completed', 'failed', 'skipped', 'cancelled')),
        attempt              integer NOT NULL DEFAULT 0,
        max_attempts         integer NOT NULL,
        disclosed_fact_ids   uuid[] NOT NULL DEFAULT '{}',
        result               jsonb,
        agency_reference     text,
        expected_decision_at timestamptz,
        deadline_at          timestamptz,
        overdue              boolean NOT NULL DEFAULT false,
        last_error           text,
        ready_at             timestamptz,
        dispatched_at        timestamptz,
        finished_at          timestamptz,
        updated_at           timestamptz NOT NULL DEFAULT now(),
        UNIQUE (case_id, step_id)
      )`);
    // The reconciler's and the admin view's questions: what is in flight, and for how long.
    await queryRunner.query(`
      CREATE INDEX step_runs_in_flight ON step_runs (state, updated_at)
        WHERE state IN ('ready', 'dispatched', 'awaiting-decision', 'awaiting-citizen')`);
    await queryRunner.query(`
      CREATE TABLE case_events (
        id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        case_id    uuid NOT NULL REFERENCES cases (id),
        seq        integer NOT NULL,
        type       text NOT NULL,
        step_id    text,
        data       jsonb NOT NULL DEFAULT '{}',
        created_at timestamptz NOT NULL DEFAULT now(),
        UNIQUE (case_id, seq)
      )`);
    await queryRunner.query(`
      CREATE FUNCTION case_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        RAISE EXCEPTION 'case events are append-only' USING ERRCODE = 'restrict_violation';
      END $$`);
    await queryRunner.query(`
      CREATE TRIGGER case_events_append_only BEFORE UPDATE OR DELETE ON case_events
        FOR EACH ROW EXECUTE FUNCTION case_events_append_only()`);
    await queryRunner.query(`
      CREATE TABLE outbox (
        id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        queue        text NOT NULL,
        job_name     text NOT NULL,
        job_id       text NOT NULL,
        payload      jsonb NOT NULL,
        available_at timestamptz NOT NULL DEFAULT now(),
        created_at   timestamptz NOT NULL DEFAULT now(),
        sent_at      timestamptz
      )`);
    await queryRunner.query('CREATE INDEX outbox_unsent ON outbox (id) WHERE sent_at IS NULL');
    await queryRunner.query(`
      CREATE TABLE fact_records (
        id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        subject_id    text NOT NULL,
        fact_key      text NOT NULL,
        value         jsonb NOT NULL,
        source        text NOT NULL CHECK (source IN ('citizen', 'agency', 'lookup')),
        agency        text,
        case_id       uuid REFERENCES cases (id),
        step_run_id   uuid REFERENCES step_runs (id),
        supersedes    uuid REFERENCES fact_records (id),
        created_at    timestamptz NOT NULL DEFAULT now()
      )`);
    await queryRunner.query(
      'CREATE INDEX fact_records_current ON fact_records (subject_id, fact_key, created_at DESC)',
    );
    await queryRunner.query(`
      CREATE TABLE disclosures (
        id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        subject_id      text NOT NULL,
        case_id         uuid NOT NULL REFERENCES cases (id),
        step_run_id     uuid NOT NULL REFERENCES step_runs (id),
        agency          text NOT NULL,
        fact_record_ids uuid[] NOT NULL,
        fact_keys       text[] NOT NULL,
        basis           text NOT NULL,
        created_at      timestamptz NOT NULL DEFAULT now()
      )`);
    await queryRunner.query(
      'CREATE INDEX disclosures_subject ON disclosures (subject_id, created_at DESC)',
    );
    // The mock agencies' ledgers (src/adapters): every request delivered, and every effect made
    // (once per key). `outcome` is the first answer; a `pending` one is decided when
    // `decision_due_at` has come (`decision`, `decided_at`) and the decision then reported to
    // leo (`decision_reported_at`), for the latest `attempt` that asked.
    await queryRunner.query(`
      CREATE TABLE mock_agency_requests (
        id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        agency          text NOT NULL,
        action          text NOT NULL,
        idempotency_key text NOT NULL,
        step_run_id     uuid NOT NULL,
        attempt         integer NOT NULL,
        facts           jsonb NOT NULL,
        received_at     timestamptz NOT NULL DEFAULT now()
      )`);
    await queryRunner.query(
      'CREATE INDEX mock_agency_requests_key ON mock_agency_requests (agency, idempotency_key, id)',
    );
    await queryRunner.query(`
      CREATE TABLE mock_agency_effects (
        agency               text NOT NULL,
        idempotency_key      text NOT NULL,
        action               text NOT NULL,
        step_run_id          uuid NOT NULL,
        attempt              integer NOT NULL,
        reference            text NOT NULL,
        outcome              jsonb NOT NULL,
        decision             jsonb,
        created_at           timestamptz NOT NULL DEFAULT now(),
        decision_due_at      timestamptz,
        decided_at           timestamptz,
        decision_reported_at timestamptz,
        PRIMARY KEY (agency, idempotency_key)
      )`);
    // The decision poller's question: what is due, or decided but not yet reported.
    await queryRunner.query(`
      CREATE INDEX mock_agency_effects_undecided ON mock_agency_effects (decision_due_at)
        WHERE decision_due_at IS NOT NULL AND decision_reported_at IS NULL`);
    // Bolagsverket's register: organisation numbers it has assigned (limited companies), one
    // per value: 559100-000x onwards (src/adapters/organisation-number.ts), eight million in all.
    await queryRunner.query('CREATE SEQUENCE mock_org_number_seq START 100000 MAXVALUE 7999999');
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query('DROP SEQUENCE mock_org_number_seq');
    await queryRunner.query('DROP TABLE mock_agency_effects');
    await queryRunner.query('DROP TABLE mock_agency_requests');
    await queryRunner.query('DROP TABLE disclosures');
    await queryRunner.query('DROP TABLE fact_records');
    await queryRunner.query('DROP TABLE outbox');
    await queryRunner.query('DROP TABLE case_events');
    await queryRunner.query('DROP FUNCTION case_events_append_only()');
    await queryRunner.query('DROP TABLE step_runs');
    await queryRunner.query('DROP TABLE cases');
  }
}
