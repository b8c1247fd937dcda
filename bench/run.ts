import { cpus } from 'node:os';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { runBaseline, type BaselineResult } from './baseline.js';
import { LeoClient } from './client.js';
import { burst, openLoop, planCases, type PhaseResult, type PlannedCase } from './driver.js';
import { startBenchInfra, stopOnSignal, type BenchInfra } from './infra.js';
import { startLeo, ROLES_OF, type Leo, type Topology } from './leo.js';
import { loadHistory, type HistoryReport } from './load-history.js';
import {
  caseTimes,
  checkLedger,
  completedSteps,
  dispatchLatencies,
  openDatabase,
  waitUntilNoneRunning,
  type LedgerCheck,
} from './measure.js';
import { cpuBetween, sampleCpu, type CpuGroup, type CpuSample } from './proc.js';
import {
  readStatements,
  resetStatements,
  statementLines,
  type StatementProfile,
} from './statements.js';
import { percentiles, round, spread, type Percentiles } from './stats.js';

/**
 * `npm run bench`: the standard workload (shared/bench/WORKLOAD.md) against leo on its own
 * Postgres and Redis, through the citizen API, in burst and open-loop rate modes, beside a bare
 * BullMQ baseline of the same DAG. See bench/README.md for how to read what it prints.
 */

type Mode = 'burst' | 'rate';

interface Options {
  modes: Mode[];
  topologies: Topology[];
  runs: number;
  cases: number;
  warmup: number;
  baseline: boolean;
  rate: number | undefined;
  history: number;
  concurrency: number;
  entry: string | undefined;
  /** `--profile DIR`: V8 CPU profiles of the measured leo processes (`node --cpu-prof`). */
  profileDir: string | undefined;
  /** `--statements`: pg_stat_statements and Redis commandstats per case (bench/statements.ts). */
  statements: boolean;
  /** `--env NAME=VALUE` (repeatable): extra configuration of the measured leo processes. */
  leoEnv: Record<string, string>;
  timeoutMs: number;
}

const USAGE = `usage: npm run bench -- [--mode burst|rate|both] [--topology all|split|both] [--runs N]
       [--cases N] [--warmup N] [--rate N] [--concurrency N] [--history N] [--no-baseline | --baseline-only]
       [--timeout-s N] [--entry FILE] [--profile DIR] [--statements] [--env NAME=VALUE]...`;

function positive(name: string, value: string | undefined, fallback: number, min = 1): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || n < min)
    throw new Error(`--${name} must be a number ≥ ${min} (${USAGE})`);
  return n;
}

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      mode: { type: 'string' },
      topology: { type: 'string' },
      runs: { type: 'string' },
      cases: { type: 'string' },
      warmup: { type: 'string' },
      rate: { type: 'string' },
      concurrency: { type: 'string' },
      history: { type: 'string' },
      baseline: { type: 'boolean' },
      'no-baseline': { type: 'boolean' },
      'baseline-only': { type: 'boolean' },
      entry: { type: 'string' },
      profile: { type: 'string' },
      statements: { type: 'boolean' },
      env: { type: 'string', multiple: true },
      'timeout-s': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  const mode = values.mode ?? 'both';
  if (!['burst', 'rate', 'both'].includes(mode)) throw new Error(`--mode: ${mode}? (${USAGE})`);
  const topology = values.topology ?? 'all';
  if (!['all', 'split', 'both'].includes(topology)) {
    throw new Error(`--topology: ${topology}? (${USAGE})`);
  }
  if (values['baseline-only'] && values['no-baseline']) {
    throw new Error('--baseline-only and --no-baseline exclude each other');
  }
  return {
    modes: mode === 'both' ? ['burst', 'rate'] : [mode as Mode],
    topologies: values['baseline-only']
      ? []
      : topology === 'both'
        ? ['all', 'split']
        : [topology as Topology],
    runs: Math.round(positive('runs', values.runs, 3)),
    cases: Math.round(positive('cases', values.cases, 2_000)),
    warmup: Math.round(positive('warmup', values.warmup, 50, 0)),
    baseline: values['no-baseline'] ? false : (values.baseline ?? true),
    rate: values.rate === undefined ? undefined : positive('rate', values.rate, 0, 0.01),
    history: Math.round(positive('history', values.history, 0, 0)),
    concurrency: Math.round(positive('concurrency', values.concurrency, 128)),
    entry: values.entry ? path.resolve(values.entry) : undefined,
    profileDir: values.profile ? path.resolve(values.profile) : undefined,
    statements: values.statements ?? false,
    leoEnv: Object.fromEntries(
      (values.env ?? []).map((pair) => {
        const at = pair.indexOf('=');
        if (at < 1) throw new Error(`--env takes NAME=VALUE, not ${pair}`);
        return [pair.slice(0, at), pair.slice(at + 1)];
      }),
    ),
    timeoutMs: positive('timeout-s', values['timeout-s'], 600) * 1000,
  };
}

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const RESULTS_DIR = path.join(REPO_ROOT, 'bench', 'results');

