import { createHash } from 'node:crypto';
import { canonicalJson, validate, type Agency, type Catalogue, type FactType } from '#workflow';
import type { FieldProblem } from '../common/domain-error.js';
import type { LifeEventDefinitionRow } from './definition.entities.js';

export function entryChecksum(entry: FactType | Agency): string {
  return `sha256:${createHash('sha256').update(canonicalJson(entry)).digest('hex')}`;
}

/**
 * What a catalogue would break: every error of every definition in use (published, or deprecated
 * with cases still running on it) validated against the catalogue as it would become.
 */
export function breakingChanges(
  next: Catalogue,
  inUse: readonly LifeEventDefinitionRow[],
): FieldProblem[] {
  const broken: FieldProblem[] = [];
  for (const row of inUse) {
    for (const d of validate(row.body, next)) {
      if (d.severity === 'error')
        broken.push({
          path: `${row.key}@${String(row.version)}${d.path}`,
          reason: d.message,
          code: d.code,
        });
    }
  }
  return broken;
}
