import { describe, expect, it } from '@jest/globals';
import { statementName } from './prepared.js';

describe('statementName', () => {
  it('keeps a short name readable', () => {
    expect(statementName('load-case')).toBe('leo.load-case');
  });

  it('fits every name into the 63 bytes Postgres keeps, distinct where the names differ late', () => {
    const common = 'commit-case-update-runs-lookups-events-new_lookups-facts-disclosures';
    const a = statementName(`${common}-messages-outbox`);
    const b = statementName(`${common}-messages`);
    for (const name of [a, b]) {
      expect(Buffer.byteLength(name)).toBeLessThanOrEqual(63);
      expect(name.startsWith('leo.commit-case-update')).toBe(true);
    }
    expect(a).not.toBe(b);
    expect(statementName(`${common}-messages-outbox`)).toBe(a);
  });

  it('counts bytes, not characters', () => {
    const name = statementName('å'.repeat(40));
    expect(Buffer.byteLength(name)).toBeLessThanOrEqual(63);
  });
});
