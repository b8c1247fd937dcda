export {
  AGENCY_CODE_PATTERN,
  ENGINE_RESULTS_QUEUE,
  ENGINE_RESULTS_STREAM,
  RESULTS_STREAM_MAXLEN,
  RESULT_PARTITIONS,
  agencyQueueName,
  partitionStreamKey,
  replyStream,
  resultsStreamKey,
} from './queues.js';
export type { JobContract, JobHandlers, JobName } from './jobs.js';
export * from './steps.js';
export {
  parseResultEntry,
  resultEntryFields,
  type EntryProblem,
  type ResultEntry,
  type ResultKind,
} from './results-stream.js';
export {
  DEFAULT_CONCURRENCY,
  DEFAULT_TIMEOUT_MS,
  RESULT_JOB_OPTIONS,
  createAgencyWorker,
  describeHandlerError,
  isLookupOutcome,
  isStepOutcome,
  type AgencyWorker,
  type AgencyWorkerLogger,
  type AgencyWorkerOptions,
  type CancelContext,
  type LookupHandler,
  type StepHandler,
  type StepHandlerContext,
} from './worker.js';
