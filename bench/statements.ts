import { Redis } from 'ioredis';
import type pg from 'pg';
import { round } from './stats.js';

/**
 * `--statements`: what a phase asked of Postgres and Redis, per completed case. Postgres's
 * figures come from `pg_stat_statements` (the cluster preloads it under this flag), Redis's from
 * `INFO commandstats`; both are reset just before the phase and read just after it. Executor
 * time is wall time inside each statement (waits for locks and I/O included), and the
 * extension itself costs some CPU, so the run's CPU figures are not comparable with runs
 * without the flag.
 */
export interface StatementProfile {
  postgres: {
    callsPerCase: number;
    msPerCase: number;
    /** Of msPerCase, the time spent planning (pg_stat_statements.track_planning). */
    planMsPerCase: number;
    top: Array<{
      statement: string;
      callsPerCase: number;
      msPerCase: number;
      planMsPerCall: number;
      msPerCall: number;
      rowsPerCall: number;
    }>;
  };
  redis: {
    callsPerCase: number;
    usPerCase: number;
    top: Array<{ command: string; callsPerCase: number; usPerCase: number }>;
  };
}

const TOP = 15;

/** Starts counting: the extension in leo's database, and both counters at zero. */
export async function resetStatements(db: pg.Pool, redisUrl: string): Promise<void> {
  await db.query('CREATE EXTENSION IF NOT EXISTS pg_stat_statements');
  await db.query('SELECT pg_stat_statements_reset()');
  const redis = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await redis.connect();
    await redis.config('RESETSTAT');
  } finally {
    redis.disconnect();
  }
}

/** A statement's text as one line, long enough to tell it from the others. */
function label(query: string): string {
  const line = query
    .replace(/--[^\n]*/g, ' ')
    .replace(/\s+/g, ' ')
    .trim();
  return line.length > 110 ? `${line.slice(0, 107)}...` : line;
}

export async function readStatements(
  db: pg.Pool,
  redisUrl: string,
  cases: number,
): Promise<StatementProfile> {
  const n = Math.max(1, cases);
  const { rows } = await db.query<{
    query: string;
    calls: string;
    ms: number;
    plan_ms: number;
    rows: string;
  }>(
    `SELECT query, calls::text, total_exec_time + total_plan_time AS ms,
            total_plan_time AS plan_ms, rows::text
       FROM pg_stat_statements
      WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
        AND query NOT LIKE '%pg_stat_statements%'
      ORDER BY total_exec_time + total_plan_time DESC`,
  );
  const pgCalls = rows.reduce((sum, r) => sum + Number(r.calls), 0);
  const pgMs = rows.reduce((sum, r) => sum + r.ms, 0);
  const planMs = rows.reduce((sum, r) => sum + r.plan_ms, 0);

  const redis = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
  let info = '';
  try {
    await redis.connect();
    info = await redis.info('commandstats');
  } finally {
    redis.disconnect();
  }
  const commands = [...info.matchAll(/^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/gm)].map((m) => ({
    command: m[1] ?? '',
    calls: Number(m[2]),
    usec: Number(m[3]),
  }));
  commands.sort((a, b) => b.usec - a.usec);
  return {
    postgres: {
      callsPerCase: round(pgCalls / n),
      msPerCase: round(pgMs / n),
      planMsPerCase: round(planMs / n),
      top: rows.slice(0, TOP).map((r) => ({
        statement: label(r.query),
        callsPerCase: round(Number(r.calls) / n),
        msPerCase: round(r.ms / n),
        planMsPerCall: round(r.plan_ms / Math.max(1, Number(r.calls))),
        msPerCall: round(r.ms / Math.max(1, Number(r.calls))),
        rowsPerCall: round(Number(r.rows) / Math.max(1, Number(r.calls))),
      })),
    },
    redis: {
      callsPerCase: round(commands.reduce((sum, c) => sum + c.calls, 0) / n),
      usPerCase: round(commands.reduce((sum, c) => sum + c.usec, 0) / n),
      top: commands.slice(0, TOP).map((c) => ({
        command: c.command,
        callsPerCase: round(c.calls / n),
        usPerCase: round(c.usec / n),
      })),
    },
  };
}

/** The profile as the lines printed under a run's summary. */
export function statementLines(profile: StatementProfile): string[] {
  const { postgres, redis } = profile;
  return [
    `  postgres: ${String(postgres.callsPerCase)} statements/case, ${String(postgres.msPerCase)} ms/case in them (planning ${String(postgres.planMsPerCase)})`,
    '    calls/case  ms/case  ms/call  of which plan  rows/call  statement',
    ...postgres.top.map(
      (s) =>
        `    ${String(s.callsPerCase).padStart(10)}  ${String(s.msPerCase).padStart(7)}  ${String(s.msPerCall).padStart(7)}  ${String(s.planMsPerCall).padStart(13)}  ${String(s.rowsPerCall).padStart(9)}  ${s.statement}`,
    ),
    `  redis: ${String(redis.callsPerCase)} commands/case, ${String(redis.usPerCase)} µs/case in them`,
    '    calls/case  µs/case  command',
    ...redis.top.map(
      (c) =>
        `    ${String(c.callsPerCase).padStart(10)}  ${String(c.usPerCase).padStart(7)}  ${c.command}`,
    ),
  ];
}
