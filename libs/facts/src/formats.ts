import { createRequire } from 'node:module';
import { electronicFormatIBAN, isValidIBAN } from 'ibantools';
import type * as KontonummerModule from 'kontonummer';
import type * as OrganisationsnummerModule from 'organisationsnummer';
import type * as PersonnummerModule from 'personnummer';

type PersonnummerClass = typeof PersonnummerModule.default.default;
type PersonnummerInstance = InstanceType<PersonnummerClass>;
type OrganisationsnummerClass = typeof OrganisationsnummerModule.default.default;
type OrganisationsnummerInstance = InstanceType<OrganisationsnummerClass>;

// personnummer and organisationsnummer are CommonJS with `module.exports = Class` but types
// declaring a default export; requiring them gives the class under both module systems (as in
// src/auth/identity-number.ts). kontonummer's ESM build has no `"type": "module"`, which Jest
// would load as CommonJS and fail on; its CommonJS build is the same code.
const require = createRequire(import.meta.url);
const Personnummer = require('personnummer') as PersonnummerClass;
const Organisationsnummer = require('organisationsnummer') as OrganisationsnummerClass;
const { parse: parseKontonummer } = require('kontonummer') as {
  parse: typeof KontonummerModule.parse;
};

/** The string formats leo adds to JSON Schema, besides ajv-formats' standard ones (date, email, …). */
export const FACT_FORMATS = [
  'personnummer',
  'organisationsnummer',
  'postnummer',
  'sni-kod',
  'kommunkod',
  'iban',
  'bankkonto',
] as const;
export type FactFormat = (typeof FACT_FORMATS)[number];

// The written forms accepted before a value reaches the packages, which are more liberal than a
// form field should be (kontonummer ignores every non-digit; personnummer accepts odd spacing).
const IDENTITY_NUMBER_SHAPE = /^(?:\d{6}[-+]?\d{4}|\d{8}[-+]?\d{4})$/;
const BANK_ACCOUNT_SHAPE = /^[\d][\d ,-]{5,28}[\d]$/;
const POSTNUMMER = /^[1-9]\d{2} ?\d{2}$/;
// SNI 2007: five digits, the first two the division (01–99).
const SNI_KOD = /^(?:0[1-9]|[1-9]\d)\d{3}$/;
// The county (län) codes in use since 1998, and a municipality part that is never 00.
const KOMMUNKOD = /^(?:0[13-9]|1[0234789]|2[0-5])(?:0[1-9]|[1-9]\d)$/;

const PERSONNUMMER_OPTIONS = { allowCoordinationNumber: true, allowInterimNumber: false };

function parsePersonnummer(value: string): PersonnummerInstance | undefined {
  if (!IDENTITY_NUMBER_SHAPE.test(value)) return undefined;
  try {
    return Personnummer.parse(value, PERSONNUMMER_OPTIONS);
  } catch {
    return undefined;
  }
}

function parseOrganisationsnummer(value: string): OrganisationsnummerInstance | undefined {
  if (!IDENTITY_NUMBER_SHAPE.test(value)) return undefined;
  try {
    return Organisationsnummer.parse(value);
  } catch {
    return undefined;
  }
}

/** NNNNNN-NNNN for a legal person, the 12-digit personnummer for a sole trader (see below). */
function canonicalOrganisationsnummer(value: string): string | undefined {
  if (!IDENTITY_NUMBER_SHAPE.test(value)) return undefined;
  if (!mayBeLegalPerson(value)) {
    // What the package does with it after throwing (a sole trader's personnummer), without
    // the throw: an Error's stack was most of the cost of checking one.
    try {
      return Personnummer.parse(value).format(true);
    } catch {
      return undefined;
    }
  }
  const parsed = parseOrganisationsnummer(value);
  if (!parsed) return undefined;
  return parsed.personnummer()?.format(true) ?? parsed.format(true);
}

/**
 * Whether the organisationsnummer package could read `value` (of IDENTITY_NUMBER_SHAPE) as a
 * legal person's number: no century, or 16; a third and fourth digit of at least 20; a first and
 * second of at least 10. Otherwise it reads it only as a personnummer.
 */
function mayBeLegalPerson(value: string): boolean {
  const digits = value.replace(/[-+]/, '');
  if (digits.length === 12 && !digits.startsWith('16')) return false;
  const ten = digits.slice(-10);
  return Number(ten.slice(2, 4)) >= 20 && Number(ten.slice(0, 2)) >= 10;
}

