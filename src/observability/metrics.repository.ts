import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { UNFINISHED_CASE_STATUSES } from './metrics.js';

/** What the database says is waiting: the operator's view of work not yet done. */
export interface DatabaseBacklog {
  outboxUnsent: number;
  /** Seconds, by the database's clock; null when nothing is unsent. */
  outboxOldestUnsentAgeSeconds: number | null;
  /** Count per unfinished status (missing statuses: none). */
  casesByStatus: Record<string, number>;
  /** Open steps past their deadline, per agency. */
  overdueStepsByAgency: Record<string, number>;
}

@Injectable()
export class MetricsRepository {
  constructor(@InjectDataSource() private readonly dataSource: DataSource) {}

  /**
   * One round trip, each part on a partial or leading-column index (outbox_unsent, cases_status,
   * step_runs_in_flight, whose predicate the open states are spelt as, so the planner can use
   * it), so a scrape stays cheap however many cases have finished.
   */
  async backlog(): Promise<DatabaseBacklog> {
    const rows = await this.dataSource.query<
      Array<{
        unsent: string;
        oldest_age: number | null;
        cases: Record<string, number>;
        overdue: Record<string, number>;
      }>
    >(
      `SELECT
         (SELECT count(*) FROM outbox WHERE sent_at IS NULL) AS unsent,
         (SELECT EXTRACT(EPOCH FROM now() - min(created_at))::float8
            FROM outbox WHERE sent_at IS NULL) AS oldest_age,
         (SELECT coalesce(jsonb_object_agg(status, n), '{}'::jsonb) FROM
            (SELECT status, count(*) AS n FROM cases WHERE status = ANY($1::text[])
             GROUP BY status) c) AS cases,
         (SELECT coalesce(jsonb_object_agg(agency, n), '{}'::jsonb) FROM
            (SELECT agency, count(*) AS n FROM step_runs
             WHERE state IN ('ready', 'dispatched', 'awaiting-decision', 'awaiting-citizen')
               AND overdue GROUP BY agency) s) AS overdue`,
      [[...UNFINISHED_CASE_STATUSES]],
    );
    const row = rows[0];
    return {
      outboxUnsent: Number(row?.unsent ?? 0),
      outboxOldestUnsentAgeSeconds: row?.oldest_age ?? null,
      casesByStatus: row?.cases ?? {},
      overdueStepsByAgency: row?.overdue ?? {},
    };
  }
}
