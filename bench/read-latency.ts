import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { LeoClient } from './client.js';
import { loadHistory, type HistoryReport } from './load-history.js';
import { startLeo, type Leo } from './leo.js';
import { percentiles, round, type Percentiles } from './stats.js';

/**
 * `npm run bench:reads`: what a citizen's reads cost on a database with a large stored history,
 * through the real HTTP API of a running leo (role `api`), one request at a time by default so
 * the figure is leo's and Postgres's service time, not queueing.
 *
 * Each route is asked `--requests` times (after `--warmup` requests not counted), each time by
 * another stored citizen drawn at random, on a token issued beforehand: every measured request
 * is that citizen's first to this leo, so it includes finding their subject (the digest look-up
 * the subject cache otherwise spares), the dearer case.
 *
 * Routes: GET /v1/cases (the citizen's list), GET /v1/cases/{id} (one case: the engine's
 * loadCase and the resolution), GET /v1/me/disclosures, GET /v1/me/messages, GET /v1/me/facts.
 */

const ROUTES = ['cases', 'case', 'disclosures', 'messages', 'facts'] as const;
type Route = (typeof ROUTES)[number];
const PATH_OF: Record<Route, string> = {
  cases: 'GET /v1/cases',
  case: 'GET /v1/cases/{id}',
  disclosures: 'GET /v1/me/disclosures',
  messages: 'GET /v1/me/messages',
  facts: 'GET /v1/me/facts',
};
/** The target the issue sets for each route. */
const TARGET_P99_MS = 20;

interface Citizen {
  caseId: string;
  personalNumber: string;
  token?: string;
}

export interface RouteFigures extends Percentiles {
  route: string;
  mean: number | null;
  errors: number;
}

export interface ReadReport {
  cases: number;
  requestsPerRoute: number;
  concurrency: number;
  routes: RouteFigures[];
  historyLoadMs?: number;
}

/** Stored citizens at random, each with their completed case: `count` distinct ones. */
async function drawCitizens(url: string, count: number): Promise<Citizen[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const size = await client.query<{ n: string }>(
      "SELECT greatest(reltuples, 1)::bigint AS n FROM pg_class WHERE relname = 'cases'",
    );
    const total = Number(size.rows[0]?.n ?? 1);
    // A Bernoulli sample of the cases table (a little more than needed), then the personal
    // number of each case's subject through the current-facts index.
    const percent = Math.min(100, (100 * count * 1.5) / total);
    const rows = await client.query<{ case_id: string; pnr: string }>(
      `SELECT c.id AS case_id, f.value #>> '{}' AS pnr
         FROM cases c TABLESAMPLE BERNOULLI ($1)
         JOIN LATERAL (SELECT value FROM fact_records
                        WHERE subject_id = c.subject_id AND fact_key = 'person.personalNumber'
                        ORDER BY created_at DESC LIMIT 1) f ON true
        WHERE c.status = 'completed'`,
      [percent],
    );
    const seen = new Set<string>();
    const citizens: Citizen[] = [];
    for (const r of rows.rows) {
      if (seen.has(r.pnr)) continue;
      seen.add(r.pnr);
      citizens.push({ caseId: r.case_id, personalNumber: r.pnr });
    }
    for (let i = citizens.length - 1; i > 0; i -= 1) {
      const j = Math.floor(Math.random() * (i + 1));
      [citizens[i], citizens[j]] = [citizens[j] as Citizen, citizens[i] as Citizen];
    }
    if (citizens.length < count) {
      throw new Error(
        `only ${citizens.length} stored citizens with a completed case; ${count} are needed (fewer --requests, or more history)`,
      );
    }
    return citizens.slice(0, count);
  } finally {
    await client.end();
  }
}

async function ask(client: LeoClient, route: Route, citizen: Citizen): Promise<void> {
  const token = citizen.token ?? '';
  switch (route) {
    case 'cases': {
      const ids = await client.listCases(token);
      if (!ids.includes(citizen.caseId)) throw new Error(`case ${citizen.caseId} not listed`);
      return;
    }
    case 'case': {
      const view = await client.caseView(token, citizen.caseId);
      if (view.status !== 'completed' || view.steps === 0) {
        throw new Error(`case ${citizen.caseId}: ${view.status}, ${view.steps} steps`);
      }
      return;
    }
    default: {
      const n = await client.records(token, route);
      if (n <= 0) throw new Error(`${route}: none for ${citizen.caseId}`);
    }
  }
}

