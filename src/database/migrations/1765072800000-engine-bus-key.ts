import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Secrets leo's processes share through Postgres, which agency adapters cannot read (they reach
 * leo only through Redis and its REST API): the key the engine bus seals its messages with
 * (docs/decisions/0020-partitions.md). The first process that needs a secret makes it.
 */
export class EngineBusKey1765072800000 implements MigrationInterface {
  name = 'EngineBusKey1765072800000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE TABLE engine_secrets (
        name text PRIMARY KEY,
        value bytea NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now()
      )`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query('DROP TABLE engine_secrets');
  }
}