const log = (message: string): void => {
  process.stderr.write(`[bench] ${message}\n`);
};

// ---- teardown on every exit path ----------------------------------------------------------

const active: { infra?: BenchInfra; leo?: Leo } = {};

let stopped: Promise<void> | undefined;

/**
 * Stops leo, Postgres and Redis, once: a signal's teardown and the failing main's (its
 * statements cut off by the stopping Postgres) wait for the same stop, so neither exits while
 * the other is still removing the bench's directory.
 */
function teardown(): Promise<void> {
  stopped ??= (async () => {
    const { leo, infra } = active;
    await leo?.stop().catch(() => undefined);
    await infra?.stop().catch(() => undefined);
  })();
  return stopped;
}

// ---- one measured phase ---------------------------------------------------------------------

interface PhaseReport {
  schema: 1;
  mode: Mode;
  topology: Topology;
  run: number;
  at: string;
  config: Record<string, unknown>;
  /** Rate mode: the arrivals per second offered (burst: null). */
  offeredRatePerSecond: number | null;
  cases: number;
  casesCompleted: number;
  apiErrors: { count: number; samples: string[] };
  windowMs: number;
  /** First request → last submit answered: how long the API took to take the cases in. */
  submitWindowMs: number;
  casesPerSecond: number;
  stepsPerSecond: number;
  /** Arrival (burst: the burst's start; rate: the scheduled arrival) → completion, ms. */
  caseLatencyMs: Percentiles;
  /** The case latency of the cases that arrived in each slice of the window (5 s), in order. */
  caseLatencyBySliceMs: Array<Percentiles & { fromS: number }>;
  /** The submit's commit → completion, ms: the engine's share. */
  engineLatencyMs: Percentiles;
  apiLatencyMs: { create: Percentiles; preview: Percentiles; submit: Percentiles };
  previewRetries: number;
  dispatchLatencyMs: Percentiles;
  /** From the agency's receipt of a step to the engine's applying its answer. */
  replyLatencyMs: Percentiles;
  cpuMs: Record<string, number>;
  cpuMsPerCase: Record<string, number>;
  cpuMsPerProcess: Array<{ role: string; pid: number; cpuMs: number; cpuMsPerCase: number }>;
  /** All CPU used in the window (servers, leo, client) over the window × cores. */
  machineUtilisation: number;
  memory: Array<{ role: string; pid: number; peakRssMiB: number; rssMiB: number }>;
  check: LedgerCheck;
  baseline?: { casesPerSecond: number; cpuMsPerCase: number };
  statements?: StatementProfile;
  vsBaseline?: { throughput: number; cpuPerCase: number };
}

interface PhaseContext {
  options: Options;
  run: number;
  topology: Topology;
  leo: Leo;
  infra: BenchInfra;
  client: LeoClient;
  databaseUrl: string;
  config: Record<string, unknown>;
}

function cpuGroups(leo: Leo, infra: BenchInfra): CpuGroup[] {
  return [
    { name: 'leo', roots: () => leo.processes.map((p) => p.pid) },
    { name: 'postgres', roots: () => [infra.postgresPid()] },
    { name: 'redis', roots: () => [infra.redisPid()] },
  ];
}

