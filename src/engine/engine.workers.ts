import {
  Injectable,
  Logger,
  type OnApplicationBootstrap,
  type OnModuleDestroy,
} from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import type { EngineConfig, ResolvedConfig } from '../config/config.schema.js';
import { QueueService } from '../queue/queue.service.js';
import { ENGINE_TIMERS_QUEUE, STEP_DEADLINE, type TimerJobs } from './engine.jobs.js';
import { EngineService } from './engine.service.js';
import { EngineBus } from './engine-bus.js';
import { OutboxRelay } from './outbox.relay.js';
import { PartitionLeases } from './partition-leases.js';
import { Reconciler } from './reconciler.js';
import { ResultStreamConsumer } from './result-stream.consumer.js';

/**
 * The engine role's background work: applying results from the agencies' results streams in
 * batches (decisions 0018 and 0022), firing
 * deadline timers; every LEO_OUTBOX_SWEEP_INTERVAL_MS, publishing outbox rows the fast path
 * missed; every LEO_RECONCILE_INTERVAL_MS, re-dispatching steps and look-ups left unanswered
 * (after Redis lost its data), writing the deadline timers of steps open a while (decision 0015)
 * and escalating steps past their deadline whose timer was lost.
 */
@Injectable()
export class EngineWorkers implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger(EngineWorkers.name);
  private readonly settings: EngineConfig;
  private sweepTimer: NodeJS.Timeout | undefined;
  private reconcileTimer: NodeJS.Timeout | undefined;
  private sweeping: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly queues: QueueService,
    private readonly engine: EngineService,
    private readonly relay: OutboxRelay,
    private readonly reconciler: Reconciler,
    private readonly stream: ResultStreamConsumer,
    private readonly leases: PartitionLeases,
    private readonly bus: EngineBus,
    config: ConfigService<ResolvedConfig, true>,
  ) {
    this.settings = config.get('engine', { infer: true });
  }

  /**
   * Listens for inputs forwarded by other processes, takes a share of the partitions, and reads
   * their results.
   */
  async onApplicationBootstrap(): Promise<void> {
    // Not awaited: with Redis away the process still starts (not ready); until it listens, a
    // process forwarding an input here finds no listener and asks again.
    const listen = (): void => {
      this.bus.start().catch((error: unknown) => {
        this.logger.warn({ err: error }, 'listening for forwarded inputs failed: trying again');
        setTimeout(listen, 2_000).unref();
      });
    };
    listen();
    await this.leases.start();
    this.stream.start();
    this.queues.worker<TimerJobs, string>(
      ENGINE_TIMERS_QUEUE,
      { [STEP_DEADLINE]: (job) => this.engine.stepDeadlinePassed(job) },
      { concurrency: 4 },
    );
    // One chain of housekeeping per process: a slow round delays the next, never overlaps it.
    const chain = (what: string, work: () => Promise<unknown>): void => {
      this.sweeping = this.sweeping.then(async () => {
        try {
          await work();
        } catch (error) {
          this.logger.warn({ err: error, what }, 'engine housekeeping failed');
        }
      });
    };
    this.sweepTimer = setInterval(() => {
      chain('outbox sweep', () => this.relay.sweep());
    }, this.settings.outboxSweepIntervalMs);
    this.reconcileTimer = setInterval(() => {
      // Each on its own: one failing (a job record that does not parse, say) stops no other.
      chain('reconcile', () => this.reconciler.reconcile(this.settings.reconcileAfterMs));
      chain('arm timers', () => this.reconciler.armTimers(this.settings.timerArmAfterMs));
      chain('escalate overdue', () =>
        this.engine.escalateOverdue(100, this.leases.heldPartitions()),
      );
      chain('release held', () => this.engine.releaseHeld(100, this.leases.heldPartitions()));
    }, this.settings.reconcileIntervalMs);
    this.sweepTimer.unref();
    this.reconcileTimer.unref();
  }

  async onModuleDestroy(): Promise<void> {
    clearInterval(this.sweepTimer);
    clearInterval(this.reconcileTimer);
    // In the first shutdown phase, like the queue workers: the database pool is still open.
    await Promise.all([this.stream.stop(), this.sweeping]);
  }
}
