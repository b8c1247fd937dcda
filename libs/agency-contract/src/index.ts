export { AGENCY_CODE_PATTERN, ENGINE_RESULTS_QUEUE, agencyQueueName } from './queues.js';
export type { JobContract, JobHandlers, JobName } from './jobs.js';
