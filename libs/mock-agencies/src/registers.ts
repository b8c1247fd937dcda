import { createHash } from 'node:crypto';
import type { FactValue } from '#agency-contract';
import { luhnCheckDigit } from './organisation-number.js';

/**
 * Stand-ins for the registers behind the agencies (population register, vehicle register):
 * what a real agency would look up, made up here, but the same every time for the same person
 * so that the mock behaves like one register.
 */

/**
 * The municipality (kommunkod) of a postal code: the main municipality of its postal area
 * (the first two digits). Coarse, but a valid municipality in the right part of the country.
 */
const MUNICIPALITY_BY_POSTAL_AREA: ReadonlyArray<readonly [number, number, string]> = [
  [10, 19, '0180'], // Stockholm
  [20, 21, '1280'], // Malmö
  [22, 24, '1281'], // Lund
  [25, 26, '1283'], // Helsingborg
  [27, 29, '1290'], // Kristianstad
  [30, 32, '1380'], // Halmstad
  [33, 36, '0780'], // Växjö
  [37, 37, '1080'], // Karlskrona
  [38, 39, '0880'], // Kalmar
  [40, 43, '1480'], // Göteborg
  [44, 47, '1488'], // Trollhättan
  [50, 54, '1490'], // Borås
  [55, 57, '0680'], // Jönköping
  [58, 59, '0580'], // Linköping
  [60, 61, '0581'], // Norrköping
  [62, 62, '0980'], // Gotland
  [63, 64, '0484'], // Eskilstuna
  [65, 69, '1780'], // Karlstad
  [70, 71, '1880'], // Örebro
  [72, 73, '1980'], // Västerås
  [74, 76, '0380'], // Uppsala
  [77, 79, '2080'], // Falun
  [80, 82, '2180'], // Gävle
  [83, 84, '2380'], // Östersund
  [85, 89, '2281'], // Sundsvall
  [90, 92, '2480'], // Umeå
  [93, 98, '2580'], // Luleå
];

export function municipalityOfPostalCode(postalCode: string): string | undefined {
  const digits = postalCode.replace(/\s/g, '');
  if (!/^[1-9]\d{4}$/.test(digits)) return undefined;
  const area = Number(digits.slice(0, 2));
  return MUNICIPALITY_BY_POSTAL_AREA.find(([from, to]) => area >= from && area <= to)?.[2];
}

/** The municipality of an address fact (its postal code), if it can be told. */
export function municipalityOfAddress(address: FactValue | undefined): string | undefined {
  if (typeof address !== 'object' || address === null || Array.isArray(address)) return undefined;
  const postalCode = address.postalCode;
  return typeof postalCode === 'string' ? municipalityOfPostalCode(postalCode) : undefined;
}

/** Deterministic bytes for a register entry: the same key gives the same entry. */
function entropy(register: string, key: string): Buffer {
  return createHash('sha256').update(`${register}\u0000${key}`).digest();
}

const MUNICIPALITIES = MUNICIPALITY_BY_POSTAL_AREA.map(([, , code]) => code);

/**
 * The population register's entry for a death: the date (1 to 30 days before `today`) and the
 * municipality where the deceased was registered.
 */
export function deathRecord(
  personalNumber: string,
  today: Date,
): { dateOfDeath: Date; municipalityCode: string } {
  const bytes = entropy('death', personalNumber);
  const daysAgo = 1 + ((bytes[0] ?? 0) % 30);
  return {
    dateOfDeath: new Date(today.getTime() - daysAgo * 86_400_000),
    municipalityCode: MUNICIPALITIES[(bytes[1] ?? 0) % MUNICIPALITIES.length] ?? '0180',
  };
}

// Swedish registration plates: three letters (not I, Q, V, Å, Ä, Ö), two digits, and a digit
// or (since 2019) a letter other than O.
const PLATE_LETTERS = 'ABCDEFGHJKLMNOPRSTUWXYZ';
const PLATE_LAST = '0123456789ABCDEFGHJKLMNPRSTUWXYZ';

/** The vehicle register: the registration numbers of the vehicles a person owns (0–2). */
export function vehiclesOwnedBy(personalNumber: string): string[] {
  const bytes = entropy('vehicles', personalNumber);
  const count = (bytes[0] ?? 0) % 3;
  const plates = new Set<string>();
  for (let i = 0; i < count; i += 1) {
    const at = (n: number): number => bytes[1 + i * 6 + n] ?? 0;
    const letters = [0, 1, 2].map((n) => PLATE_LETTERS[at(n) % PLATE_LETTERS.length]).join('');
    const digits = `${at(3) % 10}${at(4) % 10}`;
    plates.add(`${letters}${digits}${PLATE_LAST[at(5) % PLATE_LAST.length] ?? '0'}`);
  }
  return [...plates];
}

