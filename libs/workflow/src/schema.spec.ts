import { describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { WORKLOAD, WORKLOAD_YAML } from '../test/fixtures.js';
import {
  DEFAULT_RETRY_POLICY,
  definitionJsonSchema,
  parseDefinition,
  withDefaults,
  type LifeEventDefinition,
} from './index.js';

describe('definitionJsonSchema', () => {
  it('is what docs/schemas/life-event.schema.json publishes', () => {
    // If this fails, regenerate the file: see libs/workflow/scripts/write-schema.ts.
    const file = new URL('../../../docs/schemas/life-event.schema.json', import.meta.url);
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual(definitionJsonSchema);
  });

  it('is draft 2020-12 and cannot be changed by a caller', () => {
    expect(definitionJsonSchema.$schema).toBe('https://json-schema.org/draft/2020-12/schema');
    expect(Object.isFrozen(definitionJsonSchema.properties.key)).toBe(true);
  });
});

describe('parseDefinition', () => {
  it('reads the workload from YAML, and the same from JSON', () => {
    const yaml = parseDefinition(WORKLOAD_YAML);
    expect(yaml.diagnostics).toEqual([]);
    const json = parseDefinition(JSON.stringify(yaml.definition), 'json');
    expect(json).toEqual({ definition: yaml.definition, diagnostics: [] });
  });

  it('does not apply defaults', () => {
    const { definition } = parseDefinition(WORKLOAD_YAML);
    expect(definition?.steps[0]).not.toHaveProperty('retry');
    expect(definition?.steps[0]).not.toHaveProperty('after');
    expect(definition?.steps[0]).not.toHaveProperty('onFailure');
  });

  it.each([
    ['yaml', 'key: [start-business', /^invalid YAML: /],
    ['yaml', 'key: a\nkey: b\n', /^invalid YAML: .*unique/i],
    ['yaml', '---\nkey: a\n---\nkey: b\n', /^invalid YAML: /],
    ['json', '{"key": "start-business",}', /^invalid JSON: /],
    ['json', 'key: start-business', /^invalid JSON: /],
  ] as const)('reports a %s syntax error at the empty pointer: %j', (format, text, message) => {
    const { definition, diagnostics } = parseDefinition(text, format);
    expect(definition).toBeUndefined();
    expect(diagnostics.length).toBeGreaterThan(0);
    for (const d of diagnostics) {
      expect(d).toEqual({
        severity: 'error',
        code: 'syntax',
        path: '',
        message: expect.any(String),
      });
      expect(d.message).toMatch(message);
    }
  });

  it('refuses a YAML bomb of aliases', () => {
    const bomb = [
      'a: &a [x, x, x, x, x, x, x, x, x, x]',
      'b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]',
      'c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]',
      'd: [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]',
    ].join('\n');
    expect(parseDefinition(bomb).diagnostics.map((d) => d.code)).toEqual(['syntax']);
  });

  it('reports shape errors with the pointer of the offending value', () => {
    const text = WORKLOAD_YAML.replace('version: 1', 'version: 0').replace(
      'kind: decision\n    needs: [business.orgNumber, business.expectedTurnover]',
      'kind: decision\n    colour: blue\n    needs: [business.orgNumber, business.expectedTurnover]',
    );
    expect(parseDefinition(text)).toEqual({
      diagnostics: [
        {
          severity: 'error',
          code: 'invalid-shape',
          path: '/steps/1/colour',
          message: 'is not a known property',
        },
        {
          severity: 'error',
          code: 'invalid-shape',
          path: '/version',
          message: 'must be at least 1',
        },
      ],
    });
  });

  it('reads YAML dates and other tags as plain strings (YAML 1.2 core schema)', () => {
    const text = WORKLOAD_YAML.replace('deadline: P30D', 'deadline: 2026-01-01');
    expect(parseDefinition(text).definition?.steps[1]?.deadline).toBe('2026-01-01');
  });
});

describe('withDefaults', () => {
  it('fills after, retry and onFailure, keeping what is given', () => {
    const filled = withDefaults(WORKLOAD);
    const [a, , , , , f] = filled.steps;
    expect(a?.after).toEqual([]);
    expect(a?.retry).toEqual({
      attempts: 5,
      backoff: {
        type: 'exponential',
        initialDelayMs: 1000,
        maxDelayMs: 300000,
        multiplier: 2,
        jitter: 0.2,
      },
    });
    expect(a?.onFailure).toBe('action-required');
    expect(f?.after).toEqual(['f-tax', 'vat', 'employer']);
    expect(f?.retry.attempts).toBe(3);
  });

  it('returns a new definition and shares no default object between steps', () => {
    const original: LifeEventDefinition = structuredClone(WORKLOAD);
    const filled = withDefaults(original);
    expect(original).toEqual(WORKLOAD);
    expect(filled.steps[0]?.retry).not.toBe(filled.steps[1]?.retry);
    expect(filled.steps[0]?.retry.backoff).not.toBe(DEFAULT_RETRY_POLICY.backoff);
  });
});
