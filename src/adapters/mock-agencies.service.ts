import {
  Inject,
  Injectable,
  Logger,
  type BeforeApplicationShutdown,
  type OnApplicationBootstrap,
  type OnModuleDestroy,
} from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { getSharedConfigToken } from '@nestjs/bullmq';
import type { QueueOptions } from 'bullmq';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import {
  createAgencyWorker,
  describeHandlerError,
  type AgencyWorker,
  type AgencyWorkerLogger,
  type StepOutcome,
} from '#agency-contract';
import { parseAgencies } from '#facts';
import type { Agency } from '#workflow';
import type { ResolvedConfig } from '../config/config.schema.js';
import { DEFAULT_SEED_DIR } from '../definitions/catalogue-seed.service.js';
import { MOCK_AGENCIES } from './agencies/index.js';
import { MockAgencyRunner, type RandomSource } from './mock-agency-runner.js';
import type { MockAgency } from './mock-agency.js';
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

/** The agencies of agencies.yaml with `adapter: mock`. */
export async function readMockAgencyEntries(seedDir = DEFAULT_SEED_DIR): Promise<Agency[]> {
  const file = path.join(seedDir, 'agencies.yaml');
  const parsed = parseAgencies(await readFile(file, 'utf8'));
  if (parsed.problems.length > 0) {
    throw new Error(
      `${file} has problems: ${parsed.problems.map((p) => `${p.path}: ${p.message}`).join('; ')}`,
    );
  }
  return parsed.agencies.filter((agency) => agency.adapter === 'mock');
}

/**
 * The mock implementation of each entry; throws naming every agency, action or looked-up fact
 * without one, so leo never starts with a mock that would leave a step or look-up unanswered.
 */
export function mockImplementations(
  entries: readonly Agency[],
  implementations: ReadonlyMap<string, MockAgency> = MOCK_AGENCIES,
): MockAgency[] {
  const missing: string[] = [];
  const found: MockAgency[] = [];
  for (const entry of entries) {
    const mock = implementations.get(entry.code);
    if (!mock) {
      missing.push(entry.code);
      continue;
    }
    for (const action of entry.actions) {
      if (!Object.hasOwn(mock.actions, action.name)) missing.push(`${entry.code}/${action.name}`);
    }
    for (const key of entry.lookups) {
      if (!mock.lookups || !Object.hasOwn(mock.lookups, key)) {
        missing.push(`${entry.code}/lookup ${key}`);
      }
    }
    found.push(mock);
  }
  if (missing.length > 0) {
    throw new Error(`no mock implementation for ${missing.join(', ')} (config/agencies.yaml)`);
  }
  return found;
}

/**
 * Runs the mock agencies of config/agencies.yaml, each an SDK worker on its queue, on leo's
 * Redis connection and queue prefix; and decides their pending applications when due, from the
 * ledger (so decisions survive a restart), reporting them through the SDK.
 */
@Injectable()
export class MockAgenciesService
  implements OnApplicationBootstrap, OnModuleDestroy, BeforeApplicationShutdown
{
  private readonly logger = new Logger('MockAgencies');
  private readonly running = new Map<string, { runner: MockAgencyRunner; worker: AgencyWorker }>();
  private timer: NodeJS.Timeout | undefined;
  private polling: Promise<void> | undefined;
  private stopped = false;

  constructor(
    @Inject(getSharedConfigToken()) private readonly shared: QueueOptions,
    private readonly config: ConfigService<ResolvedConfig, true>,
    private readonly ledger: MockLedgerRepository,
    @Inject(MOCK_RANDOM) private readonly random: RandomSource,
  ) {}

  /** The SDK worker of an agency, while running (tests use it to wait for readiness). */
  worker(agency: string): AgencyWorker | undefined {
    return this.running.get(agency)?.worker;
  }

  async onApplicationBootstrap(): Promise<void> {
    const settings = this.config.get('mockAgencies', { infer: true });
    const agencies = mockImplementations(await readMockAgencyEntries());
    const log = this.sdkLogger();
    for (const agency of agencies) {
      const runner = new MockAgencyRunner(agency, this.ledger, settings, this.random);
      const worker = createAgencyWorker({
        agency: agency.code,
        connection: this.shared.connection,
        prefix: this.shared.prefix ?? '{leo}',
        handlers: runner.handlers(),
        onCancel: (job, context) => runner.cancel(job, context.log),
        ...(agency.lookups ? { lookup: (job, context) => runner.lookup(job, context) } : {}),
        timeoutMs: settings.latencyMs + TIMEOUT_MARGIN_MS,
        log,
      });
      this.running.set(agency.code, { runner, worker });
    }
    this.logger.log(
      { agencies: [...this.running.keys()], ...settings },
      'mock agencies are serving their queues',
    );
    // Decisions are due a quarter of the delay apart at most; with no delay they are made at
    // once, and the poller only picks up what an earlier run with a delay left undecided.
    this.schedule(
      settings.decisionDelayMs === 0
        ? 1_000
        : Math.min(1_000, Math.max(50, Math.round(settings.decisionDelayMs / 4))),
    );
  }

  /** Shutdown begins: no new round of decisions (a round in flight finishes). */
  onModuleDestroy(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  async beforeApplicationShutdown(): Promise<void> {
    this.onModuleDestroy();
    await this.polling;
    // Each worker lets its jobs in flight finish and report before it disconnects.
    await Promise.all([...this.running.values()].map(({ worker }) => worker.close()));
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
    const agencies = [...this.running.keys()];
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
    const runner = this.running.get(effect.agency)?.runner;
    try {
      return await runner?.decideLater(effect, application);
    } catch (error) {
      this.logger.error(
        {
          agency: effect.agency,
          action: effect.action,
          stepRunId: effect.stepRunId,
          ...describeHandlerError(error),
        },
        'a decision failed; it is tried again',
      );
      return undefined;
    }
  }

  private async report(effect: EffectRecord): Promise<void> {
    const worker = this.running.get(effect.agency)?.worker;
    if (!worker || !effect.decision) throw new Error(`cannot report for ${effect.agency}`);
    try {
      await worker.report({
        stepRunId: effect.stepRunId,
        attempt: effect.attempt,
        agency: effect.agency,
        result: effect.decision,
        reportedAt: new Date().toISOString(),
      });
    } catch (error) {
      this.logger.error(
        { agency: effect.agency, stepRunId: effect.stepRunId, ...describeHandlerError(error) },
        'reporting a decision failed; it is reported again',
      );
      throw error;
    }
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
