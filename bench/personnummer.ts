/**
 * Test personal identity numbers (personnummer) for the benchmark's citizens: a real date of
 * birth, a birth number in 980–999 (the range Skatteverket's published test numbers use, never
 * assigned to real people) and the Luhn check digit over the 10-digit form. Written in the
 * 12-digit form YYYYMMDDNNNC that leo normalises to.
 */

import { luhnCheckDigit } from '#mock-agencies';

const BIRTH_NUMBERS = 20; // 980–999
const DAY_MS = 86_400_000;

/** The personnummer of a date of birth (UTC) and a birth number 980–999. */
export function personnummer(birth: Date, birthNumber: number): string {
  if (!Number.isInteger(birthNumber) || birthNumber < 980 || birthNumber > 999) {
    throw new RangeError(`birth number ${birthNumber} is outside the test range 980–999`);
  }
  const yyyy = String(birth.getUTCFullYear()).padStart(4, '0');
  const mm = String(birth.getUTCMonth() + 1).padStart(2, '0');
  const dd = String(birth.getUTCDate()).padStart(2, '0');
  const nnn = String(birthNumber);
  const check = luhnCheckDigit(`${yyyy.slice(2)}${mm}${dd}${nnn}`);
  return `${yyyy}${mm}${dd}${nnn}${check}`;
}

/**
 * The live benchmark's citizens: index i gets the i-th number born 2000-01-01 onwards, twenty a
 * day. The history loader (load-history.ts) uses dates before 2000, so live cases never meet a
 * person with history on file (whose facts leo would reuse, changing the workload).
 */
const LIVE_FIRST_BIRTH = Date.UTC(2000, 0, 1);
const LIVE_LAST_BIRTH = Date.UTC(2007, 11, 31); // adults when the bench runs
export const LIVE_CAPACITY = ((LIVE_LAST_BIRTH - LIVE_FIRST_BIRTH) / DAY_MS + 1) * BIRTH_NUMBERS;

export function livePersonnummer(index: number): string {
  if (!Number.isInteger(index) || index < 0 || index >= LIVE_CAPACITY) {
    throw new RangeError(
      `no unique test personnummer for case ${index} (at most ${LIVE_CAPACITY} per database)`,
    );
  }
  const birth = new Date(LIVE_FIRST_BIRTH + Math.floor(index / BIRTH_NUMBERS) * DAY_MS);
  return personnummer(birth, 980 + (index % BIRTH_NUMBERS));
}
