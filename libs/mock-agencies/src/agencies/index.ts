import type { MockAgency } from '../mock-agency.js';
import { arbetsformedlingen } from './arbetsformedlingen.js';
import { bolagsverket } from './bolagsverket.js';
import { forsakringskassan } from './forsakringskassan.js';
import { kommun } from './kommun.js';
import { pensionsmyndigheten } from './pensionsmyndigheten.js';
import { skatteverket } from './skatteverket.js';
import { transportstyrelsen } from './transportstyrelsen.js';

/** Every mock agency leo ships, by code. */
export const MOCK_AGENCIES: ReadonlyMap<string, MockAgency> = new Map(
  [
    bolagsverket,
    skatteverket,
    forsakringskassan,
    kommun,
    arbetsformedlingen,
    pensionsmyndigheten,
    transportstyrelsen,
  ].map((agency) => [agency.code, agency]),
);

/** The actions each built-in mock serves, by agency code (what publishing checks against). */
export const BUILT_IN_MOCK_ACTIONS: ReadonlyMap<string, ReadonlySet<string>> = new Map(
  [...MOCK_AGENCIES.values()].map((agency) => [agency.code, new Set(Object.keys(agency.actions))]),
);
