/**
 * The adapter SDK: what an agency needs to serve leo's jobs from its own repository, with this
 * package, bullmq and a Redis connection. No Nest, nothing of leo's application code.
 *
 * `createAgencyWorker` consumes `agency.<code>`, calls the handler for each step's action, and
 * answers on the agency's results stream (`agencyResultsStreamKey(prefix, agency)`), completing
 * the agency job only once the answer is on the stream (at-least-once). See docs/adapters.md for the contract in full.
 */
import {
  UnrecoverableError,
  Worker,
  type ConnectionOptions,
  type Job,
  type KeepJobs,
} from 'bullmq';
import { RESULTS_STREAM_MAXLEN, agencyQueueName, agencyResultsStreamKey } from './queues.js';
import { AttemptTimeout, StepCancelled, positiveInteger } from './worker-options.js';
import {
  hasStepIds,
  isLookupJob,
  isLookupOutcome,
  isStepCancelJob,
  isStepJob,
  isStepOutcome,
} from './shapes.js';
import {
  bind,
  describeHandlerError,
  redisFault,
  stderrLogger,
  type AgencyWorkerLogger,
  type RedisFault,
} from './worker-log.js';
import {
  FACT_LOOKUP,
  LOOKUP_RESULT,
  STEP_CANCEL,
  STEP_EXECUTE,
  STEP_RESULT,
  UNKNOWN_ACTION,
  type LookupJob,
  type LookupOutcome,
  type LookupResult,
  type StepCancelJob,
  type StepJob,
  type StepOutcome,
  type StepResult,
} from './steps.js';

export { describeHandlerError, type AgencyWorkerLogger } from './worker-log.js';

export interface StepHandlerContext {
  /**
   * Aborted when the attempt's time limit passes, when leo cancels the step, or when the worker
   * is told to cancel the job. Pass it on to fetch() and the like; work after it fired is wasted
   * (its answer is no longer reported).
   */
  signal: AbortSignal;
  /** The worker's logger with the job's ids (agency, action, step run, attempt) bound. */
  log: AgencyWorkerLogger;
}

/** Performs one step's action. Must be idempotent by `job.idempotencyKey`. */
export type StepHandler = (job: StepJob, context: StepHandlerContext) => Promise<StepOutcome>;

/**
 * Answers a look-up from the agency's register: the values it holds for `job.factKeys` about the
 * person `job.facts` identifies. Reading makes no effect; answer every delivery afresh.
 */
export type LookupHandler = (job: LookupJob, context: StepHandlerContext) => Promise<LookupOutcome>;

export interface CancelContext {
  log: AgencyWorkerLogger;
}

export interface AgencyWorkerOptions {
  /** The agency's code: the worker consumes `agency.<code>` and answers as this agency. */
  agency: string;
  /** Redis connection settings (bullmq's). Set `maxRetriesPerRequest: null` for workers. */
  connection: ConnectionOptions;
  /** Queue key prefix; must equal leo's `QUEUE_PREFIX` (default `{leo}`). */
  prefix?: string;
  /**
   * One handler per action name. A job for any other action is answered `retryable-error`
   * `unknown-action`: a configuration fault leo retries, never a refusal.
   */
  handlers: Readonly<Record<string, StepHandler>>;
  /**
   * Answers `fact.lookup` jobs, for an agency that is the authoritative source of some facts.
   * Without it every look-up is answered with all its keys unavailable (leo asks the citizen).
   */
  lookup?: LookupHandler;
  /**
   * Called once when the worker has stopped for good: Redis refuses the credential what the
   * worker needs (another agency's queue, another prefix). Exit the process with an error there,
   * so that its supervisor restarts it and someone is told; by default the worker only stops.
   */
  onFatal?: (error: Error) => void;
  /** Called for `step.cancel`: leo cancelled the case; stop work on the step if you can. */
  onCancel?: (job: StepCancelJob, context: CancelContext) => Promise<void>;
  /** Jobs processed at once by this worker. Default 8. */
  concurrency?: number;
  /** Time limit of one attempt in milliseconds; past it the answer is `retryable-error` `timeout`. Default 60 000. */
  timeoutMs?: number;
  /** Default: warnings and errors as JSON lines on stderr. */
  log?: AgencyWorkerLogger;
  /**
   * How long finished agency jobs stay in Redis, in seconds (they carry the step's facts).
   * Default: completed 60 s, failed 6 h. Jobs leo publishes say so themselves, which takes
   * precedence.
   */
  keepCompletedSeconds?: number;
  keepFailedSeconds?: number;
}

