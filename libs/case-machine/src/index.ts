/**
 * The case machine: what happens to a case, as pure functions (no Nest, no I/O). The state of a
 * case and one input go in; the new state, its events and its effects come out.
 */
export * from './records.js';
export * from './types.js';
export { DEADLINE_TOLERANCE_MS, decide, openCase } from './machine.js';
export { LOOKUP_ATTEMPTS } from './draft.js';
export { backoffDelayMs, lookupBackoffMs } from './steps.js';
export { checkProduced } from './outcomes.js';
export { isHeldNotOnboarded } from './routing.js';
export {
  IDENTITY_FACT,
  answerable,
  buildPreview,
  known,
  relevantInputs,
  resolve,
  usableFacts,
  type Preview,
  type PreviewFact,
  type PreviewSource,
  type PreviewStep,
  type Resolution,
  type ResolutionState,
} from './resolution.js';
