/** The worker's option checks and the errors it aborts an attempt with (internal to the SDK). */

/** An attempt ran past its time limit: answered `retryable-error` `timeout`. */
export class AttemptTimeout extends Error {
  constructor(readonly ms: number) {
    super(`the attempt took longer than ${ms} ms`);
    this.name = 'AttemptTimeout';
  }
}

/** leo cancelled the step while an attempt ran: the attempt is dropped, not answered. */
export class StepCancelled extends Error {
  constructor() {
    super('the step was cancelled');
    this.name = 'StepCancelled';
  }
}

/** An option that must be a positive integer, or its default when not given. */
export function positiveInteger(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < 1) {
    throw new Error(`createAgencyWorker: ${name} must be a positive integer (got ${value})`);
  }
  return value;
}
