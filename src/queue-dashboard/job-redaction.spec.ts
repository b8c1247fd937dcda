import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { REDACTED, redactJobPayload } from './job-redaction.js';

describe('redactJobPayload', () => {
  it('hides the fact values of a step job, keeping its keys and everything else', () => {
    const job = {
      caseId: 'c',
      stepRunId: 's',
      stepId: 'f-tax',
      action: 'register-f-tax',
      attempt: 2,
      idempotencyKey: 's',
      facts: { 'person.personalNumber': '199012119948', 'person.name': { given: 'Tolvan' } },
    };
    expect(redactJobPayload(job)).toEqual({
      ...job,
      facts: { 'person.personalNumber': REDACTED, 'person.name': REDACTED },
    });
  });

  it('hides what a result produced, also nested in what an adapter returns', () => {
    const result = {
      stepRunId: 's',
      attempt: 1,
      agency: 'bolagsverket',
      result: { outcome: 'completed', produced: { 'business.orgNumber': '19901211-9948' } },
      reportedAt: '2026-01-01T00:00:00.000Z',
    };
    expect(redactJobPayload(result)).toEqual({
      ...result,
      result: { outcome: 'completed', produced: { 'business.orgNumber': REDACTED } },
    });
    expect(redactJobPayload([{ produced: { x: 1 } }])).toEqual([{ produced: { x: REDACTED } }]);
  });

  it('leaves values that are not objects alone', () => {
    expect(redactJobPayload('applied')).toBe('applied');
    expect(redactJobPayload(null)).toBeNull();
    expect(redactJobPayload(undefined)).toBeUndefined();
  });

  it('never lets a value under a facts or produced key through, however deep', () => {
    const secret = 'SECRET-199012119948';
    const payload: fc.Arbitrary<unknown> = fc.letrec<{ node: unknown }>((tie) => ({
      node: fc.oneof(
        { depthSize: 'small' },
        fc.string(),
        fc.integer(),
        fc.array(tie('node'), { maxLength: 3 }),
        fc.dictionary(fc.constantFrom('a', 'b', 'data'), tie('node'), { maxKeys: 3 }),
        fc.record({ facts: fc.dictionary(fc.string(), fc.constant(secret)) }),
        fc.record({ produced: fc.dictionary(fc.string(), fc.constant({ deep: secret })) }),
      ),
    })).node;
    fc.assert(
      fc.property(
        payload,
        (value) => !JSON.stringify(redactJobPayload(value) ?? null).includes(secret),
      ),
    );
  });
});
