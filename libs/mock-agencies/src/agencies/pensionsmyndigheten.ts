import { granted, type MockAgency } from '../mock-agency.js';
import { receivesPension } from '../registers.js';

/** Pensionsmyndigheten: notices, and the survivor's pension, decided on eligibility. */
export const pensionsmyndigheten: MockAgency = {
  code: 'pensionsmyndigheten',
  referencePrefix: 'PM',
  lookups: {
    'person.receivesPension': ({ personalNumber }) => receivesPension(personalNumber),
  },
  actions: {
    'notify-change-of-address': { decide: () => granted() },
    'notify-death': { decide: () => granted() },
    // A cohabitant qualifies only with children in common or an earlier marriage.
    'apply-survivors-pension': {
      decidedLater: true,
      refusal: {
        code: 'not-entitled',
        reason: "the conditions for a survivor's pension (omställningspension) are not met",
      },
      decide: () => granted(),
    },
  },
};
