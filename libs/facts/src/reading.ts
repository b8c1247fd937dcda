import { parseDocument } from 'yaml';
import type { LocalisedText } from '#workflow';

/** A problem in a catalogue file or entry: a JSON pointer into it and what is wrong there. */
export interface CatalogueProblem {
  path: string;
  message: string;
}

/**
 * Readers of catalogue entries (config/facts.yaml, config/agencies.yaml or the same entries from
 * the admin API): each checks one property and reports what is wrong at its JSON pointer.
 */

/** Collects problems under a JSON pointer prefix. */
export class Problems {
  constructor(
    private readonly prefix: string,
    private readonly sink: CatalogueProblem[],
  ) {}

  add(path: string, message: string): void {
    this.sink.push({ path: `${this.prefix}${path}`, message });
  }

  count(): number {
    return this.sink.length;
  }

  under(path: string): Problems {
    return new Problems(`${this.prefix}${path}`, this.sink);
  }
}

export function parseYamlList(text: string, problems: CatalogueProblem[]): unknown[] | undefined {
  const doc = parseDocument(text, { prettyErrors: true });
  if (doc.errors.length > 0) {
    for (const error of doc.errors)
      problems.push({ path: '', message: `not valid YAML: ${error.message}` });
    return undefined;
  }
  const root: unknown = doc.toJS({ maxAliasCount: 1000 });
  if (!Array.isArray(root)) {
    problems.push({ path: '', message: 'must be a list' });
    return undefined;
  }
  return root as unknown[];
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function escapePointer(segment: string): string {
  return segment.replace(/~/g, '~0').replace(/\//g, '~1');
}

export function readObject(
  value: unknown,
  at: Problems,
  path: string,
  allowed: readonly string[],
): Record<string, unknown> | undefined {
  if (!isRecord(value)) {
    at.add(path, 'must be an object');
    return undefined;
  }
  for (const name of Object.keys(value)) {
    if (!allowed.includes(name))
      at.add(`${path}/${escapePointer(name)}`, 'is not a known property');
  }
  return value;
}

export function readString(
  object: Record<string, unknown>,
  name: string,
  at: Problems,
  pattern?: { regex: RegExp; describe: string },
): string | undefined {
  const value = object[name];
  if (value === undefined) {
    at.add(`/${name}`, 'is required');
    return undefined;
  }
  if (typeof value !== 'string' || value.trim() === '') {
    at.add(`/${name}`, 'must be a non-empty string');
    return undefined;
  }
  if (pattern && !pattern.regex.test(value)) {
    at.add(`/${name}`, `must be ${pattern.describe}`);
    return undefined;
  }
  return value;
}

export function readText(
  object: Record<string, unknown>,
  name: string,
  at: Problems,
  required: boolean,
) {
  const value = object[name];
  if (value === undefined) {
    if (required) at.add(`/${name}`, 'is required');
    return undefined;
  }
  const text = readObject(value, at, `/${name}`, ['sv', 'en']);
  if (!text) return undefined;
  const inner = at.under(`/${name}`);
  const sv = readString(text, 'sv', inner);
  const en = readString(text, 'en', inner);
  return sv !== undefined && en !== undefined ? ({ sv, en } satisfies LocalisedText) : undefined;
}

export function readStringList(
  object: Record<string, unknown>,
  name: string,
  at: Problems,
  pattern: { regex: RegExp; describe: string },
): string[] | undefined {
  const value = object[name];
  if (value === undefined) {
    at.add(`/${name}`, 'is required (use [] for none)');
    return undefined;
  }
  if (!Array.isArray(value)) {
    at.add(`/${name}`, 'must be a list');
    return undefined;
  }
  const before = at.count();
  const items: string[] = [];
  (value as unknown[]).forEach((item, i) => {
    if (typeof item !== 'string' || !pattern.regex.test(item)) {
      at.add(`/${name}/${i}`, `must be ${pattern.describe}`);
    } else if (items.includes(item)) {
      at.add(`/${name}/${i}`, `${item} is listed twice`);
    } else items.push(item);
  });
  return at.count() === before ? items : undefined;
}
