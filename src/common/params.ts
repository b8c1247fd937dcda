import type { PipeTransform } from '@nestjs/common';
import { AGENCY_CODE_PATTERN } from '#agency-contract';
import { DEFINITION_KEY_PATTERN, FACT_KEY_PATTERN, STEP_ID_PATTERN } from '#workflow';
import { DomainError } from './domain-error.js';

/**
 * Path parameters checked before anything reaches the database: a malformed one is a 400 naming
 * the parameter, never a 404 by accident or a 500 from Postgres (NUL bytes, integer overflow).
 */
class PatternParam implements PipeTransform<string, string> {
  constructor(
    private readonly name: string,
    private readonly pattern: RegExp,
    private readonly description: string,
  ) {}

  transform(value: string): string {
    if (!this.pattern.test(value)) {
      throw new DomainError('invalid', 'validation-failed', `The ${this.name} is malformed.`, [
        { path: this.name, reason: `must be ${this.description}` },
      ]);
    }
    return value;
  }
}

export const LifeEventKeyParam = new PatternParam(
  'key',
  DEFINITION_KEY_PATTERN,
  'a kebab-case life-event key',
);
export const FactKeyParam = new PatternParam(
  'key',
  FACT_KEY_PATTERN,
  'a dotted fact key such as person.address',
);
export const AgencyCodeParam = new PatternParam(
  'code',
  AGENCY_CODE_PATTERN,
  'a lower-case agency code',
);
export const CredentialIdParam = new PatternParam(
  'id',
  /^[0-9a-f]{12}$/,
  'an agency credential id (12 hex digits)',
);
export const StepIdParam = new PatternParam('stepId', STEP_ID_PATTERN, 'a kebab-case step id');

/** A version in a path: a positive integer that fits Postgres' integer. */
export const VersionParam: PipeTransform<string, number> = {
  transform(value: string): number {
    if (!/^[1-9]\d{0,8}$/.test(value)) {
      throw new DomainError(
        'invalid',
        'validation-failed',
        'The version must be a positive integer.',
        [{ path: 'version', reason: 'must be a positive integer' }],
      );
    }
    return Number(value);
  },
};

const MAX_DEPTH = 32;

/**
 * Refuses JSON that Postgres or the validators cannot take safely: NUL characters (jsonb refuses
 * them) and nesting deeper than any real document (recursion would overflow the stack).
 */
export function assertStorableJson(value: unknown): void {
  walkJson(value, (node) => {
    if (typeof node === 'string') {
      if (node.includes('\u0000')) throw nulError();
    } else if (node !== null && typeof node === 'object' && !Array.isArray(node)) {
      for (const key of Object.keys(node)) if (key.includes('\u0000')) throw nulError();
    }
  });
}

/**
 * Refuses a document nested deeper than any real one, before anything recursive (a validator,
 * class-transformer) walks it and overflows the stack.
 */
export function assertNotTooDeep(value: unknown): void {
  walkJson(value, () => undefined);
}

/** Visits every node of a JSON document without recursion, refusing it past MAX_DEPTH. */
function walkJson(value: unknown, visit: (node: unknown) => void): void {
  const stack: Array<{ node: unknown; depth: number }> = [{ node: value, depth: 0 }];
  while (stack.length > 0) {
    const { node, depth } = stack.pop() as { node: unknown; depth: number };
    if (depth > MAX_DEPTH) {
      throw new DomainError(
        'invalid',
        'too-deep',
        `The document is nested deeper than ${MAX_DEPTH} levels.`,
        [{ path: '', reason: `must not be nested deeper than ${MAX_DEPTH} levels` }],
      );
    }
    visit(node);
    if (Array.isArray(node)) {
      for (const item of node) stack.push({ node: item, depth: depth + 1 });
    } else if (node !== null && typeof node === 'object') {
      for (const item of Object.values(node)) stack.push({ node: item, depth: depth + 1 });
    }
  }
}

function nulError(): DomainError {
  return new DomainError('invalid', 'nul-character', 'The document contains a NUL character.', [
    { path: '', reason: 'must not contain NUL characters' },
  ]);
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** A UUID in a path (case, message, step run ids), lower case as Postgres writes it. */
export const UuidParam = (name: string): PipeTransform<string, string> =>
  new PatternParam(name, UUID, 'a UUID');
