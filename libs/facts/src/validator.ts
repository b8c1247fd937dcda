import type { ValidateFunction } from 'ajv/dist/2020.js';
import type { FactType } from '#workflow';
import { FORMAT_NORMALISERS, isFactFormat } from './formats.js';
import { createSchemaCompiler, describeErrors, type FactValueProblem } from './schema.js';

export interface FactValidator {
  /** Is `key` in the catalogue? */
  has(key: string): boolean;
  /**
   * The problems of `value` as a value of fact `key`: empty when valid. Paths are JSON pointers
   * within the value (`/postalCode`, `` for the value itself); an unknown key is one problem.
   */
  validate(key: string, value: unknown): FactValueProblem[];
  /**
   * `value` with every string that has one of leo's formats rewritten to its canonical form
   * (see FORMAT_NORMALISERS: personnummer to 12 digits, organisation numbers to NNNNNN-NNNN,
   * postal codes to NNN NN, …). Pure: returns a new value, leaves anything it cannot read as it
   * is (validation then reports it), and returns `value` itself for an unknown key. Normalise
   * before validating and store the normalised value, so equal facts compare equal.
   */
  normalise(key: string, value: unknown): unknown;
}

/**
 * A validator for fact values against their catalogue schemas, each compiled once here.
 * Throws when a schema does not compile (parseFactCatalogue reports that for a file).
 */
export function createFactValidator(facts: readonly FactType[]): FactValidator {
  const compiler = createSchemaCompiler();
  const compiled = new Map<string, { fact: FactType; check: ValidateFunction }>();
  for (const fact of facts) {
    try {
      compiled.set(fact.key, { fact, check: compiler.compile(fact.schema) });
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      throw new Error(`The schema of fact type ${fact.key} does not compile: ${reason}`, {
        cause: error,
      });
    }
  }

  return {
    has: (key) => compiled.has(key),
    validate(key, value) {
      const entry = compiled.get(key);
      if (!entry) return [{ path: '', reason: `unknown fact type ${key}` }];
      if (entry.check(value)) return [];
      const problems = describeErrors(entry.check.errors ?? []);
      // A failing validator always reports an error; this only guards against an empty list.
      return problems.length > 0 ? problems : [{ path: '', reason: 'is not a valid value' }];
    },
    normalise(key, value) {
      const entry = compiled.get(key);
      return entry ? normaliseFactValue(entry.fact, value) : value;
    },
  };
}

/** `value` normalised for `fact`; see FactValidator.normalise. */
export function normaliseFactValue(fact: FactType, value: unknown): unknown {
  return normaliseBySchema(fact.schema, value);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Subschemas that apply to the same instance as their parent. */
const IN_PLACE = ['allOf', 'anyOf', 'oneOf'] as const;

function normaliseBySchema(schema: unknown, value: unknown): unknown {
  if (!isRecord(schema)) return value;
  let result = value;

  const format = schema.format;
  if (typeof result === 'string' && typeof format === 'string' && isFactFormat(format)) {
    result = FORMAT_NORMALISERS[format](result) ?? result;
  }

  if (isRecord(result) && isRecord(schema.properties)) {
    const properties = schema.properties;
    const copy: Record<string, unknown> = { ...result };
    for (const [name, sub] of Object.entries(properties)) {
      if (Object.hasOwn(copy, name)) copy[name] = normaliseBySchema(sub, copy[name]);
    }
    result = copy;
  }

  if (Array.isArray(result) && schema.items !== undefined) {
    const items = schema.items;
    result = (result as unknown[]).map((item) => normaliseBySchema(items, item));
  }

  // Branches: a normaliser rewrites only a value that has its format, so applying every branch's
  // is safe (a value is left alone by branches whose formats it does not have).
  for (const keyword of IN_PLACE) {
    const branches = schema[keyword];
    if (Array.isArray(branches)) {
      for (const branch of branches) result = normaliseBySchema(branch, result);
    }
  }
  for (const keyword of ['then', 'else'] as const) {
    if (schema[keyword] !== undefined) result = normaliseBySchema(schema[keyword], result);
  }
  return result;
}
