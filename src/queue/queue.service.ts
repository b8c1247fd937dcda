import {
  Inject,
  Injectable,
  Logger,
  type OnApplicationShutdown,
  type OnModuleDestroy,
} from '@nestjs/common';
import { getSharedConfigToken } from '@nestjs/bullmq';
import {
  Queue,
  UnrecoverableError,
  Worker,
  type Job,
  type JobsOptions,
  type QueueOptions,
  type WorkerOptions,
} from 'bullmq';
import type { JobContract, JobHandlers, JobName } from '#agency-contract';

/** A BullMQ queue whose job names and payloads are fixed by a contract. */
export class TypedQueue<C extends JobContract<C>> {
  constructor(readonly raw: Queue) {}

  get name(): string {
    return this.raw.name;
  }

  add<N extends JobName<C>>(name: N, payload: C[N], options?: JobsOptions): Promise<Job<C[N]>> {
    return this.raw.add(name, payload, options) as Promise<Job<C[N]>>;
  }
}

export type WorkerSettings = Omit<WorkerOptions, 'connection' | 'prefix' | 'autorun'>;

/**
 * Creates queues and workers on the shared Redis connection settings and key prefix, and closes
 * them on shutdown: workers first (each waits for its in-flight jobs), then queues.
 */
@Injectable()
export class QueueService implements OnModuleDestroy, OnApplicationShutdown {
  private readonly logger = new Logger(QueueService.name);
  private readonly queues = new Map<string, Queue>();
  private readonly workers: Worker[] = [];
  /** Workers that reached Redis: only those can close gracefully (BullMQ waits forever otherwise). */
  private readonly ready = new WeakSet<Worker>();

  constructor(@Inject(getSharedConfigToken()) private readonly shared: QueueOptions) {}

  get prefix(): string {
    return this.shared.prefix ?? '{leo}';
  }

  queue<C extends JobContract<C>>(name: string): TypedQueue<C> {
    let queue = this.queues.get(name);
    if (!queue) {
      queue = new Queue(name, { connection: this.shared.connection, prefix: this.prefix });
      queue.on('error', (error) => {
        this.logger.error({ queue: name, err: error }, 'queue error');
      });
      this.queues.set(name, queue);
    }
    return new TypedQueue<C>(queue);
  }

  /**
   * Starts a worker that dispatches each job to the handler for its name. A job whose name the
   * contract does not know fails at once without retries: it can never succeed.
   */
  worker<C extends JobContract<C>, R>(
    name: string,
    handlers: JobHandlers<C, Job, R>,
    settings: WorkerSettings = {},
  ): Worker {
    const known = new Set(Object.keys(handlers));
    const worker = new Worker(
      name,
      async (job: Job) => {
        if (!known.has(job.name)) {
          throw new UnrecoverableError(
            `no handler for job ${JSON.stringify(job.name)} on queue ${name}`,
          );
        }
        const handler = handlers[job.name as JobName<C>];
        return handler(job.data as C[JobName<C>], job);
      },
      { ...settings, connection: this.shared.connection, prefix: this.prefix, autorun: true },
    );
    worker.on('error', (error) => {
      this.logger.error({ queue: name, err: error }, 'worker error');
    });
    // Any sign of a live connection counts: 'ready' is emitted on a timer after the connections
    // are up, so a worker can already be running a job before it arrives.
    const reached = (): void => {
      this.ready.add(worker);
    };
    worker.once('ready', reached);
    worker.once('active', reached);
    worker.once('drained', reached);
    this.workers.push(worker);
    return worker;
  }

  /**
   * Workers stop first, in the first shutdown phase, each waiting for its in-flight jobs, while
   * the database pool and the queues those jobs use are still open (they close later).
   */
  async onModuleDestroy(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.close(!this.ready.has(w))));
    this.workers.length = 0;
  }

  async onApplicationShutdown(): Promise<void> {
    await Promise.all([...this.queues.values()].map((q) => q.close()));
    this.queues.clear();
  }
}