// ---- the population register (folkbokföringen) ------------------------------------------------

const TOWNS: Readonly<Record<string, { town: string; postalCode: string }>> = {
  '0180': { town: 'Stockholm', postalCode: '11' },
  '1280': { town: 'Malmö', postalCode: '21' },
  '1281': { town: 'Lund', postalCode: '22' },
  '1283': { town: 'Helsingborg', postalCode: '25' },
  '1480': { town: 'Göteborg', postalCode: '41' },
  '0380': { town: 'Uppsala', postalCode: '75' },
  '0580': { town: 'Linköping', postalCode: '58' },
  '1880': { town: 'Örebro', postalCode: '70' },
  '1980': { town: 'Västerås', postalCode: '72' },
  '2480': { town: 'Umeå', postalCode: '90' },
};
const TOWN_CODES = Object.keys(TOWNS);
const STREETS = [
  'Storgatan',
  'Drottninggatan',
  'Kungsgatan',
  'Skolgatan',
  'Järnvägsgatan',
  'Björkvägen',
  'Ringvägen',
  'Parkvägen',
  'Källgränd',
  'Sjövägen',
];
const GIVEN_FEMALE = [
  'Anna',
  'Eva',
  'Maria',
  'Karin',
  'Sara',
  'Lena',
  'Emma',
  'Elin',
  'Ida',
  'Maja',
];
const GIVEN_MALE = [
  'Erik',
  'Lars',
  'Karl',
  'Anders',
  'Johan',
  'Per',
  'Nils',
  'Oskar',
  'Lukas',
  'Axel',
];
const SURNAMES = [
  'Andersson',
  'Johansson',
  'Karlsson',
  'Nilsson',
  'Eriksson',
  'Larsson',
  'Olsson',
  'Persson',
  'Svensson',
  'Gustafsson',
  'Lindqvist',
  'Berg',
];

const pick = <T>(list: readonly T[], byte: number | undefined): T =>
  list[(byte ?? 0) % list.length] as T;

/** The name a person is registered with; the ninth digit tells a man (odd) from a woman (even). */
export function registeredName(personalNumber: string): Record<string, FactValue> {
  const bytes = entropy('name', personalNumber);
  const male = Number(personalNumber.charAt(personalNumber.length - 2)) % 2 === 1;
  return {
    givenName: pick(male ? GIVEN_MALE : GIVEN_FEMALE, bytes[0]),
    surname: pick(SURNAMES, bytes[1]),
  };
}

/** The address a person was registered at before any change of address. */
export function originalAddress(personalNumber: string): Record<string, FactValue> {
  const bytes = entropy('address', personalNumber);
  const code = pick(TOWN_CODES, bytes[0]);
  const { town, postalCode } = TOWNS[code] ?? { town: 'Stockholm', postalCode: '11' };
  const rest = String((((bytes[1] ?? 0) * 256 + (bytes[2] ?? 0)) % 900) + 100).padStart(3, '0');
  return {
    street: `${pick(STREETS, bytes[3])} ${String(((bytes[4] ?? 0) % 60) + 1)}`,
    postalCode: `${postalCode}${rest.charAt(0)} ${rest.slice(1)}`,
    town,
  };
}

/** Does the person receive benefits from Försäkringskassan now? (About one in three.) */
export function hasOngoingBenefits(personalNumber: string): boolean {
  return (entropy('benefits', personalNumber)[0] ?? 0) % 3 === 0;
}

/** Does the person draw a pension? Those born before 1960 do. */
export function receivesPension(personalNumber: string): boolean {
  return Number(personalNumber.slice(0, 4)) < 1960;
}

/**
 * The youngest child registered with a parent: born within the 90 days before `today`, with a
 * test personal identity number (birth number 980–999, as Skatteverket's test numbers have).
 */
export function youngestChild(parentPersonalNumber: string, today: Date): string {
  const bytes = entropy('child', parentPersonalNumber);
  const born = new Date(today.getTime() - (1 + ((bytes[0] ?? 0) % 90)) * 86_400_000);
  const date = born.toISOString().slice(0, 10).replace(/-/g, '');
  const birthNumber = String(980 + ((bytes[1] ?? 0) % 20));
  const nine = `${date.slice(2)}${birthNumber}`;
  return `${date}${birthNumber}${String(luhnCheckDigit(nine))}`;
}
