import { AGENCY_CODE_PATTERN } from '#agency-contract';
import { Ajv2020, type ErrorObject } from 'ajv/dist/2020.js';
import { parseDocument } from 'yaml';
import { FAILURE_POLICIES, STEP_KINDS } from './types.js';
import { escapePointerToken, sortDiagnostics } from './diagnostics.js';
import type { Diagnostic, LifeEventDefinition } from './types.js';

export const DEFINITION_KEY_PATTERN = /^[a-z][a-z0-9-]{1,62}$/;
export const FACT_KEY_PATTERN = /^[a-z][a-zA-Z0-9]*(\.[a-z][a-zA-Z0-9]*)+$/;
export const STEP_ID_PATTERN = /^[a-z][a-z0-9-]{0,62}$/;
export const ACTION_NAME_PATTERN = /^[a-z][a-z0-9]*(-[a-z0-9]+)*$/;
const NON_BLANK_PATTERN = /\S/;

// Ajv reports a failed pattern by its source; these say what the pattern means.
const PATTERN_MESSAGES = new Map<string, string>([
  [
    DEFINITION_KEY_PATTERN.source,
    'must be 2 to 63 characters: a lower-case letter, then lower-case letters, digits or hyphens',
  ],
  [
    FACT_KEY_PATTERN.source,
    'must be a fact key: two or more dot-separated lower camel case words, e.g. business.orgNumber',
  ],
  [
    STEP_ID_PATTERN.source,
    'must be 1 to 63 characters: a lower-case letter, then lower-case letters, digits or hyphens',
  ],
  [
    AGENCY_CODE_PATTERN.source,
    'must be an agency code: 2 to 32 characters, a lower-case letter, then lower-case letters, digits or hyphens',
  ],
  [
    ACTION_NAME_PATTERN.source,
    'must be kebab-case: lower-case words of letters and digits joined by single hyphens',
  ],
  [NON_BLANK_PATTERN.source, 'must not be blank'],
]);

const localisedText = {
  type: 'object',
  description: 'A text shown to people, in Swedish and English.',
  additionalProperties: false,
  required: ['sv', 'en'],
  properties: {
    sv: { type: 'string', pattern: NON_BLANK_PATTERN.source },
    en: { type: 'string', pattern: NON_BLANK_PATTERN.source },
  },
};

const factKeys = {
  type: 'array',
  uniqueItems: true,
  items: { type: 'string', pattern: FACT_KEY_PATTERN.source },
};

/**
 * The published JSON Schema (draft 2020-12) of a life-event definition: its shape only. What
 * needs the catalogue or a view of the whole definition (unknown facts, cycles, retry ranges) is
 * checked by `validate`, which gives each problem its own code.
 */
export const definitionJsonSchema = deepFreeze({
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  title: 'leo life-event definition',
  description:
    'A life event: the steps that agencies perform for a citizen, the facts each step needs and produces, and when it runs.',
  type: 'object',
  additionalProperties: false,
  required: ['key', 'version', 'title', 'description', 'inputs', 'steps'],
  properties: {
    key: {
      description: 'Permanent, kebab-case, e.g. start-business.',
      type: 'string',
      pattern: DEFINITION_KEY_PATTERN.source,
    },
    version: {
      description: 'A published version never changes.',
      type: 'integer',
      minimum: 1,
    },
    title: { $ref: '#/$defs/localisedText' },
    description: { $ref: '#/$defs/localisedText' },
    inputs: {
      description:
        'Facts the life event may ask of the citizen or look up from an authoritative agency.',
      ...factKeys,
    },
    steps: { type: 'array', minItems: 1, items: { $ref: '#/$defs/step' } },
  },
  $defs: {
    localisedText,
    step: {
      type: 'object',
      additionalProperties: false,
      required: ['id', 'agency', 'action', 'kind', 'needs', 'produces'],
      properties: {
        id: {
          description: 'Unique within the definition, kebab-case.',
          type: 'string',
          pattern: STEP_ID_PATTERN.source,
        },
        agency: {
          description: 'An agency code from the catalogue.',
          type: 'string',
          pattern: AGENCY_CODE_PATTERN.source,
        },
        action: {
          description: "One of the agency's actions.",
          type: 'string',
          maxLength: 63,
          pattern: ACTION_NAME_PATTERN.source,
        },
        kind: { enum: [...STEP_KINDS] },
        title: { $ref: '#/$defs/localisedText' },
        needs: {
          description: 'Facts the step consumes: exactly what its job carries to the agency.',
          ...factKeys,
        },
        produces: {
          description: 'Facts the step yields: the only facts its result may set.',
          ...factKeys,
        },
        when: {
          description:
            'A JSON Logic rule over facts; the step runs only when it is truthy, else it is skipped.',
        },
        after: {
          description: 'Step ids this step runs after, besides the producers of what it needs.',
          type: 'array',
          uniqueItems: true,
          items: { type: 'string', pattern: STEP_ID_PATTERN.source },
        },
        retry: { $ref: '#/$defs/retry' },
        deadline: {
          description: 'ISO 8601 duration (e.g. P30D) after which the step is overdue.',
          type: 'string',
        },
        onFailure: { enum: [...FAILURE_POLICIES] },
      },
    },
    retry: {
      type: 'object',
      additionalProperties: false,
      required: ['attempts', 'backoff'],
      properties: {
        attempts: { description: 'Total attempts including the first, 1 to 20.', type: 'integer' },
        backoff: {
          type: 'object',
          additionalProperties: false,
          required: ['type', 'initialDelayMs', 'maxDelayMs', 'multiplier', 'jitter'],
          properties: {
            type: { const: 'exponential' },
            initialDelayMs: { description: '100 to 3,600,000.', type: 'number' },
            maxDelayMs: { description: 'initialDelayMs to 86,400,000.', type: 'number' },
            multiplier: { description: '1 to 10.', type: 'number' },
            jitter: {
              description: 'Fraction of the delay randomised away, 0 to 1.',
              type: 'number',
            },
          },
        },
      },
    },
  },
});

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}

