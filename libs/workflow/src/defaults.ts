import type {
  DefinitionWithDefaults,
  FailurePolicy,
  LifeEventDefinition,
  RetryPolicy,
} from './types.js';

/** 5 attempts; 1 s doubling to at most 5 min, with 20 % jitter. */
export const DEFAULT_RETRY_POLICY: Readonly<RetryPolicy> = Object.freeze({
  attempts: 5,
  backoff: Object.freeze({
    type: 'exponential',
    initialDelayMs: 1000,
    maxDelayMs: 300_000,
    multiplier: 2,
    jitter: 0.2,
  }),
});

export const DEFAULT_FAILURE_POLICY: FailurePolicy = 'action-required';

/**
 * The definition with every optional policy made explicit (`after`, `retry`, `onFailure`), as a
 * new object: what is published, so that a later change of defaults cannot change a published
 * version's behaviour.
 */
export function withDefaults(definition: LifeEventDefinition): DefinitionWithDefaults {
  return {
    ...definition,
    steps: definition.steps.map((step) => ({
      ...step,
      after: step.after ?? [],
      retry: step.retry ?? {
        attempts: DEFAULT_RETRY_POLICY.attempts,
        backoff: { ...DEFAULT_RETRY_POLICY.backoff },
      },
      onFailure: step.onFailure ?? DEFAULT_FAILURE_POLICY,
    })),
  };
}
