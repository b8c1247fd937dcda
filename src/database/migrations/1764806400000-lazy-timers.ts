import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Deadline timers are armed when a step has been open a while, not at every dispatch
 * (docs/decisions/0015-lazy-deadline-timers.md): `timer_armed_for` is the deadline a timer job
 * was written for, so the arming sweep finds the open steps whose deadline has none yet.
 *
 * The column is nullable without a default, so adding it rewrites nothing (instant on any size
 * of table). Steps open when this runs had their timer written at dispatch: they are marked
 * armed for the deadline they have, found through the in-flight index.
 */
export class LazyTimers1764806400000 implements MigrationInterface {
  name = 'LazyTimers1764806400000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query('ALTER TABLE step_runs ADD COLUMN timer_armed_for timestamptz');
    await queryRunner.query(`
      UPDATE step_runs SET timer_armed_for = deadline_at
       WHERE state IN ('ready', 'dispatched', 'awaiting-decision', 'awaiting-citizen')
         AND deadline_at IS NOT NULL`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query('ALTER TABLE step_runs DROP COLUMN timer_armed_for');
  }
}
