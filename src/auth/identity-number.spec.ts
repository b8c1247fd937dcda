import { describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { normalisePersonalNumber } from './identity-number.js';

interface ListEntry {
  long_format: string;
  valid: boolean;
  type: 'ssn' | 'con';
}
interface OrgEntry {
  short_format: string;
  valid_as_personnummer: boolean;
}

const fixture = (name: string): unknown =>
  JSON.parse(
    readFileSync(new URL(`../../test/fixtures/personnummer/${name}`, import.meta.url), 'utf8'),
  );

describe('normalisePersonalNumber (conformance with the personnummer/meta test list)', () => {
  const list = fixture('list.json') as ListEntry[];
  const orgNumbers = fixture('orgnumber.json') as OrgEntry[];

  it.each(list.map((e) => [e.long_format, e.type, e.valid] as const))(
    '%s (%s) valid=%s',
    (number, _type, valid) => {
      expect(normalisePersonalNumber(number)).toBe(valid ? number : undefined);
    },
  );

  it.each(orgNumbers.map((e) => [e.short_format, e.valid_as_personnummer] as const))(
    'organisation number %s is a personal number: %s',
    (number, valid) => {
      expect(normalisePersonalNumber(number) !== undefined).toBe(valid);
    },
  );

  it('normalises the short forms to 12 digits', () => {
    expect(normalisePersonalNumber('900101-0017')).toBe('199001010017');
    expect(normalisePersonalNumber('19900101-0017')).toBe('199001010017');
  });

  it('refuses junk without throwing', () => {
    for (const junk of ['', 'abc', '1'.repeat(200), '19900101-0018']) {
      expect(normalisePersonalNumber(junk)).toBeUndefined();
    }
  });
});
