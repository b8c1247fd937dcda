import {
  Inject,
  Injectable,
  Logger,
  type BeforeApplicationShutdown,
  type OnApplicationBootstrap,
  type OnModuleDestroy,
} from '@nestjs/common';
import { createHash } from 'node:crypto';
import { ConfigService } from '@nestjs/config';
import { getSharedConfigToken } from '@nestjs/bullmq';
import type { QueueOptions } from 'bullmq';
import {
  RESULTS_STREAM_MAXLEN,
  STEP_RESULT,
  agencyQueueName,
  agencyResultsStreamKey,
  createAgencyWorker,
  resultEntryFields,
  describeHandlerError,
  type AgencyWorker,
  type AgencyWorkerLogger,
  type FactValue,
  type StepResult,
  type StepOutcome,
} from '#agency-contract';
import { createFactValidator, type FactValidator } from '#facts';
import { canonicalJson, queuedAgencies, type Agency } from '#workflow';
import { LogBudget } from '../common/log-budget.js';
import type { ResolvedConfig } from '../config/config.schema.js';
import { CatalogueSeedService } from '../definitions/catalogue-seed.service.js';
import { QueueService } from '../queue/queue.service.js';
import { DefinitionsRepository } from '../definitions/definitions.repository.js';
import { MOCK_AGENCIES, composeMock, unservedActions } from '#mock-agencies';
import { MockAgencyRunner, UndecidableNow, type RandomSource } from './mock-agency-runner.js';
import {
  MockLedgerRepository,
  type Application,
  type EffectRecord,
} from './mock-ledger.repository.js';

/** The random source of the mock agencies (failures, refusals): Math.random unless replaced. */
export const MOCK_RANDOM = Symbol('MOCK_RANDOM');

/** Decisions and reports handled per round of the poller, per query. */
const POLL_BATCH = 100;
/** An attempt may run this long beyond the simulated latency before it times out. */
const TIMEOUT_MARGIN_MS = 30_000;

/** How often the mocks follow the catalogue: an agency added, changed or switched. */
export const BIND_INTERVAL_MS = 2_000;

interface Running {
  runner: MockAgencyRunner;
  worker: AgencyWorker;
  /** The checksum of the catalogue entry (or the instance of one) the mock was composed from. */
  checksum: string;
}

/**
 * Runs leo's mock of every agency the catalogue says is served by a mock (`adapter: mock`), each
 * an SDK worker on its queue, on leo's Redis connection and queue prefix; and decides their
 * pending applications when due, from the ledger (so decisions survive a restart), reporting
 * them through the SDK. It follows the catalogue at run time (every {@link BIND_INTERVAL_MS}):
 * an agency added through the API is served at once, one whose entry changed (an action's mock
 * configured) is served by a new worker, and one switched to an external adapter is let go,
 * after its jobs in flight answer. No restart.
 */
