import { readFileSync } from 'node:fs';
import { describe, expect, it } from '@jest/globals';
import { FACT_FORMATS, FORMAT_CHECKS, FORMAT_NORMALISERS, FORMAT_REASONS } from './formats.js';

interface PersonnummerCase {
  long_format: string;
  valid: boolean;
  type: 'ssn' | 'con';
}
interface OrgnumberCase {
  short_format: string;
  valid_as_personnummer: boolean;
  valid_as_orgnumber: boolean;
}

function fixture<T>(name: string): T[] {
  const url = new URL(`../../../test/fixtures/personnummer/${name}`, import.meta.url);
  return JSON.parse(readFileSync(url, 'utf8')) as T[];
}

const personnummerList = fixture<PersonnummerCase>('list.json');
const orgnumberList = fixture<OrgnumberCase>('orgnumber.json');

describe('conformance with the personnummer/meta test lists', () => {
  it('has cases of every kind', () => {
    const kinds = new Set(personnummerList.map((c) => `${c.type}:${String(c.valid)}`));
    expect(kinds).toEqual(new Set(['ssn:true', 'ssn:false', 'con:true', 'con:false']));
    expect(orgnumberList.length).toBeGreaterThan(0);
  });

  it.each(personnummerList)(
    'personnummer: $long_format ($type) is valid: $valid',
    ({ long_format, valid }) => {
      expect(FORMAT_CHECKS.personnummer(long_format)).toBe(valid);
      // The 10-digit form with separator, as people write it.
      const short = `${long_format.slice(2, 8)}-${long_format.slice(8)}`;
      const century = Number(long_format.slice(0, 2));
      // A 10-digit number of someone 100 or older takes `+`; these lists have one from 1879.
      const separated = century < 19 ? short.replace('-', '+') : short;
      expect(FORMAT_CHECKS.personnummer(separated)).toBe(valid);
    },
  );

  it.each(personnummerList.filter((c) => c.valid))(
    'personnummer: $long_format normalises to itself',
    ({ long_format }) => {
      expect(FORMAT_NORMALISERS.personnummer(long_format)).toBe(long_format);
      const dashed = `${long_format.slice(0, 8)}-${long_format.slice(8)}`;
      expect(FORMAT_NORMALISERS.personnummer(dashed)).toBe(long_format);
    },
  );

  it.each(orgnumberList)(
    'organisationsnummer: $short_format is valid: $valid_as_orgnumber',
    ({ short_format, valid_as_orgnumber, valid_as_personnummer }) => {
      expect(FORMAT_CHECKS.organisationsnummer(short_format)).toBe(valid_as_orgnumber);
      const dashed = `${short_format.slice(0, 6)}-${short_format.slice(6)}`;
      expect(FORMAT_CHECKS.organisationsnummer(dashed)).toBe(valid_as_orgnumber);
      expect(FORMAT_CHECKS.personnummer(short_format)).toBe(valid_as_personnummer);
      if (valid_as_orgnumber)
        expect(FORMAT_NORMALISERS.organisationsnummer(short_format)).toBe(dashed);
    },
  );

  // A sole trader's organisation number is their personnummer.
  it.each(personnummerList)(
    'organisationsnummer: personnummer $long_format ($type) is valid: $valid',
    ({ long_format, valid }) => {
      expect(FORMAT_CHECKS.organisationsnummer(long_format)).toBe(valid);
      if (valid) expect(FORMAT_NORMALISERS.organisationsnummer(long_format)).toBe(long_format);
    },
  );
});

const EXAMPLES: Record<(typeof FACT_FORMATS)[number], { valid: string[]; invalid: string[] }> = {
  personnummer: {
    valid: ['199012119948', '19901211-9948', '9012119948', '901211-9948', '195705749959'],
    invalid: [
      '199012119947', // check digit
      '19901311-9948', // month 13
      '901211 9948',
      ' 199012119948',
      '1990121199480',
      'abcdefghijkl',
      '',
    ],
  },
  organisationsnummer: {
    valid: ['556016-0680', '5560160680', '165560160680', '802005-1952', '199012119948'],
    invalid: ['556016-0681', '556016 0680', '055601-6068', '175560160680', '55601606', ''],
  },
  postnummer: {
    valid: ['113 51', '11351', '981 38', '405 30'],
    invalid: ['013 51', '1135', '113-51', '113  51', '113 510', 'SE-113 51', ''],
  },
  'sni-kod': {
    valid: ['62010', '01110', '56100', '47191'],
    invalid: ['6201', '620100', '00100', '62.010', '6201a', ''],
  },
  kommunkod: {
    valid: ['0180', '0114', '1480', '1280', '0980', '2584', '0331'],
    invalid: ['0280', '1180', '1580', '1680', '2680', '0100', '180', '01800', 'abcd', ''],
  },
  iban: {
    valid: ['SE4550000000058398257466', 'SE45 5000 0000 0583 9825 7466', 'DE89370400440532013000'],
    invalid: ['SE4550000000058398257467', 'SE45500000000583982574', 'XX4550000000058398257466', ''],
  },
  bankkonto: {
    valid: [
      '6789123456789',
      '6789, 123 456 789',
      '8424-4,983 189 224-6',
      '3300 000620-5124',
      '97891111113',
    ],
    invalid: [
      '6789123456788', // check digit
      '8424-1,983 189 224-6', // Swedbank clearing check digit
      '123456789',
      'abc6789123456789',
      '6789/123456789',
      '',
    ],
  },
};

describe.each(FACT_FORMATS)('format %s', (format) => {
  const { valid, invalid } = EXAMPLES[format];

  it.each(valid)('accepts %p', (value) => {
    expect(FORMAT_CHECKS[format](value)).toBe(true);
    const normalised = FORMAT_NORMALISERS[format](value);
    expect(normalised).toBeDefined();
    // Canonical: still valid, and normalising again changes nothing.
    expect(FORMAT_CHECKS[format](normalised ?? '')).toBe(true);
    expect(FORMAT_NORMALISERS[format](normalised ?? '')).toBe(normalised);
  });

  it.each(invalid)('refuses %p', (value) => {
    expect(FORMAT_CHECKS[format](value)).toBe(false);
    expect(FORMAT_NORMALISERS[format](value)).toBeUndefined();
  });

  it('has a reason for people', () => {
    expect(FORMAT_REASONS[format]).toMatch(/^must be /);
  });
});

describe('canonical forms', () => {
  it.each([
    ['personnummer', '901211-9948', '199012119948'],
    ['organisationsnummer', '165560160680', '556016-0680'],
    ['organisationsnummer', '901211-9948', '199012119948'],
    ['postnummer', '11351', '113 51'],
    ['iban', 'se45 5000 0000 0583 9825 7466', 'SE4550000000058398257466'],
    ['bankkonto', '8424-4, 983 189 224-6', '842449831892246'],
    ['bankkonto', '6789, 123 456 789', '6789123456789'],
  ] as const)('%s %p → %p', (format, input, expected) => {
    expect(FORMAT_NORMALISERS[format](input)).toBe(expected);
  });
});
