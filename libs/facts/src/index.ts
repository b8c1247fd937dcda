/**
 * The fact catalogue and fact values: reading config/facts.yaml and config/agencies.yaml (or the
 * same entries from the admin API), checking them against each other, and validating and
 * normalising fact values against their JSON Schemas with leo's Swedish formats. Pure: no Nest,
 * no I/O.
 */
export {
  ACTION_NAME_PATTERN,
  AGENCY_CODE_PATTERN,
  FACT_KEY_PATTERN,
  checkCatalogue,
  formatFactSource,
  parseAgencies,
  parseFactCatalogue,
  parseFactSource,
  type AgenciesParseResult,
  type CatalogueProblem,
  type FactCatalogueParseResult,
} from './catalogue.js';
export {
  FACT_FORMATS,
  FORMAT_CHECKS,
  FORMAT_NORMALISERS,
  FORMAT_REASONS,
  isFactFormat,
  type FactFormat,
} from './formats.js';
export { type FactValueProblem } from './schema.js';
export { createFactValidator, normaliseFactValue, type FactValidator } from './validator.js';