export interface AgencyWorker {
  /** The underlying bullmq worker (events, `waitUntilReady()`). */
  worker: Worker;
  /**
   * Publishes a result on the results stream: a decision that comes after a `pending` answer is
   * reported this way, as another result for the same step run and attempt. Resolves once the
   * result is stored in Redis.
   */
  report(result: StepResult): Promise<void>;
  /** Stops taking jobs, lets the jobs in flight finish and report, then disconnects. */
  close(): Promise<void>;
}

export const DEFAULT_CONCURRENCY = 8;
export const DEFAULT_TIMEOUT_MS = 60_000;
const HOUR_SECONDS = 3_600;

export { isLookupOutcome, isStepOutcome } from './shapes.js';

/**
 * Starts a worker on `agency.<code>` that runs `handlers[job.action]` for each `step.execute`
 * job and answers on the agency's results stream (`agencyResultsStreamKey(prefix, agency)`):
 * - an action without a handler: `retryable-error`, code `unknown-action` (a configuration fault:
 *   leo retries it and alerts its operators; the citizen sees the step delayed);
 * - a handler that throws or returns something that is not a StepOutcome: `retryable-error`,
 *   code `adapter-error` (the error's message is neither reported nor logged: it may quote facts);
 * - a handler that runs past `timeoutMs`: `retryable-error`, code `timeout`;
 * - a job without the fields of a StepJob: `rejected`, code `invalid-job` (or, without even a
 *   step run id and attempt to answer to, a failed job).
 * The agency job completes only after its result is stored on the results stream: if publishing
 * fails the job fails and bullmq (or leo's reconciler) delivers it again.
 */
