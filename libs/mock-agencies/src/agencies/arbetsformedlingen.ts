import { granted, type MockAgency } from '../mock-agency.js';

/** Arbetsförmedlingen: start-up support for the unemployed, decided after review. */
export const arbetsformedlingen: MockAgency = {
  code: 'arbetsformedlingen',
  referencePrefix: 'AF',
  actions: {
    'apply-start-up-support': {
      decidedLater: true,
      refusal: {
        code: 'support-refused',
        reason: 'the business plan was not judged to give a lasting income',
      },
      decide: () => granted(),
    },
  },
};
