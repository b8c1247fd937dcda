import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Partitions of cases and their leases (docs/decisions/0020-partitions.md). A case belongs to
 * one of a fixed number of partitions, by its id (`leo_partition`); each partition is owned by
 * at most one engine process at a time, through its row here: the owner renews `lease_until`
 * and every acquisition moves `epoch` on, which fences the commits of a process that lost it.
 * `engine_members` is who is there to share them (an engine holding no partition yet counts).
 *
 * The number of partitions is fixed here once (32), as Temporal fixes its number of history
 * shards: the partition of a case is part of its identity. Replicas starting at once insert the
 * same rows; ON CONFLICT DO NOTHING makes that harmless.
 */
export class EnginePartitions1765065600000 implements MigrationInterface {
  name = 'EnginePartitions1765065600000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE TABLE engine_partitions (
        partition int PRIMARY KEY,
        owner text,
        epoch bigint NOT NULL DEFAULT 0,
        lease_until timestamptz,
        acquired_at timestamptz
      )`);
    await queryRunner.query(`
      INSERT INTO engine_partitions (partition)
      SELECT generate_series(0, 31) ON CONFLICT DO NOTHING`);
    await queryRunner.query(`
      CREATE TABLE engine_members (
        member text PRIMARY KEY,
        role text NOT NULL,
        started_at timestamptz NOT NULL DEFAULT now(),
        heartbeat_until timestamptz NOT NULL
      )`);
    // The partition of a case (or of any id made like one): its last 16 bits, which are random
    // in a UUID v4 or v7, modulo the number of partitions. src/engine/partitioning.ts computes
    // the same in TypeScript; a test holds the two together.
    await queryRunner.query(`
      CREATE FUNCTION leo_partition(id uuid) RETURNS int
      LANGUAGE sql IMMUTABLE PARALLEL SAFE
      AS $$ SELECT (('x' || right(id::text, 4))::bit(16)::int) % 32 $$`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query('DROP FUNCTION leo_partition(uuid)');
    await queryRunner.query('DROP TABLE engine_members');
    await queryRunner.query('DROP TABLE engine_partitions');
  }
}