/** The slices the window is cut into for the case latency by arrival time. */
const LATENCY_SLICE_MS = 5_000;

async function measurePhase(
  context: PhaseContext,
  mode: Mode,
  planned: PlannedCase[],
  ratePerSecond: number | undefined,
): Promise<PhaseReport> {
  const { leo, infra, client, options } = context;
  const groups = cpuGroups(leo, infra);
  const db = openDatabase(context.databaseUrl);
  try {
    if (options.statements) await resetStatements(db, infra.redisUrl);
    // Every phase starts just after a checkpoint, so none has the next timed one (every 5 min)
    // in its window and another not: its pages' first writes after it (full-page images in the
    // WAL) land in every window alike.
    await db.query('CHECKPOINT');
    const clientBefore = process.cpuUsage();
    const before = sampleCpu(groups);
    let phase: PhaseResult;
    if (mode === 'burst') {
      phase = await burst(client, planned, options.concurrency);
    } else {
      if (ratePerSecond === undefined) throw new Error('rate mode needs a rate');
      phase = await openLoop(client, planned, ratePerSecond);
    }
    // The CPU window closes at the look that sees no case running (≤ 100 ms after the last
    // completion); that look is the only query made on leo's database during the phase.
    let after: CpuSample = before;
    await waitUntilNoneRunning(db, options.timeoutMs, () => {
      after = sampleCpu(groups);
    });
    const clientCpu = process.cpuUsage(clientBefore);
    const memory = leo.memory();
    const completedCount = (
      await db.query<{ n: string }>(
        "SELECT count(*)::text AS n FROM cases WHERE id = ANY($1) AND status = 'completed'",
        [phase.outcomes.map((o) => o.timings?.caseId).filter((id) => id !== undefined)],
      )
    ).rows[0]?.n;
    const statements = options.statements
      ? await readStatements(db, infra.redisUrl, Number(completedCount ?? 0))
      : undefined;

    const succeeded = phase.outcomes.filter((o) => o.timings !== undefined);
    const failed = phase.outcomes.filter((o) => o.error !== undefined);
    const ids = succeeded.map((o) => o.timings?.caseId ?? '');
    const times = await caseTimes(db, ids);
    const byId = new Map(times.map((t) => [t.id, t]));
    const completed = times.filter((t) => t.status === 'completed' && t.finishedAt !== null);
    const lastCompletion = Math.max(...completed.map((t) => t.finishedAt ?? 0));
    const windowMs = completed.length > 0 ? lastCompletion - phase.startedAt : NaN;
    const steps = await completedSteps(db, ids);
    const caseLatency: number[] = [];
    const engineLatency: number[] = [];
    // By arrival, in slices of the window: where in the phase the slow cases were.
    const bySlice = new Map<number, number[]>();
    for (const o of succeeded) {
      const t = byId.get(o.timings?.caseId ?? '');
      if (t?.status !== 'completed' || t.finishedAt === null) continue;
      caseLatency.push(t.finishedAt - o.scheduledAt);
      const slice = Math.floor((o.scheduledAt - phase.startedAt) / LATENCY_SLICE_MS);
      bySlice.set(slice, [...(bySlice.get(slice) ?? []), t.finishedAt - o.scheduledAt]);
      if (t.submittedAt !== null) engineLatency.push(t.finishedAt - t.submittedAt);
    }
    const check = await checkLedger(db, ids, planned.length);
    if (failed.length > 0) {
      check.ok = false;
      check.problems.unshift(
        `${failed.length} case(s) failed at the API: ${failed[0]?.error ?? ''}`,
      );
    }

    const cpu = cpuBetween(before, after);
    const n = completed.length || 1;
    const leoMs = cpu.ms.leo ?? 0;
    const postgresMs = cpu.ms.postgres ?? 0;
    const redisMs = cpu.ms.redis ?? 0;
    const clientMs = (clientCpu.user + clientCpu.system) / 1000;
    const serverMs = leoMs + postgresMs + redisMs;
    return {
      schema: 1,
      mode,
      topology: context.topology,
      run: context.run,
      at: new Date(phase.startedAt).toISOString(),
      config: context.config,
      offeredRatePerSecond: ratePerSecond === undefined ? null : round(ratePerSecond),
      cases: planned.length,
      casesCompleted: completed.length,
      apiErrors: { count: failed.length, samples: failed.slice(0, 5).map((o) => o.error ?? '') },
      windowMs: round(windowMs),
      submitWindowMs: round(phase.lastSubmitAt - phase.startedAt),
      casesPerSecond: round((completed.length * 1000) / windowMs),
      stepsPerSecond: round((steps * 1000) / windowMs),
      caseLatencyMs: percentiles(caseLatency),
      caseLatencyBySliceMs: [...bySlice.entries()]
        .sort(([a], [b]) => a - b)
        .map(([slice, latencies]) => ({
          fromS: (slice * LATENCY_SLICE_MS) / 1000,
          ...percentiles(latencies),
        })),
      engineLatencyMs: percentiles(engineLatency),
      apiLatencyMs: {
        create: percentiles(succeeded.map((o) => o.timings?.createMs ?? 0)),
        preview: percentiles(succeeded.map((o) => o.timings?.previewMs ?? 0)),
        submit: percentiles(succeeded.map((o) => o.timings?.submitMs ?? 0)),
      },
      previewRetries: succeeded.reduce((sum, o) => sum + (o.timings?.previewRetries ?? 0), 0),
      ...(await dispatchLatencies(db, ids).then(({ dispatch, reply }) => ({
        dispatchLatencyMs: percentiles(dispatch),
        replyLatencyMs: percentiles(reply),
      }))),
      cpuMs: {
        leo: round(leoMs),
        postgres: round(postgresMs),
        redis: round(redisMs),
        total: round(serverMs),
        client: round(clientMs),
        cpuWindowMs: cpu.windowMs,
      },
      cpuMsPerCase: {
        leo: round(leoMs / n),
        postgres: round(postgresMs / n),
        redis: round(redisMs / n),
        total: round(serverMs / n),
        client: round(clientMs / n),
      },
      cpuMsPerProcess: leo.processes.map((p) => ({
        role: p.role,
        pid: p.pid,
        cpuMs: round(cpu.byPid[p.pid] ?? 0),
        cpuMsPerCase: round((cpu.byPid[p.pid] ?? 0) / n),
      })),
      machineUtilisation: round((serverMs + clientMs) / (cpu.windowMs * cpus().length)),
      memory: memory.map((m) => ({
        ...m,
        peakRssMiB: round(m.peakRssMiB),
        rssMiB: round(m.rssMiB),
      })),
      check,
      ...(statements ? { statements } : {}),
    };
  } finally {
    await db.end();
  }
}

