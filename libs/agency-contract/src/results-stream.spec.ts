import { describe, expect, it } from '@jest/globals';
import { ANSWER_LIMITS } from './shapes.js';
import { parseResultEntry, resultEntryFields } from './results-stream.js';
import type { LookupResult, StepResult } from './steps.js';

const step: StepResult = {
  stepRunId: '0190a6f2-0000-7000-8000-000000000001',
  attempt: 1,
  agency: 'skatteverket',
  result: { outcome: 'completed', produced: { 'business.vatNumber': 'SE901211994801' } },
  reportedAt: '2026-03-01T10:00:00.000Z',
};
const lookup: LookupResult = {
  lookupId: '0190a6f2-0000-7000-8000-000000000002',
  attempt: 2,
  agency: 'skatteverket',
  result: { outcome: 'found', facts: {}, unavailable: ['person.name'] },
  reportedAt: '2026-03-01T10:00:00.000Z',
};
const flat = (fields: Record<string, string>): string[] => Object.entries(fields).flat();

describe('the results stream', () => {
  it('carries a result as kind and body, and reads it back', () => {
    const fields = resultEntryFields({ kind: 'step.result', result: step });
    expect(fields).toEqual({ kind: 'step.result', body: JSON.stringify(step) });
    expect(parseResultEntry(flat(fields))).toEqual({
      ok: true,
      entry: { kind: 'step.result', result: step },
    });
    const answer = resultEntryFields({ kind: 'lookup.result', result: lookup });
    expect(parseResultEntry([...flat(answer), 'extra', 'ignored'])).toEqual({
      ok: true,
      entry: { kind: 'lookup.result', result: lookup },
    });
  });

  it.each([
    ['no kind', ['body', JSON.stringify(step)], 'unknown-kind'],
    ['an unknown kind', ['kind', 'step.execute', 'body', JSON.stringify(step)], 'unknown-kind'],
    ['no body', ['kind', 'step.result'], 'no-body'],
    ['a body that is not JSON', ['kind', 'step.result', 'body', '{"stepRunId":'], 'body-not-json'],
    ['a body that is not an object', ['kind', 'step.result', 'body', '[1]'], 'body-not-json'],
    [
      'a step run id that is not a UUID',
      ['kind', 'step.result', 'body', JSON.stringify({ ...step, stepRunId: 'x' })],
      'invalid-ids',
    ],
    [
      'attempt 0',
      ['kind', 'step.result', 'body', JSON.stringify({ ...step, attempt: 0 })],
      'invalid-ids',
    ],
    [
      'no agency',
      ['kind', 'step.result', 'body', JSON.stringify({ ...step, agency: undefined })],
      'invalid-ids',
    ],
    [
      'a step result named as a look-up answer',
      ['kind', 'lookup.result', 'body', JSON.stringify(step)],
      'invalid-ids',
    ],
    [
      'an outcome that is not one',
      ['kind', 'step.result', 'body', JSON.stringify({ ...step, result: { outcome: 'done' } })],
      'invalid-outcome',
    ],
    [
      'a body longer than an answer may be',
      [
        'kind',
        'step.result',
        'body',
        JSON.stringify({ ...step, pad: 'x'.repeat(ANSWER_LIMITS.bodyMaxLength) }),
      ],
      'body-too-long',
    ],
    [
      'a reportedAt that is no time',
      ['kind', 'step.result', 'body', JSON.stringify({ ...step, reportedAt: 'yesterday' })],
      'invalid-ids',
    ],
    [
      // As POST /v1/agency/decisions refuses it: the reason is at most 2,000 characters.
      'a refusal whose reason is longer than the REST route allows',
      [
        'kind',
        'step.result',
        'body',
        JSON.stringify({
          ...step,
          result: { outcome: 'rejected', code: 'refused', reason: 'x'.repeat(2_001) },
        }),
      ],
      'invalid-outcome',
    ],
    [
      'a refusal whose code is not kebab-case',
      [
        'kind',
        'step.result',
        'body',
        JSON.stringify({
          ...step,
          result: { outcome: 'rejected', code: 'Call 0771-567 567 now', reason: 'r' },
        }),
      ],
      'invalid-outcome',
    ],
    [
      'a look-up outcome that is not one',
      [
        'kind',
        'lookup.result',
        'body',
        JSON.stringify({ ...lookup, result: { outcome: 'found' } }),
      ],
      'invalid-outcome',
    ],
  ])('refuses an entry with %s', (_what, fields, problem) => {
    expect(parseResultEntry(fields)).toMatchObject({ ok: false, problem });
  });
});
