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

/**
 * How many partitions leo spreads cases over (fixed once, by leo's migration EnginePartitions;
 * decision 0020).
 */
export const RESULT_PARTITIONS = 32;

/**
 * The stream an agency's adapter answers on (decision 0022): one Redis stream per agency,
 * `<prefix>:stream:agency.<code>.results`, e.g. `{leo}:stream:agency.skatteverket.results`. The
 * agency's credential may append to this key and to no other stream, and never read it; leo takes
 * the agency of an answer from the stream it came by, never from the answer. Under leo's queue
 * prefix, so with the default `{leo}` (a Redis Cluster hash tag) it shares the queues' slot. A
 * permanent wire name, like the queue names.
 */
export function agencyResultsStreamKey(prefix: string, agencyCode: string): string {
  return `${prefix}:stream:${agencyQueueName(agencyCode)}.results`;
}

/**
 * The agency whose results stream `key` is (under `prefix`), or undefined when `key` is no
 * agency's results stream.
 */
export function agencyOfResultsStream(prefix: string, key: string): string | undefined {
  const head = `${prefix}:stream:agency.`;
  const tail = '.results';
  if (!key.startsWith(head) || !key.endsWith(tail)) return undefined;
  const code = key.slice(head.length, key.length - tail.length);
  return AGENCY_CODE_PATTERN.test(code) ? code : undefined;
}

/**
 * How many entries an agency's results stream keeps, roughly (`XADD … MAXLEN ~ 100000`): entries
 * are trimmed by age of insertion, applied or not. At a thousand results a second that is more
 * than a minute and a half of results not yet read by any engine before the oldest go; past that
 * the reconciler re-dispatches what was lost, as after Redis lost its data.
 */
export const RESULTS_STREAM_MAXLEN = 100_000;