// ---- printing -------------------------------------------------------------------------------

const fmt = (v: number | null | undefined, unit = ''): string =>
  v === null || v === undefined || !Number.isFinite(v) ? '–' : `${round(v)}${unit}`;

function summaryLine(r: PhaseReport): string {
  const c = r.cpuMsPerCase;
  const rss = r.memory.map((m) => `${m.role} ${fmt(m.peakRssMiB)}`).join('/');
  const vs = r.vsBaseline
    ? `; vs baseline ${fmt(r.vsBaseline.throughput)}× cases/s, ${fmt(r.vsBaseline.cpuPerCase)}× CPU/case`
    : '';
  return (
    `${r.mode} ${r.topology} run ${r.run}: ${fmt(r.casesPerSecond)} cases/s, ${fmt(r.stepsPerSecond)} steps/s` +
    `${r.offeredRatePerSecond === null ? '' : ` at ${r.offeredRatePerSecond}/s offered`}, ` +
    `CPU ${fmt(c.total)} ms/case (leo ${fmt(c.leo)}, pg ${fmt(c.postgres)}, redis ${fmt(c.redis)}), ` +
    `case p50/p95/p99 ${fmt(r.caseLatencyMs.p50)}/${fmt(r.caseLatencyMs.p95)}/${fmt(r.caseLatencyMs.p99)} ms, ` +
    `create p50/p99 ${fmt(r.apiLatencyMs.create.p50)}/${fmt(r.apiLatencyMs.create.p99)} ms, ` +
    `submit ${fmt(r.apiLatencyMs.submit.p50)}/${fmt(r.apiLatencyMs.submit.p99)} ms, ` +
    `dispatch ${fmt(r.dispatchLatencyMs.p50)}/${fmt(r.dispatchLatencyMs.p99)} ms, ` +
    `reply ${fmt(r.replyLatencyMs.p50)}/${fmt(r.replyLatencyMs.p99)} ms, ` +
    `peak RSS ${rss} MiB, check ${r.check.ok ? 'ok' : `FAILED (${r.check.problems.join('; ')})`}${vs}`
  );
}

