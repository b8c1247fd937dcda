import { readFileSync } from 'node:fs';
import { describe, expect, it } from '@jest/globals';
import { parseFactCatalogue } from './catalogue.js';
import { createFactValidator, normaliseFactValue } from './validator.js';

const text = readFileSync(new URL('../../../config/facts.yaml', import.meta.url), 'utf8');
const { facts } = parseFactCatalogue(text);
const validator = createFactValidator(facts);

const address = { street: 'Drottninggatan 1', postalCode: '111 51', town: 'Stockholm' };

describe('createFactValidator on the seed catalogue', () => {
  it('knows the catalogue keys', () => {
    expect(validator.has('person.address')).toBe(true);
    expect(validator.has('person.shoeSize')).toBe(false);
  });

  it('refuses an unknown key with one problem', () => {
    expect(validator.validate('person.shoeSize', 42)).toEqual([
      { path: '', reason: 'unknown fact type person.shoeSize' },
    ]);
  });

  it('accepts a valid address, with or without c/o', () => {
    expect(validator.validate('person.address', address)).toEqual([]);
    expect(validator.validate('person.address', { ...address, co: 'Andersson' })).toEqual([]);
  });

  it('refuses an address with a missing field at the field', () => {
    const withoutTown: Partial<typeof address> = { ...address };
    delete withoutTown.town;
    expect(validator.validate('person.address', withoutTown)).toEqual([
      { path: '/town', reason: 'is required' },
    ]);
  });

  it('refuses an address with an extra field at the field', () => {
    expect(validator.validate('move.newAddress', { ...address, country: 'SE' })).toEqual([
      { path: '/country', reason: 'is not allowed here' },
    ]);
  });

  it('reports every problem at once', () => {
    const problems = validator.validate('business.premisesAddress', {
      street: '',
      postalCode: '011 51',
      extra: 1,
    });
    expect(problems).toEqual(
      expect.arrayContaining([
        { path: '/town', reason: 'is required' },
        { path: '/extra', reason: 'is not allowed here' },
        { path: '/street', reason: 'must NOT have fewer than 1 characters' },
        { path: '/postalCode', reason: expect.stringContaining('Swedish postal code') },
      ]),
    );
    expect(problems).toHaveLength(4);
  });

  it('refuses a value of the wrong type at the root', () => {
    expect(validator.validate('person.address', 'Drottninggatan 1')).toEqual([
      { path: '', reason: 'must be an object' },
    ]);
    expect(validator.validate('business.expectedTurnover', 500000.5)).toEqual([
      { path: '', reason: 'must be a whole number' },
    ]);
    expect(validator.validate('business.willEmployStaff', 'yes')).toEqual([
      { path: '', reason: 'must be true or false' },
    ]);
  });

  it('checks formats inside values', () => {
    expect(validator.validate('person.personalNumber', '199012119948')).toEqual([]);
    expect(validator.validate('person.personalNumber', '199012119947')).toEqual([
      { path: '', reason: expect.stringContaining('personal identity number') },
    ]);
    expect(validator.validate('business.orgNumber', '556016-0680')).toEqual([]);
    expect(validator.validate('business.sniCode', '62010')).toEqual([]);
    expect(validator.validate('business.sniCode', 62010)).toEqual([
      { path: '', reason: 'must be a string' },
    ]);
    expect(validator.validate('person.municipalityCode', '0180')).toEqual([]);
    expect(validator.validate('person.municipalityCode', '0280')).toEqual([
      { path: '', reason: expect.stringContaining('municipality code') },
    ]);
  });

  it('lists the allowed values of an enum', () => {
    expect(validator.validate('business.legalForm', 'handelsbolag')).toEqual([
      { path: '', reason: 'must be one of "enskild-naringsidkare", "aktiebolag"' },
    ]);
  });

  it('checks minimum amounts', () => {
    expect(validator.validate('business.shareCapital', 25000)).toEqual([]);
    expect(validator.validate('business.shareCapital', 24999)).toEqual([
      { path: '', reason: 'must be >= 25000' },
    ]);
  });

  it('validates a bank account of either kind', () => {
    expect(
      validator.validate('person.bankAccount', { kind: 'swedish', account: '6789123456789' }),
    ).toEqual([]);
    expect(
      validator.validate('person.bankAccount', {
        kind: 'iban',
        iban: 'DE89370400440532013000',
        bic: 'COBADEFFXXX',
      }),
    ).toEqual([]);
    expect(
      validator.validate('person.bankAccount', { kind: 'swedish', account: '6789123456788' }),
    ).toEqual([{ path: '/account', reason: expect.stringContaining('Swedish bank account') }]);
    expect(
      validator.validate('person.bankAccount', { kind: 'swedish', iban: 'DE89370400440532013000' }),
    ).toEqual([
      { path: '/account', reason: 'is required' },
      { path: '/iban', reason: 'is not allowed here' },
    ]);
    expect(
      validator.validate('person.bankAccount', {
        kind: 'iban',
        iban: 'DE00370400440532013000',
        bic: 'x',
      }),
    ).toEqual([
      { path: '/iban', reason: expect.stringContaining('IBAN') },
      { path: '/bic', reason: expect.stringContaining('must match pattern') },
    ]);
  });

  it('accepts null as an apartment number, and four digits', () => {
    expect(validator.validate('move.apartmentNumber', null)).toEqual([]);
    expect(validator.validate('move.apartmentNumber', '1102')).toEqual([]);
    expect(validator.validate('move.apartmentNumber', '11')).toEqual([
      { path: '', reason: 'must match pattern "^\\d{4}$"' },
    ]);
  });

  it('checks dates and lists', () => {
    expect(
      validator.validate('parentalBenefit.period', { from: '2026-03-01', to: '2026-02-30' }),
    ).toEqual([{ path: '/to', reason: 'must be a date (YYYY-MM-DD)' }]);
    expect(validator.validate('deceased.vehicles', ['ABC123', 'ABC12D'])).toEqual([]);
    expect(validator.validate('deceased.vehicles', ['ABC123', 'abc123'])).toEqual([
      { path: '/1', reason: 'must match pattern "^[A-Z]{3}\\d{2}[A-Z0-9]$"' },
    ]);
  });

  it('escapes property names in paths', () => {
    expect(validator.validate('person.address', { ...address, 'a/b~c': 1 })).toEqual([
      { path: '/a~1b~0c', reason: 'is not allowed here' },
    ]);
  });

  it('validates every catalogue fact without throwing on odd input', () => {
    for (const fact of facts) {
      for (const value of [undefined, null, 0, '', [], {}, { kind: 'x' }]) {
        expect(Array.isArray(validator.validate(fact.key, value))).toBe(true);
      }
    }
  });
});

