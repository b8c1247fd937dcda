import { FORMAT_CHECKS } from '#facts';
import { canonicalOrganisationNumber } from '../organisation-number.js';
import { granted, refused, requireObject, requireString, type MockAgency } from '../mock-agency.js';

const isPersonnummer = (value: string): boolean => FORMAT_CHECKS.personnummer(value);

/** Bolagsverket: the trade register and the register of limited companies. */
export const bolagsverket: MockAgency = {
  code: 'bolagsverket',
  referencePrefix: 'BV',
  actions: {
    // A sole trader's organisation number is their personnummer: registration confirms it.
    'register-sole-trader': {
      decide({ facts }) {
        requireObject(facts, 'person.name');
        requireString(facts, 'business.name');
        if (facts['business.legalForm'] !== 'enskild-naringsidkare') {
          return refused(
            'wrong-legal-form',
            'only a sole trader (enskild näringsidkare) is registered in the trade register this way',
          );
        }
        const personalNumber = requireString(facts, 'person.personalNumber', isPersonnummer);
        const orgNumber = canonicalOrganisationNumber(personalNumber);
        if (orgNumber === undefined)
          return refused('invalid-personal-number', 'not a valid personal identity number');
        return granted({ 'business.orgNumber': orgNumber });
      },
    },
    'register-limited-company': {
      async decide({ facts, nextOrganisationNumber }) {
        requireObject(facts, 'person.name');
        requireString(facts, 'person.personalNumber', isPersonnummer);
        requireString(facts, 'business.name');
        const shareCapital = facts['business.shareCapital'];
        if (typeof shareCapital !== 'number' || shareCapital < 25_000) {
          return refused(
            'share-capital-too-low',
            'a private limited company needs a share capital of at least SEK 25 000',
          );
        }
        return granted({ 'business.orgNumber': await nextOrganisationNumber() });
      },
    },
  },
};
