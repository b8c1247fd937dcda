import type { FactValue } from '#agency-contract';
import { FORMAT_CHECKS } from '#facts';
import { canonicalOrganisationNumber, vatNumber } from '../organisation-number.js';
import {
  deathRecord,
  municipalityOfAddress,
  originalAddress,
  registeredName,
  youngestChild,
} from '../registers.js';
import {
  IncompleteApplication,
  granted,
  requireString,
  swedishDate,
  type Facts,
  type MockAgency,
  type MockLookupContext,
} from '../mock-agency.js';

const isPersonnummer = (value: string): boolean => FORMAT_CHECKS.personnummer(value);

function organisationNumber(facts: Facts): string {
  const value = canonicalOrganisationNumber(facts['business.orgNumber']);
  if (value === undefined) throw new IncompleteApplication('business.orgNumber');
  return value;
}

/** The registered address: the latest granted change of address, else the original one. */
async function registeredAddress(context: MockLookupContext): Promise<FactValue> {
  return (await context.registeredMove()) ?? originalAddress(context.personalNumber);
}

/** Skatteverket: taxes (F-tax, VAT, employers) and the population register. */
export const skatteverket: MockAgency = {
  code: 'skatteverket',
  referencePrefix: 'SKV',
  // Folkbokföringen: the person's registered name and address, the municipality of that
  // address, and their youngest child.
  lookups: {
    'person.name': ({ personalNumber }) => registeredName(personalNumber),
    'person.address': registeredAddress,
    'person.municipalityCode': async (context) =>
      municipalityOfAddress(await registeredAddress(context)),
    'child.personalNumber': ({ personalNumber, today }) => youngestChild(personalNumber, today),
  },
  actions: {
    // Decided after review; approved from the day the application came in. F rather than FA:
    // whether the applicant is also employed is not among what the step sends.
    'register-f-tax': {
      decidedLater: true,
      decide({ facts, receivedAt }) {
        organisationNumber(facts);
        return granted({
          'business.fTaxStatus': { taxForm: 'F', validFrom: swedishDate(receivedAt) },
        });
      },
    },
    'register-vat': {
      decide({ facts }) {
        return granted({ 'business.vatNumber': vatNumber(organisationNumber(facts)) });
      },
    },
    // The employer is registered under its organisation number (a sole trader's personnummer).
    'register-employer': {
      decide({ facts }) {
        return granted({ 'business.employerId': organisationNumber(facts) });
      },
    },
    // Flyttanmälan: Skatteverket decides on the registration at the new address.
    'register-change-of-address': {
      decidedLater: true,
      decide({ facts }) {
        requireString(facts, 'person.personalNumber', isPersonnummer);
        const municipality = municipalityOfAddress(facts['move.newAddress']);
        if (municipality === undefined) throw new IncompleteApplication('move.newAddress');
        return granted({ 'move.municipalityCode': municipality });
      },
    },
    // Dödsfallsintyg med släktutredning, from the population register.
    'issue-death-certificate': {
      decide({ facts, receivedAt }) {
        requireString(facts, 'person.personalNumber', isPersonnummer);
        const deceased = requireString(facts, 'deceased.personalNumber', isPersonnummer);
        const record = deathRecord(deceased, receivedAt);
        return granted({
          'deceased.dateOfDeath': swedishDate(record.dateOfDeath),
          'deceased.municipalityCode': record.municipalityCode,
        });
      },
    },
    'register-estate-inventory': {
      decide({ facts }) {
        requireString(facts, 'deceased.personalNumber', isPersonnummer);
        return granted();
      },
    },
  },
};