@Injectable()
export class MockAgenciesService
  implements OnApplicationBootstrap, OnModuleDestroy, BeforeApplicationShutdown
{
  private readonly logger = new Logger('MockAgencies');
  private readonly failedDecisions = new LogBudget(10, 60_000);
  private readonly running = new Map<string, Running>();
  /**
   * The runners of agencies no longer served by a mock: applications they left pending are
   * still decided when due and reported on the agency's stream, as the mock promised.
   */
  private readonly retired = new Map<string, MockAgencyRunner>();
  /** Workers being closed (replaced or let go): shutdown waits for them. */
  private readonly closing = new Set<Promise<void>>();
  private timer: NodeJS.Timeout | undefined;
  private bindTimer: NodeJS.Timeout | undefined;
  private polling: Promise<void> | undefined;
  private binding: Promise<void> | undefined;
  private stopped = false;
  /** The fact catalogue's validator, compiled again only when a fact type changed. */
  private facts: { version: string; validator: FactValidator } | undefined;

  constructor(
    @Inject(getSharedConfigToken()) private readonly shared: QueueOptions,
    private readonly config: ConfigService<ResolvedConfig, true>,
    private readonly ledger: MockLedgerRepository,
    private readonly catalogue: DefinitionsRepository,
    private readonly seed: CatalogueSeedService,
    private readonly queues: QueueService,
    @Inject(MOCK_RANDOM) private readonly random: RandomSource,
  ) {}

  /** The SDK worker of an agency, while running (tests use it to wait for readiness). */
  worker(agency: string): AgencyWorker | undefined {
    return this.running.get(agency)?.worker;
  }

  async onApplicationBootstrap(): Promise<void> {
    const settings = this.config.get('mockAgencies', { infer: true });
    // The catalogue this process seeds (or another replica did) is what the mocks serve.
    await this.seed.seeded();
    await this.bind();
    this.logger.log(
      { agencies: [...this.running.keys()], ...settings },
      'mock agencies are serving their queues',
    );
    this.scheduleBinding();
    // Decisions are due a quarter of the delay apart at most; with no delay they are made at
    // once, and the poller only picks up what an earlier run with a delay left undecided (or an
    // action configured with its own delay).
    this.schedule(
      settings.decisionDelayMs === 0
        ? 1_000
        : Math.min(1_000, Math.max(50, Math.round(settings.decisionDelayMs / 4))),
    );
  }

  /**
   * Brings the running mocks in line with the catalogue: one worker per agency served by a mock,
   * composed from its current entry. Serialised: a round never overlaps another.
   */
  bind(): Promise<void> {
    const next = (this.binding ?? Promise.resolve()).then(() => this.bindOnce());
    this.binding = next.catch(() => undefined);
    return next;
  }

  private async bindOnce(): Promise<void> {
    if (this.stopped) return;
    const [entries, factTypes] = await Promise.all([
      this.catalogue.listEntries('agency'),
      this.catalogue.listEntries('fact-type'),
    ]);
    // Shutdown may have begun while the catalogue was read: start nothing then.
    if (this.hasStopped()) return;
    const factsVersion = factTypes.map((row) => `${row.key}@${row.checksum}`).join(',');
    if (this.facts?.version !== factsVersion) {
      this.facts = {
        version: factsVersion,
        validator: createFactValidator(factTypes.map((row) => row.body)),
      };
    }
    // An agency of many parties (the municipalities) is served instance by instance, each its own
    // worker on its own queue; a change of the entry replaces every one of them.
    const wanted = new Map(
      entries.flatMap((row) =>
        queuedAgencies([row.body])
          .filter((agency) => agency.adapter === 'mock')
          .map(
            (agency) =>
              [
                agency.code,
                {
                  body: agency,
                  family: row.key,
                  // A municipality's worker is replaced when what it serves changes, not when
                  // another municipality is onboarded beside it.
                  checksum: row.body.instances ? canonicalChecksum(agency) : row.checksum,
                },
              ] as const,
          ),
      ),
    );
    for (const [code, running] of this.running) {
      if (wanted.has(code)) continue;
      this.running.delete(code);
      this.retired.set(code, running.runner);
      this.logger.log(
        { agency: code },
        'agency no longer served by a mock: its worker stops; applications pending at the mock are still decided',
      );
      this.retire(running);
    }
    for (const [code, row] of wanted) {
      this.retired.delete(code);
      const current = this.running.get(code);
      if (current?.checksum === row.checksum) continue;
      const next = this.start(row.body, row.family, row.checksum);
      this.running.set(code, next);
      if (current) this.retire(current);
    }
  }

  private hasStopped(): boolean {
    return this.stopped;
  }

  /** A worker for `entry`: leo's built-in mock of its catalogue entry (`family`), as configured. */
  private start(entry: Agency, family: string, checksum: string): Running {
    const settings = this.config.get('mockAgencies', { infer: true });
    const mock = composeMock(entry, MOCK_AGENCIES.get(family), (key, value) =>
      this.checkProduced(key, value),
    );
    const unserved = unservedActions(entry, mock);
    if (unserved.length > 0) {
      // Publishing refuses a life event using them; cases of older versions get a fault.
      this.logger.warn(
        { agency: entry.code, actions: unserved },
        'the mock has these actions neither built in nor configured: their jobs are configuration faults',
      );
    }
    const runner = new MockAgencyRunner(mock, this.ledger, settings, this.random);
    const slowest = Math.max(
      settings.latencyMs,
      ...Object.values(mock.actions).map((action) => action.latencyMs ?? 0),
    );
    const worker = createAgencyWorker({
      agency: entry.code,
      connection: this.shared.connection,
      prefix: this.shared.prefix ?? '{leo}',
      handlers: runner.handlers(),
      onCancel: (job, context) => runner.cancel(job, context.log),
      lookup: (job, context) => runner.lookup(job, context),
      timeoutMs: slowest + TIMEOUT_MARGIN_MS,
      log: this.sdkLogger(),
    });
    return { runner, worker, checksum };
  }

  /** What the fact catalogue, as last read, says is wrong with a value a mock made. */
  private checkProduced(key: string, value: FactValue): string | undefined {
    const issues = this.facts?.validator.validate(key, value) ?? [];
    // Paths and reasons only: never the value.
    return issues.length === 0
      ? undefined
      : issues.map((issue) => `${issue.path || '/'} ${issue.reason}`).join('; ');
  }

  /** Closes a replaced or let-go worker once its jobs in flight have answered. */
  private retire(running: Running): void {
    const closed = running.worker.close().catch((error: unknown) => {
      this.logger.error(describeHandlerError(error), 'closing a mock worker failed');
    });
    this.closing.add(closed);
    void closed.finally(() => this.closing.delete(closed));
  }

  private scheduleBinding(): void {
    if (this.stopped) return;
    this.bindTimer = setTimeout(() => {
      this.bind()
        .catch((error: unknown) => {
          this.logger.error(describeHandlerError(error), 'following the catalogue failed');
        })
        .finally(() => {
          this.scheduleBinding();
        });
    }, BIND_INTERVAL_MS);
  }

  /** Shutdown begins: no new round of decisions (a round in flight finishes). */
  onModuleDestroy(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    clearTimeout(this.bindTimer);
  }

  async beforeApplicationShutdown(): Promise<void> {
    this.onModuleDestroy();
    await Promise.all([this.polling, this.binding]);
    // Each worker lets its jobs in flight finish and report before it disconnects.
    await Promise.all([
      ...[...this.running.values()].map(({ worker }) => worker.close()),
      ...this.closing,
    ]);
    this.running.clear();
  }

  private schedule(intervalMs: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.polling = this.poll().finally(() => {
        this.polling = undefined;
        this.schedule(intervalMs);
      });
    }, intervalMs);
  }

  /** One round: decide what is due, then report what is decided, in batches. */
  private async poll(): Promise<void> {
    const agencies = [...this.running.keys(), ...this.retired.keys()];
    try {
      while (
        !this.stopped &&
        (await this.ledger.decideDue(POLL_BATCH, agencies, (effect, application) =>
          this.decide(effect, application),
        )) === POLL_BATCH
      );
      while (
        !this.stopped &&
        (await this.ledger.reportDecisions(POLL_BATCH, agencies, (effect) =>
          this.report(effect),
        )) === POLL_BATCH
      );
    } catch (error) {
      this.logger.error(describeHandlerError(error), 'deciding pending applications failed');
    }
  }

  private async decide(
    effect: EffectRecord,
    application: Application,
  ): Promise<StepOutcome | undefined> {
    const runner = this.running.get(effect.agency)?.runner ?? this.retired.get(effect.agency);
    try {
      return await runner?.decideLater(effect, application);
    } catch (error) {
      // Tried again every round: a decision that keeps failing is logged 10 times a minute.
      const budget = this.failedDecisions.take(`${effect.agency}/${effect.action}`);
      if (!budget.log) return undefined;
      this.logger.error(
        {
          alsoFailed: budget.held,
          agency: effect.agency,
          action: effect.action,
          stepRunId: effect.stepRunId,
          ...describeHandlerError(error),
          // Leo's own reason (a fact key and a schema rule), safe to log, unlike a handler's.
          ...(error instanceof UndecidableNow ? { reason: error.message } : {}),
        },
        'a decision failed; it is tried again',
      );
      return undefined;
    }
  }

  private async report(effect: EffectRecord): Promise<void> {
    const worker = this.running.get(effect.agency)?.worker;
    if (!effect.decision || (!worker && !this.retired.has(effect.agency))) {
      throw new Error(`cannot report for ${effect.agency}`);
    }
    const result: StepResult = {
      stepRunId: effect.stepRunId,
      attempt: effect.attempt,
      agency: effect.agency,
      result: effect.decision,
      reportedAt: new Date().toISOString(),
    };
    try {
      await (worker ? worker.report(result) : this.reportWithoutWorker(result));
    } catch (error) {
      this.logger.error(
        { agency: effect.agency, stepRunId: effect.stepRunId, ...describeHandlerError(error) },
        'reporting a decision failed; it is reported again',
      );
      throw error;
    }
  }

  /**
   * A decision of an agency the mock no longer serves, appended to the agency's results stream
   * as its worker would (leo's own connection; the agency's adapter never sees it).
   */
  private async reportWithoutWorker(result: StepResult): Promise<void> {
    const queue = this.queues.queue(agencyQueueName(result.agency)).raw;
    const client = await queue.getBackend().client;
    await client.xadd(
      agencyResultsStreamKey(this.queues.prefix, result.agency),
      '*',
      resultEntryFields({ kind: STEP_RESULT, result }),
      { MAXLEN: RESULTS_STREAM_MAXLEN, approximate: true },
    );
  }

  /** The SDK logs through Nest's logger (pino): ids and outcomes only, never facts. */
  private sdkLogger(): AgencyWorkerLogger {
    return {
      info: (fields, message) => {
        this.logger.log(fields, message);
      },
      warn: (fields, message) => {
        this.logger.warn(fields, message);
      },
      error: (fields, message) => {
        this.logger.error(fields, message);
      },
    };
  }
}

/** A checksum of an agency as its mock would be composed from it. */
function canonicalChecksum(agency: Agency): string {
  return createHash('sha256').update(canonicalJson(agency)).digest('base64url');
}
