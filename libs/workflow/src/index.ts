/**
 * The life-event definition language: parse and check definitions, and plan what a case can do
 * next. Pure functions, no I/O: used by leo's services and by anyone authoring definitions.
 */
export * from './types.js';
export {
  ACTION_NAME_PATTERN,
  DEFINITION_KEY_PATTERN,
  FACT_KEY_PATTERN,
  STEP_ID_PATTERN,
  definitionJsonSchema,
  parseDefinition,
} from './schema.js';
export { DIAGNOSTIC_CODES, sortDiagnostics, type DiagnosticCode } from './diagnostics.js';
export { validate } from './validate.js';
export { servingDiagnostics, type Serving } from './serving.js';
export { DEFAULT_FAILURE_POLICY, DEFAULT_RETRY_POLICY, withDefaults } from './defaults.js';
export { dependencies } from './graph.js';
export { plan } from './plan.js';
export { WHEN_OPERATORS, conditionFacts, describeRule, evaluateCondition } from './conditions.js';
export { toMermaid } from './mermaid.js';
export { canonicalJson, definitionChecksum } from './canonical.js';
export { nominalDurationMs, parseIsoDuration, type IsoDuration } from './duration.js';
export {
  INSTANCE_ID_PATTERN,
  agencyByCode,
  instanceAgency,
  instanceCode,
  queuedAgencies,
  routeStep,
  routeTo,
  routingNeed,
} from './instances.js';
