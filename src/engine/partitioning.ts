/**
 * Which partition a case belongs to (docs/decisions/0020-partitions.md): pure, the same in every
 * process and in Postgres (`leo_partition(uuid)`, migration 1765065600000).
 */

import { PARTITION_COUNT } from '../common/partitions.js';

export { PARTITION_COUNT };

/** A case's partition: the last 16 bits of its id (random in UUID v4 and v7), modulo the count. */
export function partitionOf(caseId: string): number {
  const tail = caseId.slice(-4);
  if (!/^[0-9a-f]{4}$/i.test(tail)) throw new Error(`not a case id: ${caseId}`);
  return Number.parseInt(tail, 16) % PARTITION_COUNT;
}

/** A partition's lease row as the lease round reads it. */
export interface LeaseRow {
  partition: number;
  owner: string | null;
  epoch: number;
  /** Whether its lease is still running (`lease_until > now()` in Postgres' clock). */
  live: boolean;
}

/**
 * What one engine does in a lease round (pure): with `members` engines alive, each holds its fair
 * share, ceil(count / members). One holding more releases the excess (its highest partitions);
 * one holding less takes partitions nobody holds (never released, or whose owner stopped
 * renewing), starting at an offset of its own so that engines acquiring at once mostly ask for
 * different rows (Postgres decides any race: one acquisition per row wins).
 */
export function planLeases(input: {
  member: string;
  members: number;
  held: readonly number[];
  rows: readonly LeaseRow[];
}): { acquire: number[]; release: number[] } {
  const count = input.rows.length;
  const share = Math.ceil(count / Math.max(1, input.members));
  const held = [...input.held].sort((a, b) => a - b);
  if (held.length > share) return { acquire: [], release: held.slice(share) };
  const free = input.rows
    // Nobody's, run out, or naming this engine without its holding it (a release that failed).
    .filter((r) => r.owner === null || !r.live || r.owner === input.member)
    .map((r) => r.partition)
    .filter((p) => !held.includes(p));
  const offset = count === 0 ? 0 : memberOffset(input.member) % count;
  free.sort((a, b) => ((a - offset + count) % count) - ((b - offset + count) % count));
  return { acquire: free.slice(0, share - held.length), release: [] };
}

function memberOffset(member: string): number {
  let h = 0;
  for (let i = 0; i < member.length; i += 1) h = (h * 31 + member.charCodeAt(i)) >>> 0;
  return h;
}
