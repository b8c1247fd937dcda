import { Ajv2020, type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js';
import formats from 'ajv-formats';
import { createRequire } from 'node:module';
import type * as Re2Module from 're2-wasm';
import { FACT_FORMATS, FORMAT_CHECKS, FORMAT_REASONS } from './formats.js';

// re2-wasm is CommonJS (a WebAssembly build of RE2, no native addon to compile).
const { RE2 } = createRequire(import.meta.url)('re2-wasm') as typeof Re2Module;

/** RE2 as ajv's pattern engine; RE2 wants the unicode flag always. */
const RE2_ENGINE = Object.assign(
  (pattern: string, flags: string) => new RE2(pattern, flags.includes('u') ? flags : `${flags}u`),
  { code: 'new (require("re2-wasm").RE2)' },
);

// ajv-formats is CommonJS (`module.exports = plugin`, and `plugin.default = plugin`); under
// NodeNext its default import is typed as the module object, whose `default` is the plugin.
const addFormats = formats.default;

/** One refusal of a fact value: a JSON pointer into the value and a reason for people. */
export interface FactValueProblem {
  path: string;
  reason: string;
}

export interface SchemaCompiler {
  /** Compiles (cached by ajv per schema object); throws when the schema is invalid. */
  compile(schema: Record<string, unknown>): ValidateFunction;
  /** The compile error's message, or undefined when the schema compiles. */
  tryCompile(schema: Record<string, unknown>): string | undefined;
}

/**
 * An ajv instance for JSON Schema draft 2020-12 with leo's formats and ajv-formats' standard
 * ones. Strict: an unknown keyword or format is a compile error, not a silently ignored typo.
 * `allErrors`, so a citizen sees every problem of a value at once.
 */
export function createSchemaCompiler(): SchemaCompiler {
  const ajv = new Ajv2020({
    allErrors: true,
    strict: true,
    allowUnionTypes: true,
    logger: false,
    // Patterns (an administrator's, in a fact type's schema) run on RE2, in time linear in the
    // value: `^(\d+)+$` took JavaScript's engine seconds on 30 characters, blocking the event
    // loop. A pattern RE2 cannot run (a lookahead, a back-reference) does not compile, and the
    // fact type is refused, naming it.
    code: { regExp: RE2_ENGINE },
  });
  addFormats(ajv);
  for (const name of FACT_FORMATS) {
    ajv.addFormat(name, { type: 'string', validate: FORMAT_CHECKS[name] });
  }
  return {
    compile: (schema) => ajv.compile(schema),
    tryCompile: (schema) => {
      try {
        ajv.compile(schema);
        return undefined;
      } catch (error) {
        return error instanceof Error ? error.message : String(error);
      }
    },
  };
}

function escapePointer(segment: string): string {
  return segment.replace(/~/g, '~0').replace(/\//g, '~1');
}

const TYPE_NAMES: Readonly<Record<string, string>> = {
  string: 'a string',
  integer: 'a whole number',
  number: 'a number',
  boolean: 'true or false',
  object: 'an object',
  array: 'a list',
  null: 'null',
};

function describeType(type: unknown): string {
  const types = Array.isArray(type) ? type : [type];
  return types.map((t) => (typeof t === 'string' ? (TYPE_NAMES[t] ?? t) : String(t))).join(' or ');
}

/** Turns ajv's errors into problems with a precise path and a reason a person can act on. */
export function describeErrors(errors: readonly ErrorObject[]): FactValueProblem[] {
  const problems: FactValueProblem[] = [];
  const seen = new Set<string>();
  const add = (path: string, reason: string) => {
    const id = `${path}\u0000${reason}`;
    if (seen.has(id)) return;
    seen.add(id);
    problems.push({ path, reason });
  };
  for (const error of errors) {
    const params = error.params as Record<string, unknown>;
    const at = error.instancePath;
    switch (error.keyword) {
      // `if` only says that `then`/`else` failed, whose own errors follow.
      case 'if':
        break;
      case 'required':
        add(`${at}/${escapePointer(String(params.missingProperty))}`, 'is required');
        break;
      case 'additionalProperties':
        add(`${at}/${escapePointer(String(params.additionalProperty))}`, 'is not allowed here');
        break;
      case 'unevaluatedProperties':
        add(`${at}/${escapePointer(String(params.unevaluatedProperty))}`, 'is not allowed here');
        break;
      case 'format': {
        const format = String(params.format);
        add(at, FORMAT_REASONS[format] ?? `must be a valid ${format}`);
        break;
      }
      case 'type':
        add(at, `must be ${describeType(params.type)}`);
        break;
      case 'enum':
        add(
          at,
          `must be one of ${(params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`,
        );
        break;
      case 'const':
        add(at, `must be ${JSON.stringify(params.allowedValue)}`);
        break;
      default:
        add(at, error.message ?? `fails ${error.keyword}`);
    }
  }
  return problems;
}