function baselineLine(run: number, b: BaselineResult): string {
  return (
    `burst baseline run ${run}: ${fmt(b.casesPerSecond)} cases/s, ${fmt(b.stepsPerSecond)} steps/s, ` +
    `CPU ${fmt(b.cpuMsPerCase.total)} ms/case (node ${fmt(b.cpuMsPerCase.node)}, redis ${fmt(b.cpuMsPerCase.redis)}), ` +
    `${b.completed}/${b.cases} completed`
  );
}

async function writeResult(name: string, body: object): Promise<string> {
  await mkdir(RESULTS_DIR, { recursive: true });
  const file = path.join(RESULTS_DIR, name);
  await writeFile(file, `${JSON.stringify(body, null, 2)}\n`);
  return file;
}

const stamp = (): string => new Date().toISOString().replace(/[:.]/g, '-');

type Figures = Record<string, number | null | undefined>;

function phaseFigures(r: PhaseReport): Figures {
  const figures: Figures = {
    'cases/s': r.casesPerSecond,
    'steps/s': r.stepsPerSecond,
    'CPU ms/case total': r.cpuMsPerCase.total,
    'CPU ms/case leo': r.cpuMsPerCase.leo,
    'CPU ms/case postgres': r.cpuMsPerCase.postgres,
    'CPU ms/case redis': r.cpuMsPerCase.redis,
    'case latency p50 ms': r.caseLatencyMs.p50,
    'case latency p95 ms': r.caseLatencyMs.p95,
    'case latency p99 ms': r.caseLatencyMs.p99,
    'engine latency p50 ms': r.engineLatencyMs.p50,
    'engine latency p99 ms': r.engineLatencyMs.p99,
    'create p50 ms': r.apiLatencyMs.create.p50,
    'create p99 ms': r.apiLatencyMs.create.p99,
    'submit p50 ms': r.apiLatencyMs.submit.p50,
    'submit p99 ms': r.apiLatencyMs.submit.p99,
    'dispatch p50 ms': r.dispatchLatencyMs.p50,
    'dispatch p99 ms': r.dispatchLatencyMs.p99,
    'reply p50 ms': r.replyLatencyMs.p50,
    'reply p99 ms': r.replyLatencyMs.p99,
    'throughput vs baseline ×': r.vsBaseline?.throughput,
    'CPU/case vs baseline ×': r.vsBaseline?.cpuPerCase,
  };
  for (const m of r.memory) figures[`peak RSS ${m.role} MiB`] = m.peakRssMiB;
  return figures;
}

function baselineFigures(b: BaselineResult): Figures {
  return {
    'cases/s': b.casesPerSecond,
    'steps/s': b.stepsPerSecond,
    'CPU ms/case total': b.cpuMsPerCase.total,
    'CPU ms/case node': b.cpuMsPerCase.node,
    'CPU ms/case redis': b.cpuMsPerCase.redis,
  };
}

function printAggregate(title: string, runs: Figures[]): void {
  process.stdout.write(
    `\n${title} (${runs.length} run${runs.length === 1 ? '' : 's'}): median (min–max)\n`,
  );
  const names = [...new Set(runs.flatMap((r) => Object.keys(r)))];
  for (const name of names) {
    const values = runs
      .map((r) => r[name])
      .filter((v): v is number => typeof v === 'number' && Number.isFinite(v));
    const s = spread(values);
    if (!s) continue;
    process.stdout.write(`  ${name.padEnd(28)} ${fmt(s.median)} (${fmt(s.min)}–${fmt(s.max)})\n`);
  }
}

