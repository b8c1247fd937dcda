import { describe, expect, it } from '@jest/globals';
import { caseIdForKey, idempotencyKeyOf, keyDigest, requestDigest } from './idempotency.js';

describe('Idempotency-Key', () => {
  it('reads a key, bare or quoted, and refuses what is not one, naming the header', () => {
    expect(idempotencyKeyOf(undefined)).toBeUndefined();
    expect(idempotencyKeyOf('order-4711')).toBe('order-4711');
    expect(idempotencyKeyOf('"8e03978e-40d5-43e8-bc93-6894a57f9324"')).toBe(
      '8e03978e-40d5-43e8-bc93-6894a57f9324',
    );
    for (const bad of ['', '""', 'two words', 'x'.repeat(256), 'å', '"a"b"']) {
      expect(() => idempotencyKeyOf(bad)).toThrow(/Idempotency-Key/);
    }
  });

  it('derives one case id per citizen and key: a version 8 UUID', () => {
    const id = caseIdForKey('subject-a', keyDigest('k'));
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(caseIdForKey('subject-a', keyDigest('k'))).toBe(id);
    expect(caseIdForKey('subject-b', keyDigest('k'))).not.toBe(id);
    expect(caseIdForKey('subject-a', keyDigest('k2'))).not.toBe(id);
  });

  it('digests a request by its content, not by how its JSON was written', () => {
    const a = requestDigest({ lifeEvent: 'x', answers: { a: 1, b: { c: 2, d: 3 } } });
    expect(requestDigest({ lifeEvent: 'x', answers: { b: { d: 3, c: 2 }, a: 1 } })).toBe(a);
    expect(requestDigest({ lifeEvent: 'x', answers: { a: 2, b: { c: 2, d: 3 } } })).not.toBe(a);
    expect(requestDigest({ lifeEvent: 'y', answers: { a: 1, b: { c: 2, d: 3 } } })).not.toBe(a);
  });
});
