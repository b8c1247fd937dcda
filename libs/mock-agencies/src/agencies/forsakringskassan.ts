import { granted, type MockAgency } from '../mock-agency.js';
import { hasOngoingBenefits } from '../registers.js';

/** Försäkringskassan: parental benefit, child allowance, notices. */
export const forsakringskassan: MockAgency = {
  code: 'forsakringskassan',
  referencePrefix: 'FK',
  lookups: {
    'person.hasOngoingBenefits': ({ personalNumber }) => hasOngoingBenefits(personalNumber),
  },
  actions: {
    'apply-parental-benefit': { decidedLater: true, decide: () => granted() },
    'register-child-allowance': { decide: () => granted() },
    'notify-change-of-address': { decide: () => granted() },
    'notify-death': { decide: () => granted() },
  },
};
