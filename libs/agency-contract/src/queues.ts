/**
 * Queue names are wire names: adapters in other repositories listen on them, so they are chosen
 * once, kept here, and never renamed.
 */

/** Agency codes are lower-case ASCII, e.g. `bolagsverket`, `skatteverket`, `kommun`. */
export const AGENCY_CODE_PATTERN = /^[a-z][a-z0-9-]{1,31}$/;

/** The queue an agency's adapter consumes its jobs from. */
export function agencyQueueName(agencyCode: string): `agency.${string}` {
  if (!AGENCY_CODE_PATTERN.test(agencyCode)) {
    throw new Error(
      `invalid agency code ${JSON.stringify(agencyCode)}: expected ${String(AGENCY_CODE_PATTERN)}`,
    );
  }
  return `agency.${agencyCode}`;
}

/** The queue adapters answer on; the engine consumes it. */
export const ENGINE_RESULTS_QUEUE = 'engine.results';