// ---- main -----------------------------------------------------------------------------------

async function leoVersion(): Promise<string> {
  try {
    const pkg = JSON.parse(await readFile(path.join(REPO_ROOT, 'package.json'), 'utf8')) as {
      version?: string;
    };
    return pkg.version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

const TEMPLATE = 'leo_bench_template';

/**
 * The template every run's database is copied from: migrated and seeded by starting leo on it
 * once (its own start-up path), with `--history` cases loaded. A file copy per run gives each
 * run a fresh database without migrating or loading again.
 */
async function prepareTemplate(
  infra: BenchInfra,
  options: Options,
): Promise<HistoryReport | undefined> {
  const url = await infra.createDatabase(TEMPLATE);
  const leo = await startLeo({
    topology: 'all',
    databaseUrl: url,
    redisUrl: infra.redisUrl,
    logDir: infra.dir,
    ...(options.entry ? { entry: options.entry } : {}),
    onSpawn: (pid) => infra.registerPid(pid),
    log,
  });
  active.leo = leo;
  await leo.stop();
  active.leo = undefined;
  if (options.history === 0) return undefined;
  log(`loading ${options.history} completed cases of history`);
  const report = await loadHistory(url, options.history, { log, ownCluster: true });
  log(`history loaded in ${fmt(report.ms / 1000)} s`);
  return report;
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  stopOnSignal(teardown, log);
  const infra = await startBenchInfra(log, { statements: options.statements });
  active.infra = infra;
  log(
    `Postgres (pid ${infra.postgresPid()}) and redis-server (pid ${infra.redisPid()}) in ${infra.dir}`,
  );
  const history = options.topologies.length > 0 ? await prepareTemplate(infra, options) : undefined;
  const common = {
    leoVersion: await leoVersion(),
    node: process.version,
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model ?? 'unknown',
    cases: options.cases,
    warmup: options.warmup,
    concurrency: options.concurrency,
    history: options.history,
    historyLoadMs: history ? round(history.ms) : undefined,
    postgres: await infra.postgresSettings(),
    leoEnvironment: {
      NODE_ENV: 'development',
      LOG_LEVEL: 'warn',
      MOCK_AGENCY_LATENCY_MS: 0,
      MOCK_AGENCY_FAILURE_RATE: 0,
      MOCK_DECISION_DELAY_MS: 0,
      MOCK_REJECTION_RATE: 0,
    },
    ...(options.entry ? { entry: options.entry } : {}),
  };

  const baselines: BaselineResult[] = [];
  const reports = new Map<string, PhaseReport[]>();
  const failures: string[] = [];
  for (let run = 1; run <= options.runs; run += 1) {
    let baseline: BaselineResult | undefined;
    if (options.baseline) {
      await infra.flushRedis();
      baseline = await runBaseline({
        redisUrl: infra.redisUrl,
        redisPid: infra.redisPid(),
        cases: options.cases,
        warmup: options.warmup,
        concurrency: options.concurrency,
        onSpawn: (pid) => infra.registerPid(pid),
      });
      baselines.push(baseline);
      await writeResult(`${stamp()}-burst-baseline.json`, {
        schema: 1,
        mode: 'burst',
        topology: 'baseline',
        run,
        config: common,
        ...baseline,
      });
      process.stdout.write(`${baselineLine(run, baseline)}\n`);
    }
    for (const topology of options.topologies) {
      const database = `leo_bench_${run}_${topology}`;
      const databaseUrl = await infra.createDatabase(database, TEMPLATE);
      await infra.flushRedis();
      const leo = await startLeo({
        topology,
        databaseUrl,
        redisUrl: infra.redisUrl,
        logDir: infra.dir,
        ...(options.entry ? { entry: options.entry } : {}),
        ...(options.profileDir ? { profileDir: options.profileDir } : {}),
        env: options.leoEnv,
        onSpawn: (pid) => infra.registerPid(pid),
        log,
      });
      active.leo = leo;
      // Enough sockets for every lane, and for an open loop to run ahead of a slow leo.
      const client = new LeoClient(leo.apiUrl, Math.max(256, options.concurrency));
      try {
        const context: PhaseContext = {
          options,
          run,
          topology,
          leo,
          infra,
          client,
          databaseUrl,
          config: { ...common, roles: ROLES_OF[topology] },
        };
        let next = 0;
        const plan = async (count: number): Promise<PlannedCase[]> => {
          const planned = await planCases(client, String(run), next, count, options.concurrency);
          next += count;
          return planned;
        };
        if (options.warmup > 0) {
          const warm = await plan(options.warmup);
          const result = await burst(client, warm, options.concurrency);
          const failed = result.outcomes.find((o) => o.error !== undefined);
          if (failed) throw new Error(`warm-up failed: ${failed.error ?? ''}`);
          const db = openDatabase(databaseUrl);
          await waitUntilNoneRunning(db, options.timeoutMs, () => undefined).finally(() =>
            db.end(),
          );
        }
        let burstThroughput: number | undefined;
        const wantsBurst = options.modes.includes('burst');
        // Rate mode without --rate needs this run's burst throughput: measured here even when
        // only rate was asked for (then reported as calibration, not as a result).
        if (wantsBurst || options.rate === undefined) {
          const report = await measurePhase(context, 'burst', await plan(options.cases), undefined);
          burstThroughput = report.casesPerSecond;
          if (wantsBurst) await record(report, baseline);
          else log(`calibration burst: ${fmt(report.casesPerSecond)} cases/s`);
        }
        if (options.modes.includes('rate')) {
          const rate = options.rate ?? (burstThroughput ?? NaN) / 2;
          if (!Number.isFinite(rate) || rate <= 0) throw new Error('no rate for the rate mode');
          const report = await measurePhase(context, 'rate', await plan(options.cases), rate);
          await record(report, baseline);
        }
      } finally {
        client.close();
        active.leo = undefined;
        await leo.stop();
        await infra.dropDatabase(database);
      }
    }
  }

  async function record(report: PhaseReport, baseline: BaselineResult | undefined): Promise<void> {
    if (baseline) {
      report.baseline = {
        casesPerSecond: round(baseline.casesPerSecond),
        cpuMsPerCase: round(baseline.cpuMsPerCase.total),
      };
      report.vsBaseline = {
        throughput: round(report.casesPerSecond / baseline.casesPerSecond),
        cpuPerCase: round((report.cpuMsPerCase.total ?? NaN) / baseline.cpuMsPerCase.total),
      };
    }
    const file = await writeResult(`${stamp()}-${report.mode}-${report.topology}.json`, report);
    process.stdout.write(`${summaryLine(report)}\n`);
    if (report.statements)
      process.stdout.write(`${statementLines(report.statements).join('\n')}\n`);
    log(`written ${path.relative(REPO_ROOT, file)}`);
    const key = `${report.mode} ${report.topology}`;
    reports.set(key, [...(reports.get(key) ?? []), report]);
    if (!report.check.ok)
      failures.push(`${key} run ${report.run}: ${report.check.problems.join('; ')}`);
  }

  if (options.runs > 1) {
    if (baselines.length > 0) printAggregate('burst baseline', baselines.map(baselineFigures));
    for (const [key, list] of reports) printAggregate(key, list.map(phaseFigures));
  }
  if (history) {
    process.stdout.write(
      `\nhistory: ${history.cases} cases (${history.rows} rows) loaded in ${fmt(history.ms / 1000)} s\n`,
    );
  }
  await teardown();
  if (failures.length > 0) {
    process.stderr.write(`\nchecks failed:\n  ${failures.join('\n  ')}\n`);
    process.exitCode = 1;
  }
}

main().catch(async (error: unknown) => {
  process.stderr.write(
    `bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
  );
  await teardown();
  process.exit(1);
});
