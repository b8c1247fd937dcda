/**
 * The engine's records and events are defined by the case machine (libs/case-machine), which
 * decides every change to a case; the repositories store them, the APIs read them.
 */
export {
  CASE_STATUSES,
  FACT_RECORD_SOURCES,
  FINAL_CASE_STATUSES,
  FINAL_STEP_STATES,
  MESSAGE_KINDS,
  MESSAGE_TEMPLATES,
  type CaseEvent,
  type CaseRecord,
  type CaseStatus,
  type FactRecord,
  type FactRecordSource,
  type LookupRecord,
  type MessageKind,
  type MessageTemplate,
  type NewMessage,
  type StepRunRecord,
} from '#case-machine';

/** A job to publish, as the outbox holds it until the relay has put it on its queue. */
export interface OutboxMessage {
  queue: string;
  jobName: string;
  jobId: string;
  payload: object;
  availableAt?: Date;
}