const ajv = new Ajv2020({ allErrors: true, strict: true });
const validateShape = ajv.compile<LifeEventDefinition>(definitionJsonSchema);

/** Shape problems of a parsed value, as `invalid-shape` diagnostics (unsorted). */
export function shapeDiagnostics(value: unknown): Diagnostic[] {
  if (validateShape(value)) return [];
  const diagnostics: Diagnostic[] = [];
  for (const error of validateShape.errors ?? []) {
    if (error.keyword === 'uniqueItems') {
      diagnostics.push(...duplicateItems(value, error.instancePath));
    } else {
      diagnostics.push(shapeError(error));
    }
  }
  return diagnostics;
}

function shapeError(error: ErrorObject): Diagnostic {
  const params = error.params as Record<string, unknown>;
  let path = error.instancePath;
  let message: string;
  switch (error.keyword) {
    case 'required':
      path += `/${escapePointerToken(String(params.missingProperty))}`;
      message = 'is required';
      break;
    case 'additionalProperties':
      // Point at the unknown property itself: that is what the author must remove or rename.
      path += `/${escapePointerToken(String(params.additionalProperty))}`;
      message = 'is not a known property';
      break;
    case 'type':
      message = `must be ${withArticle(String(params.type))}`;
      break;
    case 'pattern': {
      const pattern = String(params.pattern);
      message = PATTERN_MESSAGES.get(pattern) ?? `must match ${pattern}`;
      break;
    }
    case 'enum':
      message = `must be one of ${(params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`;
      break;
    case 'const':
      message = `must be ${JSON.stringify(params.allowedValue)}`;
      break;
    case 'minimum':
      message = `must be at least ${String(params.limit)}`;
      break;
    case 'minItems':
      message = `must have at least ${String(params.limit)} item${params.limit === 1 ? '' : 's'}`;
      break;
    case 'maxLength':
      message = `must be at most ${String(params.limit)} characters`;
      break;
    default:
      message = error.message ?? 'is invalid';
  }
  return { severity: 'error', code: 'invalid-shape', path, message };
}

function withArticle(type: string): string {
  return /^[aeiou]/.test(type) ? `an ${type}` : `a ${type}`;
}

/** Ajv reports one pair of duplicates; the author wants to see every repeated entry. */
function duplicateItems(root: unknown, arrayPath: string): Diagnostic[] {
  const array = valueAtPointer(root, arrayPath);
  if (!Array.isArray(array)) return [];
  const seen = new Set<string>();
  const diagnostics: Diagnostic[] = [];
  array.forEach((item: unknown, index) => {
    const text = JSON.stringify(item);
    if (seen.has(text)) {
      diagnostics.push({
        severity: 'error',
        code: 'invalid-shape',
        path: `${arrayPath}/${index}`,
        message: `repeats ${text}`,
      });
    }
    seen.add(text);
  });
  return diagnostics;
}

function valueAtPointer(root: unknown, pointer: string): unknown {
  let value = root;
  for (const raw of pointer.split('/').slice(1)) {
    const token = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (typeof value !== 'object' || value === null || !Object.hasOwn(value, token)) {
      return undefined;
    }
    value = (value as Record<string, unknown>)[token];
  }
  return value;
}

/**
 * Reads a definition authored as YAML (the default; YAML also reads JSON) or JSON and checks its
 * shape. A definition comes back only when it has no problems. Defaults are not applied here
 * (see `withDefaults`), so what is stored is what the author wrote.
 */
export function parseDefinition(
  text: string,
  format: 'yaml' | 'json' = 'yaml',
): { definition?: LifeEventDefinition; diagnostics: Diagnostic[] } {
  const parsed = format === 'json' ? parseJson(text) : parseYaml(text);
  if ('diagnostics' in parsed) return { diagnostics: parsed.diagnostics };
  const diagnostics = shapeDiagnostics(parsed.value);
  if (diagnostics.length > 0) return { diagnostics: sortDiagnostics(diagnostics) };
  return { definition: parsed.value as LifeEventDefinition, diagnostics: [] };
}

type Parsed = { value: unknown } | { diagnostics: Diagnostic[] };

function syntax(message: string): Diagnostic {
  return { severity: 'error', code: 'syntax', path: '', message };
}

function parseJson(text: string): Parsed {
  try {
    // Editors on Windows may save a byte order mark, which JSON.parse refuses.
    return { value: JSON.parse(text.replace(/^\uFEFF/, '')) as unknown };
  } catch (error) {
    return { diagnostics: [syntax(`invalid JSON: ${errorMessage(error)}`)] };
  }
}

function parseYaml(text: string): Parsed {
  try {
    // YAML 1.2 core schema: plain JSON-compatible values, no dates or custom tags; duplicate keys
    // are errors.
    const document = parseDocument(text, { schema: 'core', uniqueKeys: true });
    if (document.errors.length > 0) {
      return { diagnostics: document.errors.map((e) => syntax(`invalid YAML: ${e.message}`)) };
    }
    // Alias expansion is capped so that a small "billion laughs" document cannot exhaust memory.
    return { value: document.toJS({ maxAliasCount: 100 }) as unknown };
  } catch (error) {
    return { diagnostics: [syntax(`invalid YAML: ${errorMessage(error)}`)] };
  }
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
