import { Injectable, Logger, type OnModuleInit } from '@nestjs/common';
import { QueueService } from '../queue/queue.service.js';
import { ResultsStreamProbe } from '../queue/results-stream-probe.js';
import { MetricsRepository } from './metrics.repository.js';
import { Metrics, UNFINISHED_CASE_STATUSES } from './metrics.js';
import { MonitoredQueues } from './monitored-queues.js';

/** A scrape storm (many Prometheus replicas, a dashboard refreshing) reads Redis and Postgres at most this often. */
export const BACKLOG_CACHE_MS = 2_000;
/** Past this a collection counts as failed; Prometheus' own scrape timeout is usually 10 s. */
const COLLECT_TIMEOUT_MS = 3_000;

type Collector = 'queues' | 'database';

interface Run {
  startedAt: number;
  done: Promise<void>;
  settled: boolean;
}

/**
 * The scrape-time gauges: what waits on each queue (Redis) and in the outbox, which cases are
 * unfinished and which steps overdue (Postgres). Each source is read at most once per
 * {@link BACKLOG_CACHE_MS} and never twice at once; a source that fails or hangs reports
 * `leo_metrics_collector_up 0` and drops its series (NaN for the unlabelled outbox gauges)
 * rather than failing the whole exposition.
 */
@Injectable()
export class BacklogMetrics implements OnModuleInit {
  private readonly logger = new Logger(BacklogMetrics.name);
  private readonly runs = new Map<Collector, Run>();

  constructor(
    private readonly metrics: Metrics,
    private readonly queues: QueueService,
    private readonly monitored: MonitoredQueues,
    private readonly repository: MetricsRepository,
    private readonly resultsStream: ResultsStreamProbe,
  ) {}

  onModuleInit(): void {
    this.metrics.addCollector(() => this.collect());
  }

  async collect(): Promise<void> {
    await Promise.all([
      this.cached('queues', () => this.collectQueues()),
      this.cached('database', () => this.collectDatabase()),
    ]);
  }

  private cached(collector: Collector, collect: () => Promise<void>): Promise<void> {
    const previous = this.runs.get(collector);
    const fresh = previous && Date.now() - previous.startedAt < BACKLOG_CACHE_MS;
    // A run still going (a dependency hanging) is waited for again rather than joined by another.
    if (previous && (fresh || !previous.settled)) return this.withTimeout(collector, previous);
    const run: Run = { startedAt: Date.now(), settled: false, done: Promise.resolve() };
    run.done = collect()
      .then(() => {
        this.metrics.collectorUp.set({ collector }, 1);
      })
      .catch((error: unknown) => {
        this.fail(collector, error);
      })
      .finally(() => {
        run.settled = true;
      });
    this.runs.set(collector, run);
    return this.withTimeout(collector, run);
  }

  private async withTimeout(collector: Collector, run: Run): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => {
        resolve('timeout');
      }, COLLECT_TIMEOUT_MS);
    });
    try {
      if ((await Promise.race([run.done, timedOut])) === 'timeout') {
        this.fail(collector, new Error(`no answer within ${COLLECT_TIMEOUT_MS} ms`));
      }
    } finally {
      clearTimeout(timer);
    }
  }

  private fail(collector: Collector, error: unknown): void {
    this.metrics.collectorUp.set({ collector }, 0);
    if (collector === 'queues') {
      this.metrics.queueJobs.reset();
      this.metrics.queueOldestWaitingAge.reset();
      for (const gauge of this.streamGauges()) gauge.reset();
    } else {
      // Unlabelled gauges are always exposed: NaN says "unknown", where 0 would say "none".
      this.metrics.outboxUnsent.set(Number.NaN);
      this.metrics.outboxOldestUnsentAge.set(Number.NaN);
      this.metrics.casesUnfinished.reset();
      this.metrics.stepsOverdue.reset();
    }
    this.logger.warn({ err: error, collector }, 'metrics collection failed');
  }

  private streamGauges() {
    const m = this.metrics;
    return [
      m.resultsStreamLength,
      m.resultsStreamPending,
      m.resultsStreamLag,
      m.resultsStreamOldestPendingAge,
    ];
  }

  private async collectQueues(): Promise<void> {
    const codes = await this.monitored.codes();
    const names = await this.monitored.names();
    const now = Date.now();
    const [snapshots, streams] = await Promise.all([
      Promise.all(
        names.map(async (name) => {
          const queue = this.queues.queue(name).raw;
          const [counts, oldestAgeSeconds] = await Promise.all([
            queue.getJobCounts('waiting', 'prioritized', 'active', 'delayed', 'failed'),
            // An agency's credential can write its own jobs' records: one that does not parse
            // costs its queue this gauge (NaN), not every queue's series.
            queue.getJobs(['waiting'], 0, 0, true).then(
              ([job]) => {
                // Due since it was added, or since its delay ran out.
                const dueAt = job ? job.timestamp + Math.max(0, job.delay) : now;
                return Math.max(0, now - dueAt) / 1000;
              },
              () => Number.NaN,
            ),
          ]);
          return { name, counts, oldestAgeSeconds };
        }),
      ),
      this.resultsStream.backlogs(codes),
    ]);
    const { queueJobs, queueOldestWaitingAge } = this.metrics;
    queueJobs.reset();
    queueOldestWaitingAge.reset();
    for (const { name, counts, oldestAgeSeconds } of snapshots) {
      const count = (state: string): number => counts[state] ?? 0;
      queueJobs.set({ queue: name, state: 'waiting' }, count('waiting') + count('prioritized'));
      queueJobs.set({ queue: name, state: 'active' }, count('active'));
      queueJobs.set({ queue: name, state: 'delayed' }, count('delayed'));
      queueJobs.set({ queue: name, state: 'failed' }, count('failed'));
      queueOldestWaitingAge.set({ queue: name }, oldestAgeSeconds);
    }
    for (const gauge of this.streamGauges()) gauge.reset();
    for (const stream of streams) {
      const labels = { agency: stream.agency };
      this.metrics.resultsStreamLength.set(labels, stream.length);
      this.metrics.resultsStreamPending.set(labels, stream.pending);
      this.metrics.resultsStreamLag.set(labels, stream.lag);
      this.metrics.resultsStreamOldestPendingAge.set(labels, stream.oldestPendingAgeSeconds);
    }
  }

  private async collectDatabase(): Promise<void> {
    const backlog = await this.repository.backlog();
    const { outboxUnsent, outboxOldestUnsentAge, casesUnfinished, stepsOverdue } = this.metrics;
    outboxUnsent.set(backlog.outboxUnsent);
    outboxOldestUnsentAge.set(Math.max(0, backlog.outboxOldestUnsentAgeSeconds ?? 0));
    casesUnfinished.reset();
    for (const status of UNFINISHED_CASE_STATUSES) {
      casesUnfinished.set({ status }, backlog.casesByStatus[status] ?? 0);
    }
    stepsOverdue.reset();
    for (const [agency, count] of Object.entries(backlog.overdueStepsByAgency)) {
      stepsOverdue.set({ agency }, count);
    }
  }
}