function parseBankkonto(value: string): ReturnType<typeof parseKontonummer> | undefined {
  if (!BANK_ACCOUNT_SHAPE.test(value)) return undefined;
  try {
    return parseKontonummer(value, { mode: 'strict' });
  } catch {
    return undefined;
  }
}

function ibanElectronic(value: string): string | undefined {
  if (value.length > 50) return undefined;
  const electronic = electronicFormatIBAN(value);
  return electronic !== null && isValidIBAN(electronic) ? electronic : undefined;
}

/**
 * Does `value` have the format? Each check is the established package for it: personnummer
 * (personal identity and coordination numbers, no interim numbers), organisationsnummer (which
 * also accepts a personnummer: a sole trader's organisation number is their personnummer),
 * ibantools, kontonummer (strict: clearing number, length and check digit).
 */
export const FORMAT_CHECKS: Readonly<Record<FactFormat, (value: string) => boolean>> = {
  personnummer: (value) => parsePersonnummer(value) !== undefined,
  organisationsnummer: (value) => canonicalOrganisationsnummer(value) !== undefined,
  postnummer: (value) => POSTNUMMER.test(value),
  'sni-kod': (value) => SNI_KOD.test(value),
  kommunkod: (value) => KOMMUNKOD.test(value),
  iban: (value) => ibanElectronic(value) !== undefined,
  bankkonto: (value) => parseBankkonto(value) !== undefined,
};

/** Why a value was refused, for people. Standard formats from ajv-formats included. */
export const FORMAT_REASONS: Readonly<Record<string, string>> = {
  personnummer:
    'must be a valid Swedish personal identity number or coordination number (YYYYMMDD-NNNN)',
  organisationsnummer:
    "must be a valid Swedish organisation number (NNNNNN-NNNN), or a sole trader's personal identity number",
  postnummer: 'must be a Swedish postal code: five digits, the first not 0 (e.g. 113 51)',
  'sni-kod': 'must be a five-digit SNI 2007 industry code (e.g. 62010)',
  kommunkod: 'must be a four-digit municipality code starting with a county code (e.g. 0180)',
  iban: 'must be a valid IBAN (e.g. SE45 5000 0000 0583 9825 7466)',
  bankkonto:
    'must be a valid Swedish bank account: clearing number and account number with a correct check digit',
  date: 'must be a date (YYYY-MM-DD)',
  'date-time': 'must be a date and time (ISO 8601 with a time zone)',
  email: 'must be an e-mail address',
  uri: 'must be a URI',
};

/**
 * The canonical written form of a valid value, or undefined when the value does not have the
 * format (the caller keeps it, and validation then reports it):
 * - personnummer: 12 digits, YYYYMMDDNNNN (as the sign-in token's number is normalised)
 * - organisationsnummer: NNNNNN-NNNN for a legal person; for a sole trader, whose organisation
 *   number is their personnummer, the same 12 digits as person.personalNumber. The 10-digit form
 *   of a personnummer changes its separator to `+` in the year its holder turns 100, so it is no
 *   stable key, and equal numbers should compare equal.
 * - postnummer: NNN NN
 * - iban: electronic format, upper case without spaces
 * - bankkonto: digits only (clearing number, with Swedbank's fifth digit, then account number)
 * - sni-kod, kommunkod: unchanged (they have one written form)
 */
export const FORMAT_NORMALISERS: Readonly<
  Record<FactFormat, (value: string) => string | undefined>
> = {
  personnummer: (value) => parsePersonnummer(value)?.format(true),
  organisationsnummer: (value) => canonicalOrganisationsnummer(value),
  postnummer: (value) =>
    POSTNUMMER.test(value) ? `${value.slice(0, 3)} ${value.slice(-2)}` : undefined,
  'sni-kod': (value) => (SNI_KOD.test(value) ? value : undefined),
  kommunkod: (value) => (KOMMUNKOD.test(value) ? value : undefined),
  iban: (value) => ibanElectronic(value),
  bankkonto: (value) => parseBankkonto(value)?.format('numeric'),
};

export function isFactFormat(name: string): name is FactFormat {
  return (FACT_FORMATS as readonly string[]).includes(name);
}
