import { granted, type Facts, type MockAgency } from '../mock-agency.js';
import { municipalityOfAddress } from '../registers.js';

const MUNICIPALITY_FACTS = [
  'business.premisesMunicipalityCode',
  'person.municipalityCode',
  'move.municipalityCode',
  'deceased.municipalityCode',
];
const ADDRESS_FACTS = ['business.premisesAddress', 'move.newAddress', 'person.address'];

/** The municipality an application goes to: a municipality code among its facts, or an address's. */
export function municipalityOf(facts: Facts): string | undefined {
  for (const key of MUNICIPALITY_FACTS) {
    const code = facts[key];
    if (typeof code === 'string') return code;
  }
  for (const key of ADDRESS_FACTS) {
    const code = municipalityOfAddress(facts[key]);
    if (code !== undefined) return code;
  }
  return undefined;
}

/**
 * The municipality: one agency for all 290, each job routed by the municipality code among its
 * facts (or an address's postal code), which its references carry: `KOM-0180-…`.
 */
export const kommun: MockAgency = {
  code: 'kommun',
  referencePrefix: 'KOM',
  officeOf: municipalityOf,
  actions: {
    'register-food-premises': { decide: () => granted() },
    // Serveringstillstånd: the municipality reviews the applicant's suitability and the premises.
    'apply-alcohol-licence': {
      decidedLater: true,
      refusal: {
        code: 'licence-refused',
        reason:
          'the municipality did not find the applicant suitable or the premises fit to serve alcohol',
      },
      decide: () => granted(),
    },
    'notify-new-business': { decide: () => granted() },
    // The municipality must offer a place within four months: the decision is the offer.
    'preschool-queue': { decidedLater: true, decide: () => granted() },
    'notify-new-resident': { decide: () => granted() },
    'register-estate-notification': { decidedLater: true, decide: () => granted() },
    'notify-death': { decide: () => granted() },
  },
};
