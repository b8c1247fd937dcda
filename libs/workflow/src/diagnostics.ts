import type { Diagnostic } from './types.js';

/**
 * Every code `parseDefinition` and `validate` can report, with what it means. Codes are wire
 * names (the admin API and the CLI show them): add new ones, never rename.
 */
export const DIAGNOSTIC_CODES = {
  syntax: 'The text is not valid YAML or JSON.',
  'invalid-shape':
    'The definition does not match its JSON Schema (a missing, unknown or mistyped property).',
  'duplicate-step-id': 'Two steps have the same id; reported at the second.',
  'unknown-fact':
    'A fact key in inputs, needs or produces, or read by a when condition, is not in the catalogue.',
  'unknown-agency': 'The step names an agency that is not in the catalogue.',
  'unknown-action': "The step names an action that is not among its agency's actions.",
  'unknown-step': 'An after entry names no step of the definition.',
  'input-not-askable':
    'An input is a fact that only a step can produce; it can be neither asked nor looked up.',
  'need-unavailable':
    'A needed fact is neither an input (asked or looked up) nor produced by any step.',
  'need-conditional':
    "A needed fact is produced only by a step with a when condition that the consumer's condition does not include, so the consumer could run while the producer is skipped.",
  'produced-twice': 'Two steps that can both run produce the same fact.',
  cycle: 'Steps depend on each other (through after or through facts) in a cycle.',
  'unreachable-step':
    'The step can never run: its when condition is always false, or a fact it needs comes only from steps that never run.',
  'when-invalid':
    'The when condition uses an operator that is not allowed, an object with other than one key, or a var whose path is not a literal string.',
  'when-unavailable-fact':
    'The when condition reads a fact that is neither an input nor produced by a step that always runs before this one.',
  'agency-route-unclear':
    "The step's agency is many agencies (the municipalities), and the step needs not exactly one fact of its routing format (the municipality code), so leo cannot tell which one it goes to.",
  'produces-not-supplied': "A produced fact is not among the agency action's produces.",
  'retry-out-of-range':
    'A retry setting is out of range (attempts 1-20, initialDelayMs 100-3600000, maxDelayMs initialDelayMs-86400000, multiplier 1-10, jitter 0-1).',
  'deadline-invalid': 'The deadline is not an ISO 8601 duration such as P30D or PT12H.',
  'deadline-out-of-range': 'The deadline is shorter than PT1M or longer than P2Y.',
  'input-unused': 'An input that no step needs and no when condition reads (a warning).',
  'action-not-served':
    "The step's agency is served by leo's mock, which neither has the action built in nor has it configured (the action's mock): its jobs would never be done.",
  'mock-reads-unsent-fact':
    "The configured mock of the step's action reads a fact (requires, or produce from) that the step does not need, so its job never carries it.",
  'no-instance-onboarded':
    "The step's agency is many agencies (the municipalities), and none of them is onboarded yet (a warning: its steps wait, shown as delayed).",
  'no-adapter-credential':
    "The step's agency is served by an external adapter, and no credential has been issued for one yet (a warning: its jobs wait until an adapter connects).",
} as const satisfies Record<string, string>;

export type DiagnosticCode = keyof typeof DIAGNOSTIC_CODES;

export function escapePointerToken(token: string): string {
  return token.replace(/~/g, '~0').replace(/\//g, '~1');
}

/** Sorted by path (numeric tokens as numbers), then code, then message; duplicates dropped. */
export function sortDiagnostics(diagnostics: readonly Diagnostic[]): Diagnostic[] {
  const unique = new Map<string, Diagnostic>();
  for (const d of diagnostics) unique.set(`${d.path}\u0000${d.code}\u0000${d.message}`, d);
  return [...unique.values()].sort(
    (a, b) =>
      comparePointers(a.path, b.path) ||
      compareText(a.code, b.code) ||
      compareText(a.message, b.message),
  );
}

function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export function comparePointers(a: string, b: string): number {
  const left = a.split('/');
  const right = b.split('/');
  for (let i = 0; i < Math.min(left.length, right.length); i++) {
    const x = left[i] ?? '';
    const y = right[i] ?? '';
    if (x === y) continue;
    if (/^\d+$/.test(x) && /^\d+$/.test(y)) return Number(x) - Number(y);
    return compareText(x, y);
  }
  return left.length - right.length;
}