describe('normalise', () => {
  it('rewrites formatted strings to their canonical form, deep in the value', () => {
    expect(validator.normalise('person.personalNumber', '901211-9948')).toBe('199012119948');
    expect(validator.normalise('business.orgNumber', '5560160680')).toBe('556016-0680');
    expect(validator.normalise('person.address', { ...address, postalCode: '11151' })).toEqual(
      address,
    );
    expect(
      validator.normalise('person.bankAccount', { kind: 'swedish', account: '6789, 123 456 789' }),
    ).toEqual({
      kind: 'swedish',
      account: '6789123456789',
    });
    expect(
      validator.normalise('person.bankAccount', {
        kind: 'iban',
        iban: 'de89 3704 0044 0532 0130 00',
        bic: 'COBADEFF',
      }),
    ).toEqual({
      kind: 'iban',
      iban: 'DE89370400440532013000',
      bic: 'COBADEFF',
    });
  });

  it('leaves what it cannot read, and does not mutate its input', () => {
    const input = { ...address, postalCode: '011 51' };
    expect(validator.normalise('person.address', input)).toEqual(input);
    expect(validator.normalise('person.personalNumber', 'nonsense')).toBe('nonsense');
    expect(validator.normalise('person.personalNumber', 42)).toBe(42);
    expect(validator.normalise('person.shoeSize', '42')).toBe('42');
    const value = { ...address, postalCode: '11151' };
    validator.normalise('person.address', value);
    expect(value.postalCode).toBe('11151');
  });

  it('is also available for a single fact type', () => {
    const fact = facts.find((f) => f.key === 'child.personalNumber');
    expect(fact).toBeDefined();
    if (fact) expect(normaliseFactValue(fact, '195705749959')).toBe('195705749959');
  });

  it('gives values that validate', () => {
    const value = validator.normalise('person.address', { ...address, postalCode: '11151' });
    expect(validator.validate('person.address', value)).toEqual([]);
  });
});

describe('createFactValidator', () => {
  it('throws naming the fact whose schema does not compile', () => {
    const broken = {
      ...facts[0],
      key: 'person.broken',
      schema: { type: 'strung' },
    } as (typeof facts)[number];
    expect(() => createFactValidator([broken])).toThrow(/person\.broken/);
  });
});

describe('patterns, on RE2', () => {
  const FACT = (pattern: string) => `
- key: person.code
  label: { sv: Kod, en: Code }
  sensitivity: personal
  source: citizen
  schema: { type: string, pattern: '${pattern}' }
`;

  it('runs a pattern that backtracks exponentially in JavaScript in linear time', () => {
    // ^(\d+)+$ on 60 digits and an x: 2^60 steps for a backtracking engine, which never ends.
    const { facts: parsed, problems } = parseFactCatalogue(FACT('^(\\d+)+$'));
    expect(problems).toEqual([]);
    const validator = createFactValidator(parsed);
    expect(validator.validate('person.code', `${'1'.repeat(60)}x`)).not.toEqual([]);
    expect(validator.validate('person.code', '1'.repeat(60))).toEqual([]);
  });

  it('refuses a pattern RE2 cannot run in linear time (a lookahead), naming the schema', () => {
    const { facts: parsed, problems } = parseFactCatalogue(FACT('^(?=a)a+$'));
    expect(parsed).toEqual([]);
    expect(problems).toEqual([
      { path: '/0/schema', message: expect.stringContaining('schema does not compile') },
    ]);
  });

  it('keeps the seed catalogue’s patterns working', () => {
    const validator = createFactValidator(facts);
    expect(validator.validate('move.apartmentNumber', '1201')).toEqual([]);
    expect(validator.validate('move.apartmentNumber', '12a1')).not.toEqual([]);
  });
});