export function createAgencyWorker(options: AgencyWorkerOptions): AgencyWorker {
  const { agency, connection, handlers, onCancel, lookup } = options;
  const queueName = agencyQueueName(agency);
  const prefix = options.prefix ?? '{leo}';
  const concurrency = positiveInteger('concurrency', options.concurrency, DEFAULT_CONCURRENCY);
  const timeoutMs = positiveInteger('timeoutMs', options.timeoutMs, DEFAULT_TIMEOUT_MS);
  // A finished job carries the step's facts: kept a minute after its answer, as leo's jobs.
  const keepCompleted = positiveInteger('keepCompletedSeconds', options.keepCompletedSeconds, 60);
  const keepFailed = positiveInteger(
    'keepFailedSeconds',
    options.keepFailedSeconds,
    6 * HOUR_SECONDS,
  );
  const log = bind(options.log ?? stderrLogger, { agency });
  for (const [action, handler] of Object.entries(handlers)) {
    if (typeof handler !== 'function') {
      throw new Error(`createAgencyWorker: the handler for ${action} is not a function`);
    }
  }

  const streamKey = agencyResultsStreamKey(prefix, agency);
  // Attempts in flight in this process, by step run: a step.cancel aborts them.
  const inFlight = new Map<string, Set<AbortController>>();

  /**
   * Appends one answer to the results stream, on the worker's own (non-blocking) connection,
   * trimming the stream to about RESULTS_STREAM_MAXLEN entries. Resolves once Redis stored it.
   */
  async function append(
    kind: typeof STEP_RESULT | typeof LOOKUP_RESULT,
    body: unknown,
  ): Promise<void> {
    const client = await worker.getBackend().client;
    await client.xadd(
      streamKey,
      '*',
      { kind, body: JSON.stringify(body) },
      { MAXLEN: RESULTS_STREAM_MAXLEN, approximate: true },
    );
  }

  async function publish(result: StepResult): Promise<void> {
    await append(STEP_RESULT, result);
  }

  /**
   * Publishes the answer, then lets the agency job complete. The job keeps only the outcome's
   * kind as its return value: produced facts do not need a second copy in Redis.
   */
  async function answer(job: StepJob, result: StepOutcome): Promise<{ outcome: string }> {
    await publish({
      stepRunId: job.stepRunId,
      attempt: job.attempt,
      agency,
      result,
      reportedAt: new Date().toISOString(),
    });
    return { outcome: result.outcome };
  }

  /** Runs the handler under the attempt's time limit; undefined when the step was cancelled. */
  async function runHandler(
    handler: StepHandler,
    job: StepJob,
    jobLog: AgencyWorkerLogger,
    workerSignal: AbortSignal | undefined,
  ): Promise<StepOutcome | undefined> {
    const controller = new AbortController();
    const timer = setTimeout(() => {
      controller.abort(new AttemptTimeout(timeoutMs));
    }, timeoutMs);
    const onWorkerAbort = (): void => {
      controller.abort(new StepCancelled());
    };
    workerSignal?.addEventListener('abort', onWorkerAbort, { once: true });
    let running = inFlight.get(job.stepRunId);
    if (!running) inFlight.set(job.stepRunId, (running = new Set()));
    running.add(controller);

    const aborted = new Promise<never>((_, reject) => {
      controller.signal.addEventListener(
        'abort',
        () => {
          reject(controller.signal.reason as Error);
        },
        { once: true },
      );
    });
    // Settles as soon as the handler settles or the signal fires; a handler that ignores its
    // signal runs on, its answer dropped (the step's idempotency makes a later attempt safe).
    const handled = Promise.resolve().then(() =>
      handler(job, { signal: controller.signal, log: jobLog }),
    );
    handled.catch(() => undefined);
    try {
      const outcome = await Promise.race([handled, aborted]);
      if (isStepOutcome(outcome)) return outcome;
      jobLog.error({}, 'the step handler returned something that is not a step outcome');
      return {
        outcome: 'retryable-error',
        code: 'adapter-error',
        reason: `the adapter answered ${job.action} with an invalid outcome`,
      };
    } catch (error) {
      if (error instanceof AttemptTimeout) {
        jobLog.warn({ timeoutMs }, 'the step handler timed out');
        return {
          outcome: 'retryable-error',
          code: 'timeout',
          reason: `the adapter did not answer ${job.action} within ${timeoutMs} ms`,
        };
      }
      if (controller.signal.aborted && controller.signal.reason instanceof StepCancelled) {
        jobLog.info({}, 'the step was cancelled while in flight');
        return undefined;
      }
      jobLog.error(describeHandlerError(error), 'the step handler failed');
      return {
        outcome: 'retryable-error',
        code: 'adapter-error',
        reason: `the adapter failed while handling ${job.action}`,
      };
    } finally {
      clearTimeout(timer);
      workerSignal?.removeEventListener('abort', onWorkerAbort);
      running.delete(controller);
      if (running.size === 0) inFlight.delete(job.stepRunId);
    }
  }

  async function execute(data: unknown, signal: AbortSignal | undefined): Promise<unknown> {
    if (!hasStepIds(data)) {
      throw new UnrecoverableError(
        `${STEP_EXECUTE} job without a step run id and attempt: it cannot be answered`,
      );
    }
    const ids = { stepRunId: data.stepRunId, attempt: data.attempt };
    if (!isStepJob(data)) {
      log.warn(ids, 'refused a malformed step job');
      const reject: StepOutcome = {
        outcome: 'rejected',
        code: 'invalid-job',
        reason: 'the job lacks fields of a step job (caseId, action, idempotencyKey, facts)',
      };
      await publish({ ...ids, agency, result: reject, reportedAt: new Date().toISOString() });
      return { outcome: reject.outcome };
    }
    const jobLog = bind(log, { ...ids, action: data.action });
    const handler = Object.hasOwn(handlers, data.action) ? handlers[data.action] : undefined;
    if (!handler) {
      // A fault of this adapter's configuration, not a decision: leo retries and tells its
      // operators; the citizen sees the step delayed, not refused.
      jobLog.error({}, 'no handler for the action: add one (leo retries the job until then)');
      return answer(data, {
        outcome: 'retryable-error',
        code: UNKNOWN_ACTION,
        reason: `the adapter of ${agency} has no handler for ${data.action}`,
      });
    }
    const outcome = await runHandler(handler, data, jobLog, signal);
    if (outcome === undefined) return { cancelled: true };
    return answer(data, outcome);
  }

  async function publishLookup(result: LookupResult): Promise<void> {
    await append(LOOKUP_RESULT, result);
  }

  /** Answers a look-up under the attempt's time limit; a failure is a retryable error. */
  async function lookUp(data: unknown): Promise<unknown> {
    if (!isLookupJob(data)) {
      throw new UnrecoverableError(`${FACT_LOOKUP} job without a look-up id, attempt or keys`);
    }
    const jobLog = bind(log, { lookupId: data.lookupId, attempt: data.attempt });
    let outcome: LookupOutcome;
    if (!lookup) {
      outcome = { outcome: 'found', facts: {}, unavailable: data.factKeys };
    } else {
      const controller = new AbortController();
      const timer = setTimeout(() => {
        controller.abort(new AttemptTimeout(timeoutMs));
      }, timeoutMs);
      const aborted = new Promise<never>((_, reject) => {
        controller.signal.addEventListener(
          'abort',
          () => {
            reject(controller.signal.reason as Error);
          },
          { once: true },
        );
      });
      const handled = Promise.resolve().then(() =>
        lookup(data, { signal: controller.signal, log: jobLog }),
      );
      handled.catch(() => undefined);
      try {
        const answered = await Promise.race([handled, aborted]);
        outcome = isLookupOutcome(answered)
          ? answered
          : { outcome: 'retryable-error', code: 'adapter-error', reason: 'invalid look-up answer' };
      } catch (error) {
        const timedOut = error instanceof AttemptTimeout;
        if (!timedOut) jobLog.error(describeHandlerError(error), 'the look-up handler failed');
        outcome = timedOut
          ? {
              outcome: 'retryable-error',
              code: 'timeout',
              reason: `no answer within ${timeoutMs} ms`,
            }
          : { outcome: 'retryable-error', code: 'adapter-error', reason: 'the look-up failed' };
      } finally {
        clearTimeout(timer);
      }
    }
    await publishLookup({
      lookupId: data.lookupId,
      attempt: data.attempt,
      agency,
      result: outcome,
      reportedAt: new Date().toISOString(),
    });
    return { outcome: outcome.outcome };
  }

  async function cancel(data: unknown): Promise<unknown> {
    if (!isStepCancelJob(data)) {
      throw new UnrecoverableError(`${STEP_CANCEL} job without a step run, action or key`);
    }
    for (const controller of inFlight.get(data.stepRunId) ?? []) {
      controller.abort(new StepCancelled());
    }
    if (onCancel) {
      await onCancel(data, {
        log: bind(log, { stepRunId: data.stepRunId, action: data.action }),
      });
    }
    return { cancelled: true };
  }

  const worker = new Worker(
    queueName,
    async (job: Job, _token?: string, signal?: AbortSignal): Promise<unknown> => {
      switch (job.name) {
        case STEP_EXECUTE:
          return execute(job.data, signal);
        case STEP_CANCEL:
          return cancel(job.data);
        case FACT_LOOKUP:
          return lookUp(job.data);
        default:
          throw new UnrecoverableError(`no handler for job ${JSON.stringify(job.name)}`);
      }
    },
    {
      connection,
      prefix,
      concurrency,
      autorun: true,
      removeOnComplete: { age: keepCompleted } satisfies KeepJobs,
      removeOnFail: { age: keepFailed } satisfies KeepJobs,
    },
  );
  // Whether the worker ever reached Redis: one that never did holds no job, and bullmq's
  // graceful close would wait for a connection that may never come (Redis down at start-up).
  // Any sign of a live connection counts: bullmq emits 'ready' on a timer after connecting, so
  // a job can already be running before it arrives.
  let connected = false;
  const reached = (): void => {
    connected = true;
  };
  worker.once('ready', reached);
  worker.once('active', reached);
  worker.once('drained', reached);
  let refused = false;
  /** When each passing Redis fault was last logged: once a minute, whatever BullMQ retries. */
  const faultLogged = new Map<RedisFault, number>();
  worker.on('error', (error) => {
    const fault = redisFault(error);
    if (fault === 'credential' || fault === 'unreachable') {
      const now = Date.now();
      if (now - (faultLogged.get(fault) ?? -Infinity) < 60_000) return;
      faultLogged.set(fault, now);
      log.error(
        { queue: queueName, redisError: error.message.slice(0, 200) },
        fault === 'credential'
          ? 'Redis refuses this credential’s user name and password: it is wrong, revoked, or ' +
              'Redis restarted and leo has not restored its users yet (it does within 30 s). ' +
              'Retrying with backoff; ask leo’s administrator for a credential if it lasts.'
          : 'Redis cannot be reached: check the host and port leo gave with the credential. ' +
              'Retrying with backoff.',
      );
      return;
    }
    if (fault === 'refused') {
      // Redis refuses this credential what the worker needs (another agency's queue, another
      // prefix): every retry would be refused again, thousands a second. Stop, and say why once.
      if (refused) return;
      refused = true;
      log.error(
        { queue: queueName, prefix, redisError: error.message.slice(0, 200) },
        `Redis refuses this credential the queue ${queueName} under prefix ${prefix}: check that ` +
          'the credential is this agency’s (leo issues one per agency) and that the prefix is ' +
          'leo’s QUEUE_PREFIX. The worker has stopped.',
      );
      void worker
        .close(true)
        .catch(() => undefined)
        .finally(() => {
          options.onFatal?.(error);
        });
      return;
    }
    log.error({ queue: queueName, ...describeHandlerError(error) }, 'worker error');
  });
  worker.on('failed', (job, error) => {
    log.error(
      { queue: queueName, jobId: job?.id, ...describeHandlerError(error) },
      'agency job failed',
    );
  });

  let closing: Promise<void> | undefined;
  return {
    worker,
    async report(result) {
      if (result.agency !== agency) {
        throw new Error(`this worker reports for ${agency}, not ${result.agency}`);
      }
      if (!hasStepIds(result) || !isStepOutcome(result.result)) {
        throw new Error('not a step result: it needs a stepRunId, an attempt and an outcome');
      }
      await publish(result);
    },
    close() {
      closing ??= worker.close(!connected);
      return closing;
    },
  };
}
