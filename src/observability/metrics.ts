import { Injectable } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { StepResult } from '#agency-contract';
import type { ResolvedConfig } from '../config/config.schema.js';

/**
 * Every metric leo exposes on `/metrics`, in one place: their names and labels are wire names
 * (dashboards and alert rules are written against them), chosen once and never renamed.
 * docs/operating.md says what each means and when to worry.
 *
 * Label values are bounded sets and never personal data or ids: life-event keys, agency codes,
 * action names, final states, queue names, route templates, status classes.
 *
 * The registry is the application's own, not prom-client's global one: several applications
 * may run in one process (the tests do), and each must report only itself.
 */
export const METRIC_PREFIX = 'leo_';

/** Case and step outcomes: a case or step ends in one of these states. */
export type CaseOutcome = 'completed' | 'failed' | 'cancelled';
export type StepOutcomeState = 'completed' | 'failed' | 'skipped' | 'cancelled';
export type ResultApplication = 'applied' | 'ignored' | 'error';

/** Queue states reported by `leo_queue_jobs`. */
export const QUEUE_JOB_STATES = ['waiting', 'active', 'delayed', 'failed'] as const;
export type QueueJobState = (typeof QUEUE_JOB_STATES)[number];

/** Unfinished case statuses reported by `leo_cases_unfinished`. */
export const UNFINISHED_CASE_STATUSES = ['open', 'running', 'action-required'] as const;

const MINUTE = 60;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/**
 * Agencies answer within milliseconds (automatic steps on a mock) to weeks (a decision by a
 * case officer): the buckets span both.
 */
const STEP_BUCKETS = [
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
  10,
  30,
  MINUTE,
  5 * MINUTE,
  15 * MINUTE,
  HOUR,
  4 * HOUR,
  DAY,
  3 * DAY,
  7 * DAY,
  30 * DAY,
];
const CASE_BUCKETS = [1, 10, MINUTE, 10 * MINUTE, HOUR, 6 * HOUR, DAY, 3 * DAY, 7 * DAY, 30 * DAY];
/** One transaction on one case: milliseconds normally, seconds when something is wrong. */
const APPLY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** From an agency's answer to its application: queue transit plus waiting for a worker. */
const LAG_BUCKETS = [
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
  10,
  30,
  MINUTE,
  5 * MINUTE,
];
const HTTP_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

@Injectable()
export class Metrics {
  private leaseRenewedAt: number | undefined;

  /** Notes a lease renewal (undefined: holds none), for leo_engine_partition_lease_age_seconds. */
  leaseRenewed(at: number | undefined): void {
    this.leaseRenewedAt = at;
  }

  readonly registry = new Registry();

  /** Cases submitted (the citizen consented and the first steps were dispatched). */
  readonly casesStarted: Counter<'life_event'>;
  /** Submitted cases that reached a final status. */
  readonly casesFinished: Counter<'life_event' | 'outcome'>;
  /** From submission to the final status. */
  readonly caseDuration: Histogram<'life_event' | 'outcome'>;
  /** Steps that reached a final state (also those never dispatched: skipped, cancelled). */
  readonly stepsFinished: Counter<'agency' | 'action' | 'outcome'>;
  readonly stepConfigurationFaults: Counter<'agency' | 'action'>;
  readonly agencyQueueUnserved: Gauge<'agency'>;
  /** From the step's last attempt becoming ready to its final state. */
  readonly stepDuration: Histogram<'agency' | 'action' | 'outcome'>;
  /** One agency result applied (or ignored, or failed) by the engine. */
  readonly resultApplyDuration: Histogram<'outcome'>;
  /**
   * What an agency's channel carried that was refused (decision 0022): an answer naming another
   * agency or for another agency's step, a malformed entry, or a command Redis refused to the
   * agency's credential (its ACL log).
   */
  readonly agencyAnswersRefused: Counter<'agency' | 'reason'>;
  /** From the agency's `reportedAt` to the engine having applied the result. */
  /** Reads and changes per statement (group commit, decision 0014). */
  readonly dbBatchSize: Histogram<'statement'>;
  /** Where a case's turn found the case: kept in memory, or read (decision 0019). */
  readonly caseStateSource: Counter<'source'>;
  /** Writes of a change refused because the case or its subject's facts moved on meanwhile. */
  readonly caseWritesRefused: Counter;
  /** Inputs of one case decided together and written as one change. */
  readonly caseTurnInputs: Histogram;
  readonly resultApplyLag: Histogram<'agency'>;
  /** Partitions this engine holds (decision 0020). */
  readonly partitionsOwned: Gauge;
  /** Partitions this engine acquired, released (its share shrank, or it stopped) or lost. */
  readonly partitionMoves: Counter<'how'>;
  /** Seconds since this engine last renewed its leases (it stops committing near the lease). */
  readonly partitionLeaseAge: Gauge;
  /** Inputs sent to their case's owner in another process, by how they ended. */
  readonly commandsForwarded: Counter<'outcome'>;
  readonly httpRequestDuration: Histogram<'method' | 'route' | 'status_class'>;