/** Runs `citizens` through one route, `concurrency` at a time; latencies in ms of those measured. */
async function measureRoute(
  client: LeoClient,
  route: Route,
  citizens: Citizen[],
  warmup: number,
  concurrency: number,
  log: (m: string) => void,
): Promise<RouteFigures> {
  const latencies: number[] = [];
  let errors = 0;
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < citizens.length) {
      const i = next;
      next += 1;
      const t = performance.now();
      try {
        await ask(client, route, citizens[i] as Citizen);
      } catch (error) {
        errors += 1;
        if (errors <= 3) log(`${PATH_OF[route]}: ${(error as Error).message}`);
        continue;
      }
      if (i >= warmup) latencies.push(performance.now() - t);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const mean = latencies.length ? latencies.reduce((a, b) => a + b, 0) / latencies.length : null;
  return {
    route: PATH_OF[route],
    ...percentiles(latencies),
    mean: mean === null ? null : round(mean),
    errors,
  };
}

export async function measureReads(options: {
  apiUrl: string;
  databaseUrl: string;
  requests: number;
  warmup: number;
  concurrency: number;
  log: (m: string) => void;
}): Promise<RouteFigures[]> {
  const perRoute = options.requests + options.warmup;
  const citizens = await drawCitizens(options.databaseUrl, perRoute * ROUTES.length);
  const client = new LeoClient(options.apiUrl, Math.max(4, options.concurrency));
  try {
    // Tokens first, outside anything measured (in production the e-ID broker issues them).
    let i = 0;
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (i < citizens.length) {
          const citizen = citizens[i] as Citizen;
          i += 1;
          citizen.token = await client.citizenToken(citizen.personalNumber);
        }
      }),
    );
    options.log(`${citizens.length} tokens issued; ${perRoute} citizens per route`);
    const figures: RouteFigures[] = [];
    for (const [r, route] of ROUTES.entries()) {
      const own = citizens.slice(r * perRoute, (r + 1) * perRoute);
      const f = await measureRoute(
        client,
        route,
        own,
        options.warmup,
        options.concurrency,
        options.log,
      );
      options.log(
        `${f.route}: p50 ${String(f.p50)} ms, p95 ${String(f.p95)} ms, p99 ${String(f.p99)} ms, max ${String(f.max)} ms (${f.count} requests, ${f.errors} errors)`,
      );
      figures.push(f);
    }
    return figures;
  } finally {
    client.close();
  }
}

export function formatReads(report: ReadReport): string {
  const lines = [
    `reads on ${report.cases} stored cases, ${report.requestsPerRoute} requests per route, ${report.concurrency} at a time:`,
    ...report.routes.map(
      (f) =>
        `  ${f.route.padEnd(24)} p50 ${String(f.p50).padStart(6)}  p95 ${String(f.p95).padStart(6)}  p99 ${String(f.p99).padStart(6)}  max ${String(f.max).padStart(7)} ms  ${(f.p99 ?? Infinity) < TARGET_P99_MS ? 'ok' : `OVER ${TARGET_P99_MS} ms p99`}${f.errors ? `  ${f.errors} errors` : ''}`,
    ),
  ];
  return lines.join('\n');
}

// ---- `npm run bench:reads` -------------------------------------------------------------------

