import { describe, expect, it } from '@jest/globals';
import {
  agencyAclRules,
  agencyOfUserName,
  agencyUserName,
  agencyUserScope,
  globEscape,
} from './access.js';

const SHA = 'a'.repeat(64);

describe("an agency credential's Redis user", () => {
  it("is named after its installation's prefix, its agency and its id, and only such names are taken for one", () => {
    const name = agencyUserName('{leo}', 'kommun-0180', '0123456789ab');
    expect(name).toMatch(/^leo-agency\.[0-9a-f]{8}\.kommun-0180\.0123456789ab$/);
    expect(name.startsWith(agencyUserScope('{leo}'))).toBe(true);
    expect(agencyOfUserName('{leo}', name)).toBe('kommun-0180');
    // Another installation's user on the same Redis is not this one's.
    expect(agencyOfUserName('{other}', name)).toBeUndefined();
    expect(agencyUserScope('{other}')).not.toBe(agencyUserScope('{leo}'));
    // Nor one on another database under the same prefix.
    expect(agencyUserScope('{leo}', 1)).not.toBe(agencyUserScope('{leo}'));
    expect(agencyOfUserName('{leo}', name, 1)).toBeUndefined();
    const scope = agencyUserScope('{leo}');
    for (const other of [
      'default',
      `${scope}skatteverket`,
      `${scope}.0123456789ab`,
      `${scope}skatteverket.0123456789ab.x`,
      `${scope}Skatteverket.0123456789ab`,
    ]) {
      expect(agencyOfUserName('{leo}', other)).toBeUndefined();
    }
    expect(() => agencyUserName('{leo}', 'skatteverket', 'xyz')).toThrow(/12 hex digits/);
    expect(() => agencyUserName('{leo}', 'Skatteverket', '0123456789ab')).toThrow(
      /invalid agency code/,
    );
  });

  it("reaches its own queue's keys, and its results stream for XADD only, by a password hash", () => {
    const rules = agencyAclRules('{leo}', 'skatteverket', SHA);
    expect(rules.slice(0, 5)).toEqual([
      'reset',
      'on',
      `#${SHA}`,
      'resetchannels',
      '~{leo}:agency.skatteverket:*',
    ]);
    expect(rules.at(-1)).toBe('(+xadd %W~{leo}:stream:agency.skatteverket.results)');
    // One key pattern at the root (the queue's), none for another agency, no pub/sub channel.
    expect(rules.filter((r) => r.startsWith('~') || r.startsWith('%'))).toHaveLength(1);
    expect(rules.some((r) => r.startsWith('&') || r === 'allchannels' || r === 'allkeys')).toBe(
      false,
    );
  });

  it('adds back what it needs only after taking away what it must not have', () => {
    const rules = agencyAclRules('{leo}', 'skatteverket', SHA);
    const at = (rule: string): number => rules.indexOf(rule);
    expect(at('-@dangerous')).toBeGreaterThan(at('+@write'));
    for (const needed of ['+info', '+eval', '+evalsha']) {
      expect(at(needed)).toBeGreaterThan(at('-@dangerous'));
      expect(at(needed)).toBeGreaterThan(at('-@scripting'));
    }
    for (const keyless of ['-scan', '-randomkey', '-dbsize', '-move', '-copy']) {
      expect(rules).toContain(keyless);
    }
  });

  it('may select its installation’s database and no other', () => {
    expect(agencyAclRules('{leo}', 'skatteverket', SHA).some((r) => r.includes('select'))).toBe(
      false,
    );
    const rules = agencyAclRules('{leo}', 'skatteverket', SHA, 3);
    expect(rules.filter((r) => r.includes('select'))).toEqual(['+select|3']);
  });

  it('escapes a prefix that holds glob characters, and refuses a hash that is not one', () => {
    expect(globEscape('{a*b}?[c]\\')).toBe('{a\\*b}\\?\\[c\\]\\\\');
    expect(agencyAclRules('{l*o}', 'skatteverket', SHA)).toContain(
      '~{l\\*o}:agency.skatteverket:*',
    );
    expect(() => agencyAclRules('{leo}', 'skatteverket', 'secret')).toThrow(/SHA-256/);
  });
});
