import { describe, expect, it } from '@jest/globals';
import { describeHandlerError, isStepOutcome } from './worker.js';

describe('isStepOutcome', () => {
  it.each([
    [{ outcome: 'completed', produced: {} }],
    [
      {
        outcome: 'completed',
        produced: { 'business.orgNumber': '559100-0004' },
        reference: 'BV-1',
      },
    ],
    [{ outcome: 'pending', reference: 'SKV-1' }],
    [{ outcome: 'pending', reference: 'SKV-1', expectedDecisionAt: '2026-03-01T10:00:00Z' }],
    [{ outcome: 'rejected', code: 'licence-refused', reason: 'refused' }],
    [{ outcome: 'retryable-error', code: 'unavailable', reason: 'down' }],
  ])('accepts %j', (outcome) => {
    expect(isStepOutcome(outcome)).toBe(true);
  });

  it.each([
    [null],
    ['completed'],
    [{ outcome: 'done' }],
    [{ outcome: 'completed' }],
    [{ outcome: 'completed', produced: [] }],
    [{ outcome: 'completed', produced: {}, reference: '' }],
    [{ outcome: 'pending' }],
    [{ outcome: 'pending', reference: 'SKV-1', expectedDecisionAt: 'next week' }],
    [{ outcome: 'rejected', reason: 'no code' }],
    [{ outcome: 'retryable-error', code: 'x' }],
    [{ outcome: 'rejected', code: 'refused', reason: '' }],
    [{ outcome: 'rejected', code: 'refused', reason: 'r'.repeat(2_001) }],
    [{ outcome: 'rejected', code: 'UPPER', reason: 'r' }],
    [{ outcome: 'completed', produced: {}, reference: 'r'.repeat(101) }],
    [{ outcome: 'pending', reference: ' ' }],
    [
      {
        outcome: 'completed',
        produced: Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`f.k${i}`, i])),
      },
    ],
  ])('refuses %j', (outcome) => {
    expect(isStepOutcome(outcome)).toBe(false);
  });
});

describe('describeHandlerError', () => {
  it('keeps the name, code and stack frames of an error but never its message', () => {
    const error = Object.assign(new TypeError('no such person 199012119948'), { code: 'E42' });
    const described = describeHandlerError(error);
    expect(described).toMatchObject({ errorName: 'TypeError', errorCode: 'E42' });
    expect(described.stack).toEqual(expect.stringContaining('at '));
    expect(JSON.stringify(described)).not.toContain('199012119948');
  });

  it('says only the type of something thrown that is not an error', () => {
    expect(describeHandlerError('199012119948')).toEqual({ errorType: 'string' });
  });
});