async function cli(): Promise<void> {
  const { values } = parseArgs({
    options: {
      history: { type: 'string' },
      'database-url': { type: 'string' },
      'redis-url': { type: 'string' },
      requests: { type: 'string' },
      warmup: { type: 'string' },
      concurrency: { type: 'string' },
      plans: { type: 'boolean' },
      json: { type: 'string' },
    },
  });
  const number = (name: string, value: string | undefined, fallback: number): number => {
    const n = value === undefined ? fallback : Number(value);
    if (!Number.isInteger(n) || n < 0) throw new Error(`--${name} must be a whole number`);
    return n;
  };
  const requests = number('requests', values.requests, 2_000);
  const warmup = number('warmup', values.warmup, 200);
  const concurrency = Math.max(1, number('concurrency', values.concurrency, 1));
  const history = number('history', values.history, 50_000);
  const log = (m: string): void => {
    process.stderr.write(`[reads] ${m}\n`);
  };

  const given = values['database-url'];
  let url: string;
  let redisUrl: string;
  let logDir: string;
  let historyReport: HistoryReport | undefined;
  let stopInfra = (): Promise<void> => Promise.resolve();
  let succeeded = false;
  let onSpawn: ((pid: number) => Promise<void>) | undefined;
  if (given) {
    url = given;
    redisUrl = values['redis-url'] ?? process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
    logDir = await mkdtempIn('leo-reads-');
    const dir = logDir;
    // leo's log is kept only when something failed.
    stopInfra = async () => {
      if (succeeded) {
        const { rm } = await import('node:fs/promises');
        await rm(dir, { recursive: true, force: true });
      } else {
        log(`leo's log is in ${dir}`);
      }
    };
  } else {
    const { startBenchInfra, stopOnSignal } = await import('./infra.js');
    const infra = await startBenchInfra(log);
    stopInfra = () => infra.stop();
    stopOnSignal(() => stopInfra(), log);
    onSpawn = (pid) => infra.registerPid(pid);
    redisUrl = infra.redisUrl;
    logDir = infra.dir;
    try {
      url = await infra.createDatabase('leo_reads');
      // leo's own start-up migrates and seeds the database; then the history goes in.
      const once = await startLeo({
        topology: 'all',
        databaseUrl: url,
        redisUrl,
        logDir,
        onSpawn,
        log,
      });
      await once.stop();
      log(`loading ${history} completed cases of history`);
      historyReport = await loadHistory(url, history, { log, ownCluster: true });
      log(`history: ${historyReport.rows} rows in ${(historyReport.ms / 1000).toFixed(1)} s`);
    } catch (error) {
      await stopInfra();
      throw error;
    }
  }
  let leo: Leo | undefined;
  try {
    leo = await startLeo({
      topology: 'api',
      databaseUrl: url,
      redisUrl,
      logDir,
      // Its own queue prefix: on a shared Redis, nothing of anyone else's is touched.
      env: { QUEUE_PREFIX: '{leo-reads}' },
      ...(onSpawn ? { onSpawn } : {}),
      log,
    });
    const routes = await measureReads({
      apiUrl: leo.apiUrl,
      databaseUrl: url,
      requests,
      warmup,
      concurrency,
      log,
    });
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    const cases = Number(
      (await client.query<{ n: string }>('SELECT count(*) AS n FROM cases')).rows[0]?.n ?? 0,
    );
    await client.end();
    const report: ReadReport = {
      cases,
      requestsPerRoute: requests,
      concurrency,
      routes,
      ...(historyReport ? { historyLoadMs: round(historyReport.ms) } : {}),
    };
    process.stdout.write(`${formatReads(report)}\n`);
    const file =
      values.json ??
      path.join(
        path.dirname(fileURLToPath(import.meta.url)),
        '..',
        '..',
        'bench',
        'results',
        `${new Date().toISOString().replace(/[:.]/g, '-')}-reads.json`,
      );
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(
      file,
      JSON.stringify(
        { ...report, machine: { cpus: os.cpus().length, node: process.version } },
        null,
        2,
      ),
    );
    log(`results in ${file}`);
    if (routes.some((f) => f.errors > 0)) process.exitCode = 1;
    else succeeded = true;
    if (values.plans) {
      const { explainAll, formatPlans } = await import('./plans.js');
      process.stdout.write(`\nplans:\n${formatPlans(await explainAll(url))}\n`);
    }
  } finally {
    await leo?.stop();
    await stopInfra();
  }
}

async function mkdtempIn(prefix: string): Promise<string> {
  const { mkdtemp } = await import('node:fs/promises');
  return mkdtemp(path.join(os.tmpdir(), prefix));
}

const invokedAs = process.argv[1] ? pathToFileURL(path.resolve(process.argv[1])).href : '';
if (import.meta.url === invokedAs || fileURLToPath(import.meta.url) === process.argv[1]) {
  cli().catch((error: unknown) => {
    process.stderr.write(
      `read benchmark failed: ${error instanceof Error ? error.message : String(error)}\n`,
    );
    process.exit(1);
  });
}