  // Gauges set at scrape time (see BacklogMetrics).
  readonly queueJobs: Gauge<'queue' | 'state'>;
  readonly queueOldestWaitingAge: Gauge<'queue'>;
  readonly resultsStreamLength: Gauge<'agency'>;
  readonly resultsStreamPending: Gauge<'agency'>;
  readonly resultsStreamLag: Gauge<'agency'>;
  readonly resultsStreamOldestPendingAge: Gauge<'agency'>;
  readonly outboxUnsent: Gauge;
  readonly outboxOldestUnsentAge: Gauge;
  readonly casesUnfinished: Gauge<'status'>;
  readonly stepsOverdue: Gauge<'agency'>;
  readonly collectorUp: Gauge<'collector'>;

  constructor(config: ConfigService<ResolvedConfig, true>) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: METRIC_PREFIX });
    new Gauge({
      name: 'leo_info',
      help: 'Always 1; the role this process runs, to join with other series.',
      labelNames: ['role'],
      registers,
    }).set({ role: config.get('role', { infer: true }) }, 1);

    this.casesStarted = new Counter({
      name: 'leo_cases_started_total',
      help: 'Cases submitted, by life event.',
      labelNames: ['life_event'],
      registers,
    });
    this.casesFinished = new Counter({
      name: 'leo_cases_finished_total',
      help: 'Submitted cases that reached a final status (completed, failed, cancelled), by life event.',
      labelNames: ['life_event', 'outcome'],
      registers,
    });
    this.caseDuration = new Histogram({
      name: 'leo_case_duration_seconds',
      help: 'Time from submission to the final status of a case, by life event and outcome.',
      labelNames: ['life_event', 'outcome'],
      buckets: CASE_BUCKETS,
      registers,
    });
    this.stepConfigurationFaults = new Counter({
      name: 'leo_step_configuration_faults_total',
      help: 'Attempts an adapter could not do at all (unknown-action: no handler, no mock configured): the step is retried and shows as delayed until an operator configures the action.',
      labelNames: ['agency', 'action'],
      registers,
    });
    this.agencyQueueUnserved = new Gauge({
      name: 'leo_agency_queue_unserved',
      help: "1 while jobs wait on an agency's queue longer than LEO_AGENCY_PICKUP_ALERT_MS unpicked (no adapter serves it), else 0. Set by the engine that watches the queues.",
      labelNames: ['agency'],
      registers,
    });
    this.stepsFinished = new Counter({
      name: 'leo_steps_finished_total',
      help: 'Steps that reached a final state (completed, failed, skipped, cancelled), by agency and action.',
      labelNames: ['agency', 'action', 'outcome'],
      registers,
    });
    this.stepDuration = new Histogram({
      name: 'leo_step_duration_seconds',
      help: "Time from a step's last attempt becoming ready to its final state, by agency, action and outcome (steps that never became ready are not observed).",
      labelNames: ['agency', 'action', 'outcome'],
      buckets: STEP_BUCKETS,
      registers,
    });
    this.resultApplyDuration = new Histogram({
      name: 'leo_result_apply_duration_seconds',
      help: 'Time the engine took to apply one agency result: applied, ignored (duplicate or stale) or error (retried).',
      labelNames: ['outcome'],
      buckets: APPLY_BUCKETS,
      registers,
    });
    this.resultApplyLag = new Histogram({
      name: 'leo_result_apply_lag_seconds',
      help: "Time from an agency's reportedAt (its clock) to the engine having applied the result, by agency.",
      labelNames: ['agency'],
      buckets: LAG_BUCKETS,
      registers,
    });
    this.caseStateSource = new Counter({
      name: 'leo_case_state_source_total',
      help: 'Turns of a case that found it kept in memory (kept) or read it from Postgres (read).',
      labelNames: ['source'],
      registers,
    });
    this.agencyAnswersRefused = new Counter({
      name: 'leo_agency_refused_total',
      help: "What an agency's channel carried that leo or Redis refused, by agency and reason (another-agency, malformed, redis-acl).",
      labelNames: ['agency', 'reason'],
      registers,
    });
    this.caseWritesRefused = new Counter({
      name: 'leo_case_writes_refused_total',
      help: "Changes not written because their case or its subject's facts had moved on (decided again on a fresh read).",
      registers,
    });
    this.partitionsOwned = new Gauge({
      name: 'leo_engine_partitions_owned',
      help: 'Partitions of cases this engine process holds the lease of.',
      registers,
    });
    this.partitionMoves = new Counter({
      name: 'leo_engine_partition_moves_total',
      help: 'Partitions this engine acquired, released (share shrank, or shutdown) or lost (lease taken over).',
      labelNames: ['how'],
      registers,
    });
    this.partitionLeaseAge = new Gauge({
      name: 'leo_engine_partition_lease_age_seconds',
      help: 'Seconds since this engine last renewed its partition leases.',
      registers,
      collect: () => {
        const at = this.leaseRenewedAt;
        this.partitionLeaseAge.set(at === undefined ? 0 : (Date.now() - at) / 1000);
      },
    });
    this.commandsForwarded = new Counter({
      name: 'leo_engine_commands_forwarded_total',
      help: "Inputs sent to their case's owning engine in another process, by outcome (answered, not-owner, timeout, no-owner).",
      labelNames: ['outcome'],
      registers,
    });
    this.caseTurnInputs = new Histogram({
      name: 'leo_case_turn_inputs',
      help: 'Inputs of one case decided together and written as one change.',
      buckets: [1, 2, 3, 4, 6, 8, 16],
      registers,
    });
    this.dbBatchSize = new Histogram({
      name: 'leo_db_batch_size',
      help: 'Case reads (load-cases) or case changes (commit-cases) run together as one statement.',
      labelNames: ['statement'],
      buckets: [1, 2, 4, 8, 16, 32, 64],
      registers,
    });
    this.httpRequestDuration = new Histogram({
      name: 'leo_http_request_duration_seconds',
      help: 'HTTP requests by method, route template and status class (not /metrics or /health).',
      labelNames: ['method', 'route', 'status_class'],
      buckets: HTTP_BUCKETS,
      registers,
    });

    this.queueJobs = new Gauge({
      name: 'leo_queue_jobs',
      help: 'Jobs on a queue by state (waiting, active, delayed, failed), read from Redis at scrape time.',
      labelNames: ['queue', 'state'],
      registers,
    });
    this.queueOldestWaitingAge = new Gauge({
      name: 'leo_queue_oldest_waiting_job_age_seconds',
      help: 'How long the oldest waiting job of a queue has been due; 0 when none waits.',
      labelNames: ['queue'],
      registers,
    });
    this.resultsStreamLength = new Gauge({
      name: 'leo_results_stream_entries',
      help: "Entries in an agency's results stream, applied or not (trimmed at about 100 000).",
      labelNames: ['agency'],
      registers,
    });
    this.resultsStreamPending = new Gauge({
      name: 'leo_results_stream_pending',
      help: "Entries of an agency's results stream read by an engine but not yet acknowledged (being applied, or failed and waiting to be claimed again).",
      labelNames: ['agency'],
      registers,
    });
    this.resultsStreamLag = new Gauge({
      name: 'leo_results_stream_lag',
      help: "Entries of an agency's results stream no engine has read yet (NaN when Redis cannot tell).",
      labelNames: ['agency'],
      registers,
    });
    this.resultsStreamOldestPendingAge = new Gauge({
      name: 'leo_results_stream_oldest_pending_age_seconds',
      help: "Age (since it was written) of the oldest entry of an agency's results stream read but not acknowledged; 0 when none.",
      labelNames: ['agency'],
      registers,
    });
    this.outboxUnsent = new Gauge({
      name: 'leo_outbox_unsent_messages',
      help: 'Outbox rows committed but not yet published to their queue.',
      registers,
    });
    this.outboxOldestUnsentAge = new Gauge({
      name: 'leo_outbox_oldest_unsent_age_seconds',
      help: 'Age of the oldest unpublished outbox row; 0 when all are published.',
      registers,
    });
    this.casesUnfinished = new Gauge({
      name: 'leo_cases_unfinished',
      help: 'Cases not yet final, by status (open, running, action-required).',
      labelNames: ['status'],
      registers,
    });
    this.stepsOverdue = new Gauge({
      name: 'leo_steps_overdue',
      help: 'Steps still waiting for their agency past their deadline, by agency.',
      labelNames: ['agency'],
      registers,
    });
    this.collectorUp = new Gauge({
      name: 'leo_metrics_collector_up',
      help: 'Whether the last scrape-time collection succeeded (1) or failed or timed out (0): queues (Redis), database (Postgres).',
      labelNames: ['collector'],
      registers,
    });
  }

  /**
   * Times one application of a result by the engine. The lag since the agency reported it is
   * observed only for applied results: only then is `result.agency` known to be the step's own
   * agency (anything else is ignored), so the label stays a bounded set.
   */
  async observeResultApplication(
    result: Pick<StepResult, 'agency' | 'reportedAt'>,
    apply: () => Promise<'applied' | 'ignored'>,
  ): Promise<'applied' | 'ignored'> {
    const end = this.resultApplyDuration.startTimer();
    let outcome: ResultApplication = 'error';
    try {
      outcome = await apply();
      return outcome;
    } finally {
      end({ outcome });
      const reportedAt = Date.parse(result.reportedAt);
      if (outcome === 'applied' && Number.isFinite(reportedAt)) {
        this.resultApplyLag.observe(
          { agency: result.agency },
          Math.max(0, Date.now() - reportedAt) / 1000,
        );
      }
    }
  }

  private readonly collectors: Array<() => Promise<void>> = [];

  /**
   * Adds work to run before each exposition (setting scrape-time gauges). It must not throw: a
   * collector reports its own failure (see `collectorUp`) so one broken dependency costs only
   * its own series.
   */
  addCollector(collect: () => Promise<void>): void {
    this.collectors.push(collect);
  }

  /** The exposition in Prometheus' text format, and its content type. */
  async render(): Promise<{ contentType: string; body: string }> {
    await Promise.all(this.collectors.map((collect) => collect()));
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
