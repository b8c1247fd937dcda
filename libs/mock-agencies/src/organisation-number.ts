import { FORMAT_NORMALISERS } from '#facts';

/**
 * Organisation numbers as Bolagsverket assigns them: ten digits NNNNNN-NNNC, the first the
 * legal-form group (5: aktiebolag), the third at least 2 (so no number is mistaken for a
 * personnummer, whose third digit starts a month), the last a Luhn check digit over the nine
 * before it. New limited companies get 559xxx-xxxx today; the mock does the same.
 */

/** The Luhn (modulus 10) check digit of a digit string. */
export function luhnCheckDigit(digits: string): number {
  let sum = 0;
  for (let i = 0; i < digits.length; i += 1) {
    let digit = Number(digits[digits.length - 1 - i]);
    if (i % 2 === 0) {
      digit *= 2;
      if (digit > 9) digit -= 9;
    }
    sum += digit;
  }
  return (10 - (sum % 10)) % 10;
}

/** How many numbers the scheme below can give: 55(9…2)NNN-NNNC. */
export const ORGANISATION_NUMBER_CAPACITY = 8_000_000;

/**
 * The aktiebolag number for one value of `mock_org_number_seq`: `55` + a third digit counting
 * down from 9 to 2, one per million values + six digits + the check digit, written NNNNNN-NNNN
 * (the canonical form, as libs/facts normalises organisation numbers). Distinct values give
 * distinct numbers.
 */
export function organisationNumberFromSequence(value: number): string {
  if (!Number.isInteger(value) || value < 0 || value >= ORGANISATION_NUMBER_CAPACITY) {
    throw new RangeError(
      `no organisation number for sequence value ${value} (0–${ORGANISATION_NUMBER_CAPACITY - 1})`,
    );
  }
  const third = 9 - Math.floor(value / 1_000_000);
  const body = `55${third}${String(value % 1_000_000).padStart(6, '0')}`;
  const digits = `${body}${luhnCheckDigit(body)}`;
  return `${digits.slice(0, 6)}-${digits.slice(6)}`;
}

/**
 * The canonical organisation number of a value that is one (an organisation number, or a
 * personnummer, which is a sole trader's organisation number): NNNNNN-NNNN, or 12 digits for a
 * personnummer. Undefined when it is neither.
 */
export function canonicalOrganisationNumber(value: unknown): string | undefined {
  return typeof value === 'string' ? FORMAT_NORMALISERS.organisationsnummer(value) : undefined;
}

/**
 * The ten digits of an organisation number without separator; for a sole trader the
 * personnummer without its century (YYMMDDNNNN), as Skatteverket writes it in a VAT number.
 */
export function tenDigits(organisationNumber: string): string {
  const digits = organisationNumber.replace(/\D/g, '');
  return digits.length === 12 ? digits.slice(2) : digits;
}

/** Skatteverket's VAT registration number: SE, the ten-digit organisation number, 01. */
export function vatNumber(organisationNumber: string): string {
  return `SE${tenDigits(organisationNumber)}01`;
}
