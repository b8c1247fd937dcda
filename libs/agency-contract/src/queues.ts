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
 * The queue adapters answered on before the results stream (decision 0018). The engine still
 * consumes it, so adapters on an older SDK keep working during an upgrade. Deprecated for
 * adapters: answer on the results stream (`resultsStreamKey`).
 */
export const ENGINE_RESULTS_QUEUE = 'engine.results';

/**
 * The stream adapters answer on (since decision 0018): one Redis stream, read by every engine in
 * the consumer group `engine`. Its key is {@link resultsStreamKey}: under leo's queue prefix, so
 * with the default `{leo}` (a Redis Cluster hash tag) it shares the queues' slot. A permanent
 * wire name, like the queue names.
 */
export const ENGINE_RESULTS_STREAM = 'engine.results';

/** The key of the results stream: `<prefix>:stream:engine.results`, e.g. `{leo}:stream:engine.results`. */
export function resultsStreamKey(prefix = '{leo}'): string {
  return `${prefix}:stream:${ENGINE_RESULTS_STREAM}`;
}

/**
 * How many partitions leo spreads cases over, so how many partition streams there are (fixed
 * once, by leo's migration EnginePartitions).
 */
export const RESULT_PARTITIONS = 32;

/**
 * The results stream of one partition of cases (decision 0020): `<results stream>:p<n>`, e.g.
 * `{leo}:stream:engine.results:p7`, read only by the engine that owns the partition. A job names
 * the stream its answer goes to in `replyTo`.
 */
export function partitionStreamKey(prefix: string, partition: number): string {
  return `${resultsStreamKey(prefix)}:p${String(partition)}`;
}

/**
 * Where the answer to `job` goes: its `replyTo`, if that is one of leo's partition streams under
 * `streamKey` (the SDK's results stream); otherwise, for a job from an engine before partitions
 * or a `replyTo` naming any other key, the results stream itself (the engine forwards an answer
 * there to its case's owner). A queue message is not trusted to name an arbitrary key.
 */
export function replyStream(streamKey: string, job: unknown): string {
  const replyTo =
    typeof job === 'object' && job !== null ? (job as { replyTo?: unknown }).replyTo : undefined;
  if (typeof replyTo !== 'string' || !replyTo.startsWith(`${streamKey}:p`)) return streamKey;
  const partition = replyTo.slice(streamKey.length + 2);
  return /^(0|[1-9]\d?)$/.test(partition) && Number(partition) < RESULT_PARTITIONS
    ? replyTo
    : streamKey;
}

/**
 * How many entries the results stream keeps, roughly (`XADD … MAXLEN ~ 100000`): entries are
 * trimmed by age of insertion, applied or not. At a thousand results a second that is more than
 * a minute and a half of results not yet read by any engine before the oldest go; past that the
 * reconciler re-dispatches what was lost, as after Redis lost its data.
 */
export const RESULTS_STREAM_MAXLEN = 100_000;
