import type { CaseUnit } from './case-unit.js';

/**
 * The conditions beyond its revision a change commits under, as SQL on the case's row (`alias`)
 * of the commit-cases statement (case-commit.sql.ts), with their parameters added through
 * `param`. Both are read in the statement's snapshot through a primary key: no lock, no write.
 *
 * - The subject fence (decision 0019): a change is written only if its subject's facts are still
 *   at the revision it was decided on. The revision moves on in the statement, for the changes
 *   that record facts.
 * - The owner fence (decision 0020): a change decided by the owner of its case's partition is
 *   written only while that owner still holds the partition under the same epoch, so a process
 *   that lost the partition commits nothing.
 */
export function commitFences(
  units: readonly CaseUnit[],
  param: (value: unknown, cast?: string) => string,
): { fenced: CaseUnit[]; owned: CaseUnit[]; fence: (alias: string) => string } {
  const fenced = units.filter((u) => u.subjectFence !== undefined);
  const owned = units.filter((u) => u.owner !== undefined);
  const expected =
    fenced.length > 0
      ? param(
          JSON.stringify(
            Object.fromEntries(fenced.map((u) => [u.caseRecord.id, u.subjectFence?.expected])),
          ),
          'jsonb',
        )
      : '';
  const owners =
    owned.length > 0
      ? param(
          JSON.stringify(
            Object.fromEntries(
              owned.map((u) => [
                u.caseRecord.id,
                { m: u.owner?.member, p: u.owner?.partition, e: u.owner?.epoch },
              ]),
            ),
          ),
          'jsonb',
        )
      : '';
  const subjectFence = (alias: string): string =>
    fenced.length === 0
      ? ''
      : ` AND (${expected} ->> ${alias}.id::text IS NULL OR (SELECT facts_revision FROM subjects
              WHERE id = ${alias}.subject_id) = (${expected} ->> ${alias}.id::text)::bigint)`;
  const ownerFence = (alias: string): string => {
    if (owned.length === 0) return '';
    const of = `${owners} -> ${alias}.id::text`;
    return ` AND (${of} IS NULL OR EXISTS (SELECT 1 FROM engine_partitions ep
              WHERE ep.partition = (${of} ->> 'p')::int AND ep.owner = ${of} ->> 'm'
                AND ep.epoch = (${of} ->> 'e')::bigint))`;
  };
  return { fenced, owned, fence: (alias) => `${subjectFence(alias)}${ownerFence(alias)}` };
}
