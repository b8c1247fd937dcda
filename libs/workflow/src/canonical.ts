import { createHash } from 'node:crypto';
import type { LifeEventDefinition } from './types.js';

/**
 * JSON with object keys sorted (by UTF-16 code unit, as RFC 8785 does) and no whitespace, so that
 * equal values always give equal text: the basis of checksums and of comparing conditions.
 * Follows JSON.stringify otherwise: undefined properties are left out, undefined array elements
 * and non-finite numbers become null.
 */
export function canonicalJson(value: unknown): string {
  return write(value) ?? 'null';
}

function write(value: unknown): string | undefined {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'string':
    case 'boolean':
    case 'number':
      return JSON.stringify(value);
    case 'object': {
      if (Array.isArray(value)) {
        return `[${value.map((item: unknown) => write(item) ?? 'null').join(',')}]`;
      }
      const entries: string[] = [];
      for (const key of Object.keys(value).sort()) {
        const text = write((value as Record<string, unknown>)[key]);
        if (text !== undefined) entries.push(`${JSON.stringify(key)}:${text}`);
      }
      return `{${entries.join(',')}}`;
    }
    case 'bigint':
      throw new TypeError('canonicalJson: a bigint has no JSON form');
    default:
      // undefined, functions, symbols: not JSON, left out as JSON.stringify does.
      return undefined;
  }
}

/** `sha256:<hex>` of the canonical JSON of a definition, exactly as given (defaults not applied). */
export function definitionChecksum(definition: LifeEventDefinition): string {
  return `sha256:${createHash('sha256').update(canonicalJson(definition)).digest('hex')}`;
}
