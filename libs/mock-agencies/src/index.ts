/**
 * leo's mock agencies as pure decisions: each built-in agency's actions and registers
 * (./agencies), the shape they are written in (mock-agency.ts), and mocks an administrator
 * configures as data on an action (configured-mock.ts). No Nest, no I/O: the runner and ledger
 * that serve them on their queues are in src/adapters.
 */
export { BUILT_IN_MOCK_ACTIONS, MOCK_AGENCIES } from './agencies/index.js';
export { municipalityOf } from './agencies/kommun.js';
export {
  actionServing,
  composeMock,
  configuredAction,
  fillTemplate,
  produceConfigured,
  sampleProduced,
  unservedActions,
  type ActionServing,
  type ProducedCheck,
} from './configured-mock.js';
export * from './mock-agency.js';
export * from './organisation-number.js';
export * from './registers.js';
