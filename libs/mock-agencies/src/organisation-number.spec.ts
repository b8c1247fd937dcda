import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type * as OrganisationsnummerModule from 'organisationsnummer';
import { FORMAT_CHECKS, FORMAT_NORMALISERS } from '#facts';
import {
  ORGANISATION_NUMBER_CAPACITY,
  canonicalOrganisationNumber,
  luhnCheckDigit,
  organisationNumberFromSequence,
  tenDigits,
  vatNumber,
} from './organisation-number.js';

// CommonJS with a default-export type declaration: required, as libs/facts/src/formats.ts does.
const require = createRequire(import.meta.url);
const Organisationsnummer =
  require('organisationsnummer') as typeof OrganisationsnummerModule.default.default;

const VAT_NUMBER = /^SE\d{10}01$/; // business.vatNumber's schema in config/facts.yaml

describe('luhnCheckDigit', () => {
  it('gives the check digit of known numbers', () => {
    expect(luhnCheckDigit('556016068')).toBe(0); // 556016-0680
    expect(luhnCheckDigit('901211994')).toBe(8); // 901211-9948
    expect(luhnCheckDigit('559100000')).toBe(4);
  });

  it("agrees with the personnummer project's list of valid organisation numbers", () => {
    const list = JSON.parse(
      readFileSync(
        new URL('../../../test/fixtures/personnummer/orgnumber.json', import.meta.url),
        'utf8',
      ),
    ) as Array<{ short_format: string; valid_as_orgnumber: boolean }>;
    const valid = list.filter((entry) => entry.valid_as_orgnumber).map((e) => e.short_format);
    expect(valid.length).toBeGreaterThan(0);
    for (const number of valid) {
      expect(`${number.slice(0, 9)}${luhnCheckDigit(number.slice(0, 9))}`).toBe(number);
    }
  });
});

describe('organisationNumberFromSequence (Bolagsverket assigning aktiebolag numbers)', () => {
  const sequenceValue = fc.integer({ min: 0, max: ORGANISATION_NUMBER_CAPACITY - 1 });

  it('gives the first number of the sequence as 559100-0004', () => {
    expect(organisationNumberFromSequence(100_000)).toBe('559100-0004');
  });

  it('gives numbers the organisationsnummer package accepts as an aktiebolag, written canonically', () => {
    fc.assert(
      fc.property(sequenceValue, (value) => {
        const number = organisationNumberFromSequence(value);
        expect(number).toMatch(/^55[2-9]\d{3}-\d{4}$/);
        expect(Organisationsnummer.valid(number)).toBe(true);
        const parsed = Organisationsnummer.parse(number);
        expect(parsed.type()).toBe('Aktiebolag');
        expect(parsed.isPersonnummer()).toBe(false);
        expect(FORMAT_CHECKS.organisationsnummer(number)).toBe(true);
        expect(FORMAT_NORMALISERS.organisationsnummer(number)).toBe(number);
      }),
      { numRuns: 2_000 },
    );
  });

  it('never gives two sequence values the same number', () => {
    fc.assert(
      fc.property(sequenceValue, sequenceValue, (a, b) => {
        fc.pre(a !== b);
        expect(organisationNumberFromSequence(a)).not.toBe(organisationNumberFromSequence(b));
      }),
      { numRuns: 5_000 },
    );
    const run = Array.from({ length: 20_000 }, (_, i) =>
      organisationNumberFromSequence(100_000 + i),
    );
    expect(new Set(run).size).toBe(run.length);
    // Across each million boundary, where the third digit changes.
    const boundaries = [999_999, 1_000_000, 1_999_999, 2_000_000, 7_999_999].map(
      organisationNumberFromSequence,
    );
    expect(new Set(boundaries).size).toBe(boundaries.length);
    expect(organisationNumberFromSequence(7_999_999)).toMatch(/^552999-999\d$/);
  });

  it('refuses values outside the sequence', () => {
    for (const value of [-1, ORGANISATION_NUMBER_CAPACITY, 1.5, Number.NaN]) {
      expect(() => organisationNumberFromSequence(value)).toThrow(RangeError);
    }
  });
});

describe('VAT numbers (SE + the ten-digit organisation number + 01)', () => {
  it('writes an aktiebolag number without its separator', () => {
    expect(vatNumber('559100-0004')).toBe('SE559100000401');
    expect(vatNumber('556016-0680')).toBe('SE556016068001');
  });

  it("writes a sole trader's personnummer without its century", () => {
    // A sole trader's organisation number is stored as the 12-digit personnummer.
    const soleTrader = canonicalOrganisationNumber('199012119948');
    expect(soleTrader).toBe('199012119948');
    expect(tenDigits(soleTrader ?? '')).toBe('9012119948');
    expect(vatNumber(soleTrader ?? '')).toBe('SE901211994801');
  });

  it('agrees with the organisationsnummer package and the catalogue schema', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: ORGANISATION_NUMBER_CAPACITY - 1 }), (value) => {
        const number = organisationNumberFromSequence(value);
        expect(vatNumber(number)).toBe(Organisationsnummer.parse(number).vatNumber());
        expect(vatNumber(number)).toMatch(VAT_NUMBER);
      }),
      { numRuns: 500 },
    );
    for (const personnummer of ['199012119948', '190905271474', '198211059954']) {
      const number = canonicalOrganisationNumber(personnummer) ?? '';
      expect(vatNumber(number)).toBe(Organisationsnummer.parse(personnummer).vatNumber());
      expect(vatNumber(number)).toMatch(VAT_NUMBER);
    }
  });
});
