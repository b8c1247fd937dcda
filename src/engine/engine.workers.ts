import {
  Injectable,
  Logger,
  type OnApplicationBootstrap,
  type OnModuleDestroy,
} from '@nestjs/common';
import { ENGINE_RESULTS_QUEUE, STEP_RESULT, type ResultJobs } from '#agency-contract';
import { Metrics } from '../observability/metrics.js';
import { QueueService } from '../queue/queue.service.js';
import { EngineService } from './engine.service.js';
import { OutboxRelay } from './outbox.relay.js';
import { Reconciler } from './reconciler.js';

const SWEEP_INTERVAL_MS = 1_000;
/** How often unanswered steps are looked for, and how old they must be to be re-dispatched. */
const RECONCILE_INTERVAL_MS = 30_000;
const RECONCILE_AFTER_MS = 5 * 60_000;

/**
 * The engine role's background work: applying results from the results queue; every second,
 * publishing outbox rows the fast path missed; every half minute, re-dispatching steps left
 * unanswered (after Redis lost its data) and escalating steps past their deadline.
 */
@Injectable()
export class EngineWorkers implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger(EngineWorkers.name);
  private timer: NodeJS.Timeout | undefined;
  private sweeping: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly queues: QueueService,
    private readonly engine: EngineService,
    private readonly relay: OutboxRelay,
    private readonly reconciler: Reconciler,
    private readonly metrics: Metrics,
  ) {}

  onApplicationBootstrap(): void {
    this.queues.worker<ResultJobs, string>(
      ENGINE_RESULTS_QUEUE,
      {
        [STEP_RESULT]: (result) =>
          this.metrics.observeResultApplication(result, () => this.engine.applyResult(result)),
      },
      { concurrency: 16 },
    );
    let ticks = 0;
    this.timer = setInterval(() => {
      ticks += 1;
      const reconcile = ticks % Math.round(RECONCILE_INTERVAL_MS / SWEEP_INTERVAL_MS) === 0;
      this.sweeping = this.sweeping.then(async () => {
        try {
          await this.relay.sweep();
          if (reconcile) {
            await this.reconciler.reconcile(RECONCILE_AFTER_MS);
            await this.engine.escalateOverdue();
          }
        } catch (error) {
          this.logger.warn({ err: error }, 'engine housekeeping failed');
        }
      });
    }, SWEEP_INTERVAL_MS);
    this.timer.unref();
  }

  async onModuleDestroy(): Promise<void> {
    clearInterval(this.timer);
    await this.sweeping;
  }
}
