// The subjects' statements, each for many subjects at once: EngineRepository batches the calls
// that arrive together (in a burst every citizen's request makes one), so one statement serves
// them all. Each returns one answer per id asked, in their order, an id asked twice included.
import type pg from 'pg';
import { uuidv7 } from '../common/uuid.js';
import { toFact, withDates, type FactRow } from './case-rows.js';
import type { FactRecord } from './engine.types.js';

/** Runs a named statement (EngineRepository's prepared statements). */
export type NamedQuery = <T extends pg.QueryResultRow>(
  name: string,
  text: string,
  values: unknown[],
) => Promise<T[]>;

/** The facts revision of each subject (decision 0019); -1 for no such subject. */
export async function readFactsRevisions(
  sql: NamedQuery,
  subjectIds: readonly string[],
): Promise<number[]> {
  const rows = await sql<{ id: string; revision: string }>(
    'subject-facts-revisions',
    'SELECT id, facts_revision AS revision FROM subjects WHERE id = ANY($1::text[])',
    [[...new Set(subjectIds)]],
  );
  const revisions = new Map(rows.map((row) => [row.id, Number(row.revision)]));
  return subjectIds.map((id) => revisions.get(id) ?? -1);
}

/**
 * Each subject's current value of each fact and the revision they were read at, in one snapshot:
 * what a new case of the subject is decided on. Each answer has a map of its own (a change
 * mutates what it read); a subject without facts, or no such subject, has none at revision 0.
 */
export async function readSubjectsFacts(
  sql: NamedQuery,
  subjectIds: readonly string[],
): Promise<Array<{ facts: Map<string, FactRecord>; revision: number }>> {
  const rows = await sql<{ id: string; facts: FactRow[]; revision: string }>(
    'subjects-facts',
    `SELECT s.id, s.facts_revision AS revision,
       (SELECT coalesce(json_agg(f), '[]') FROM (
          SELECT DISTINCT ON (fact_key) * FROM fact_records
           WHERE subject_id = s.id ORDER BY fact_key, created_at DESC, id) f) AS facts
       FROM subjects s WHERE s.id = ANY($1::text[])`,
    [[...new Set(subjectIds)]],
  );
  const bySubject = new Map(rows.map((row) => [row.id, row]));
  return subjectIds.map((id) => {
    const row = bySubject.get(id);
    const facts = (row?.facts ?? []).map((f) =>
      toFact(withDates(f as unknown as Record<string, unknown>) as unknown as FactRow),
    );
    return {
      facts: new Map(facts.map((f) => [f.factKey, f])),
      revision: Number(row?.revision ?? 0),
    };
  });
}

/**
 * The subject of each identity digest, created on first sight (concurrently safe). A digest
 * that another statement created while this one waited on it is neither created nor found
 * here (the insert did nothing, and this snapshot predates that commit): it is read again,
 * on its own.
 */
export async function findOrCreateSubjects(
  sql: NamedQuery,
  digests: readonly string[],
): Promise<string[]> {
  const unique = [...new Set(digests)];
  const rows = await sql<{ id: string; digest: string }>(
    'subjects-by-digest',
    `WITH wanted AS (
       SELECT * FROM jsonb_to_recordset($1::jsonb) AS w(digest text, id text)),
     created AS (
       INSERT INTO subjects (id, identity_digest) SELECT id, digest FROM wanted
       ON CONFLICT (identity_digest) DO NOTHING RETURNING id, identity_digest AS digest)
     SELECT id, digest FROM created
     UNION ALL
     SELECT s.id, s.identity_digest FROM subjects s
      WHERE s.identity_digest IN (SELECT digest FROM wanted)`,
    // Minted in time order, as the engine's ids are (src/common/uuid.ts).
    [JSON.stringify(unique.map((digest) => ({ digest, id: uuidv7() })))],
  );
  const ids = new Map(rows.map((row) => [row.digest, row.id]));
  for (const digest of unique) {
    if (ids.has(digest)) continue;
    const [row] = await sql<{ id: string }>(
      'subject-by-digest-again',
      'SELECT id FROM subjects WHERE identity_digest = $1',
      [digest],
    );
    if (row === undefined) throw new Error('subject could be neither created nor found');
    ids.set(digest, row.id);
  }
  return digests.map((digest) => ids.get(digest) ?? '');
}
