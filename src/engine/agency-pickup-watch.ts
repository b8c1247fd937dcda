import {
  Injectable,
  Logger,
  type OnApplicationBootstrap,
  type OnModuleDestroy,
} from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { agencyQueueName } from '#agency-contract';
import type { ResolvedConfig } from '../config/config.schema.js';
import { Metrics } from '../observability/metrics.js';
import { MonitoredQueues } from '../observability/monitored-queues.js';
import { isUnserved, readQueuePickup, type QueuePickup } from '../queue/queue-pickup.js';
import { QueueService } from '../queue/queue.service.js';

/** An alert still standing is logged again this often, so it is not lost in a busy log. */
const REPEAT_MS = 5 * 60_000;

/**
 * Watches every agency's queue for jobs nobody picks up (an agency switched to an external
 * adapter that is not running, an agency added with no adapter): past LEO_AGENCY_PICKUP_ALERT_MS
 * the job's wait is an operator alert, an error line (repeated every 5 minutes while it stands)
 * and `leo_agency_queue_unserved{agency} 1`, rather than a silent wait until the step's deadline.
 * Runs in each engine process; it only reads Redis.
 */
@Injectable()
export class AgencyPickupWatch implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger(AgencyPickupWatch.name);
  private readonly alerting = new Map<string, number>();
  private readonly alertAfterMs: number;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    config: ConfigService<ResolvedConfig, true>,
    private readonly queues: QueueService,
    private readonly monitored: MonitoredQueues,
    private readonly metrics: Metrics,
  ) {
    this.alertAfterMs = config.get('engine', { infer: true }).agencyPickupAlertMs;
  }

  onApplicationBootstrap(): void {
    this.schedule();
  }

  onModuleDestroy(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  private schedule(): void {
    if (this.stopped) return;
    const every = Math.min(30_000, Math.max(500, Math.round(this.alertAfterMs / 4)));
    this.timer = setTimeout(() => {
      void this.check()
        .catch((error: unknown) => {
          this.logger.warn({ err: error }, 'watching the agency queues failed');
        })
        .finally(() => {
          this.schedule();
        });
    }, every);
  }

  /** One round over every agency's queue. */
  async check(now = Date.now()): Promise<QueuePickup[]> {
    const codes = await this.monitored.codes();
    const pickups = await Promise.all(codes.map((agency) => this.pickup(agency, now)));
    for (const pickup of pickups) this.judge(pickup, now);
    return pickups;
  }

  private pickup(agency: string, now: number): Promise<QueuePickup> {
    return readQueuePickup(this.queues.queue(agencyQueueName(agency)).raw, agency, now);
  }

  private judge(pickup: QueuePickup, now: number): void {
    const { agency } = pickup;
    const unserved = isUnserved(pickup, this.alertAfterMs);
    this.metrics.agencyQueueUnserved.set({ agency }, unserved ? 1 : 0);
    const since = this.alerting.get(agency);
    if (!unserved) {
      if (since !== undefined) {
        this.alerting.delete(agency);
        this.logger.log({ agency, workers: pickup.workers }, "the agency's queue is served again");
      }
      return;
    }
    if (since !== undefined && now - since < REPEAT_MS) return;
    this.alerting.set(agency, now);
    this.logger.error(
      {
        agency,
        queue: agencyQueueName(agency),
        oldestWaitingSeconds: Math.round(pickup.oldestWaitingSeconds),
        workers: pickup.workers,
      },
      pickup.workers === 0
        ? `no adapter serves ${agency}: its jobs wait unpicked. Start its adapter with a credential (POST /v1/admin/agencies/${agency}/credentials), or serve it by leo's mock (adapter: mock)`
        : `${agency}'s adapters do not keep up: jobs wait unpicked past the alert limit`,
    );
  }
}
