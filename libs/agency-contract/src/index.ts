export {
  AGENCY_CODE_PATTERN,
  RESULTS_STREAM_MAXLEN,
  RESULT_PARTITIONS,
  agencyOfResultsStream,
  agencyQueueName,
  agencyResultsStreamKey,
} from './queues.js';
export { ANSWER_LIMITS } from './shapes.js';
export {
  AGENCY_COMMAND_RULES,
  agencyAclRules,
  agencyOfUserName,
  agencyUserName,
  agencyUserScope,
  globEscape,
} from './access.js';
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
