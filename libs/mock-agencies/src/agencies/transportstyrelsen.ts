import { FORMAT_CHECKS } from '#facts';
import { vehiclesOwnedBy } from '../registers.js';
import { granted, requireString, type MockAgency } from '../mock-agency.js';

const isPersonnummer = (value: string): boolean => FORMAT_CHECKS.personnummer(value);

/** Transportstyrelsen: the vehicle register. */
export const transportstyrelsen: MockAgency = {
  code: 'transportstyrelsen',
  referencePrefix: 'TS',
  actions: {
    // The estate's contact person is registered; the answer lists the deceased's vehicles.
    'register-estate-contact': {
      decide({ facts }) {
        requireString(facts, 'person.personalNumber', isPersonnummer);
        const deceased = requireString(facts, 'deceased.personalNumber', isPersonnummer);
        return granted({ 'deceased.vehicles': vehiclesOwnedBy(deceased) });
      },
    },
  },
};
