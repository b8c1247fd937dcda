import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The catalogue (fact types, agencies) with its history, and versioned life-event definitions.
 *
 * Published definitions are immutable at the database level, not only in code: a trigger
 * refuses any change to a published or deprecated row except deprecating it, and refuses
 * deleting one. Running cases point at these rows for as long as they exist.
 */
export class Definitions1763884800000 implements MigrationInterface {
  name = 'Definitions1763884800000';

  async up(queryRunner: QueryRunner): Promise<void> {
    // Fact types and agencies, each kept whole as the JSON document it was authored as.
    await queryRunner.query(`
      CREATE TABLE catalogue_entries (
        kind          text NOT NULL CHECK (kind IN ('fact-type', 'agency')),
        key           text NOT NULL,
        body          jsonb NOT NULL,
        checksum      text NOT NULL,
        revision      integer NOT NULL,
        origin        text NOT NULL CHECK (origin IN ('seed', 'admin')),
        seed_checksum text,
        updated_at    timestamptz NOT NULL DEFAULT now(),
        updated_by    text NOT NULL,
        PRIMARY KEY (kind, key)
      )`);
    // Every change to the catalogue, kept: who changed which entry to what, and when.
    await queryRunner.query(`
      CREATE TABLE catalogue_revisions (
        id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        kind        text NOT NULL CHECK (kind IN ('fact-type', 'agency')),
        entry_key   text NOT NULL,
        revision    integer NOT NULL,
        body        jsonb NOT NULL,
        checksum    text NOT NULL,
        changed_at  timestamptz NOT NULL DEFAULT now(),
        changed_by  text NOT NULL,
        UNIQUE (kind, entry_key, revision)
      )`);
    await queryRunner.query(`
      CREATE TABLE life_event_definitions (
        id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        key            text NOT NULL,
        version        integer NOT NULL CHECK (version >= 1),
        status         text NOT NULL CHECK (status IN ('draft', 'published', 'deprecated')),
        body           jsonb NOT NULL,
        checksum       text,
        origin         text NOT NULL CHECK (origin IN ('seed', 'admin')),
        created_at     timestamptz NOT NULL DEFAULT now(),
        created_by     text NOT NULL,
        updated_at     timestamptz NOT NULL DEFAULT now(),
        published_at   timestamptz,
        published_by   text,
        deprecated_at  timestamptz,
        deprecated_by  text,
        UNIQUE (key, version),
        CHECK (status = 'draft' OR (checksum IS NOT NULL AND published_at IS NOT NULL))
      )`);
    // At most one draft per life event: edits go to it until it is published or discarded.
    await queryRunner.query(
      `CREATE UNIQUE INDEX life_event_definitions_one_draft ON life_event_definitions (key) WHERE status = 'draft'`,
    );
    await queryRunner.query(`
      CREATE FUNCTION life_event_definitions_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF TG_OP = 'DELETE' THEN
          IF OLD.status <> 'draft' THEN
            RAISE EXCEPTION 'published life-event definition %/% cannot be deleted', OLD.key, OLD.version
              USING ERRCODE = 'restrict_violation';
          END IF;
          RETURN OLD;
        END IF;
        IF OLD.status = 'draft' THEN
          RETURN NEW;
        END IF;
        IF OLD.status = 'published' AND NEW.status = 'deprecated'
           AND NEW.body = OLD.body AND NEW.checksum = OLD.checksum AND NEW.key = OLD.key
           AND NEW.version = OLD.version AND NEW.published_at = OLD.published_at THEN
          RETURN NEW;
        END IF;
        RAISE EXCEPTION 'published life-event definition %/% is immutable', OLD.key, OLD.version
          USING ERRCODE = 'restrict_violation';
      END $$`);
    await queryRunner.query(`
      CREATE TRIGGER life_event_definitions_immutable
        BEFORE UPDATE OR DELETE ON life_event_definitions
        FOR EACH ROW EXECUTE FUNCTION life_event_definitions_immutable()`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query('DROP TABLE life_event_definitions');
    await queryRunner.query('DROP FUNCTION life_event_definitions_immutable()');
    await queryRunner.query('DROP TABLE catalogue_revisions');
    await queryRunner.query('DROP TABLE catalogue_entries');
  }
}
