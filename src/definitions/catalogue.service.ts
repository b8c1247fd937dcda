import { Injectable } from '@nestjs/common';
import { checkCatalogue, createFactValidator, parseAgencies, parseFactCatalogue } from '#facts';
import { sampleProduced } from '#mock-agencies';
import { queuedAgencies, type Agency, type Catalogue, type FactType } from '#workflow';
import { DomainError, type FieldProblem } from '../common/domain-error.js';
import { assertStorableJson } from '../common/params.js';
import type { CatalogueEntryRow } from './definition.entities.js';
import { breakingChanges, entryChecksum } from './catalogue-rules.js';
import { DefinitionsRepository } from './definitions.repository.js';

/**
 * Administrators' edits of fact types and agencies. An edit is refused when it would make a
 * published definition invalid (it could then ask twice, or send a fact nobody may receive):
 * deprecate or republish those first.
 */
@Injectable()
export class CatalogueService {
  constructor(private readonly repository: DefinitionsRepository) {}

  listFactTypes(): Promise<Array<CatalogueEntryRow<'fact-type'>>> {
    return this.repository.listEntries('fact-type');
  }

  async factType(key: string): Promise<CatalogueEntryRow<'fact-type'>> {
    const row = await this.repository.findEntry('fact-type', key);
    if (!row) throw new DomainError('not-found', 'fact-type-not-found', `No fact type ${key}.`);
    return row;
  }

  listAgencies(): Promise<Array<CatalogueEntryRow<'agency'>>> {
    return this.repository.listEntries('agency');
  }

  async agency(code: string): Promise<CatalogueEntryRow<'agency'>> {
    const row = await this.repository.findEntry('agency', code);
    if (!row) throw new DomainError('not-found', 'agency-not-found', `No agency ${code}.`);
    return row;
  }

  /**
   * An agency with a queue of its own, as it is served: a catalogue entry, or an onboarded
   * instance of an agency of many (`kommun-0180`, with `family` its entry's code).
   */
  async queuedAgency(code: string): Promise<{ agency: Agency; family: string }> {
    for (const row of await this.repository.listEntries('agency')) {
      for (const agency of queuedAgencies([row.body])) {
        if (agency.code === code) return { agency, family: row.key };
      }
      if (row.key === code) {
        throw new DomainError(
          'not-found',
          'agency-not-found',
          `${code} has no queue of its own: it is many agencies, one per onboarded instance (${code}-<id>).`,
        );
      }
    }
    throw new DomainError('not-found', 'agency-not-found', `No agency ${code}.`);
  }

  async putFactType(
    key: string,
    body: unknown,
    by: string,
  ): Promise<CatalogueEntryRow<'fact-type'>> {
    // The same reader as config/facts.yaml, so an entry reads the same from a file or the API.
    assertStorableJson(body);
    const parsed = parseFactCatalogue(JSON.stringify([body]));
    const fact = parsed.facts[0];
    if (parsed.problems.length > 0 || !fact) {
      throw invalid(
        parsed.problems.map((p) => ({ path: p.path.replace(/^\/0/, ''), reason: p.message })),
      );
    }
    if (fact.key !== key)
      throw invalid([{ path: '/key', reason: `must be ${key}, the fact type being edited` }]);
    return this.repository.transaction(async (manager) => {
      await this.repository.lockCatalogue(manager);
      const current = await this.repository.loadCatalogue(manager);
      const next: Catalogue = {
        facts: new Map(current.facts).set(key, fact),
        agencies: current.agencies,
      };
      await this.refuseIfBreaking(next, manager);
      const checksum = entryChecksum(fact);
      // The same entry again (a client retrying its PUT) is checked as any, and is then no
      // change: no new revision.
      const existing = await this.repository.findEntry('fact-type', key, manager);
      if (existing?.checksum === checksum) return existing;
      return this.repository.saveEntry(manager, 'fact-type', key, {
        body: fact,
        checksum,
        origin: 'admin',
        by,
      });
    });
  }

  async putAgency(code: string, body: unknown, by: string): Promise<CatalogueEntryRow<'agency'>> {
    assertStorableJson(body);
    const parsed = parseAgencies(JSON.stringify([body]));
    const agency = parsed.agencies[0];
    if (parsed.problems.length > 0 || !agency) {
      throw invalid(
        parsed.problems.map((p) => ({ path: p.path.replace(/^\/0/, ''), reason: p.message })),
      );
    }
    if (agency.code !== code)
      throw invalid([{ path: '/code', reason: `must be ${code}, the agency being edited` }]);
    return this.repository.transaction(async (manager) => {
      await this.repository.lockCatalogue(manager);
      const current = await this.repository.loadCatalogue(manager);
      const next: Catalogue = {
        facts: current.facts,
        agencies: new Map(current.agencies).set(code, agency),
      };
      await this.refuseIfBreaking(next, manager);
      await refuseMockValuesNotFitting(agency, next);
      const checksum = entryChecksum(agency);
      const existing = await this.repository.findEntry('agency', code, manager);
      if (existing?.checksum === checksum) return existing;
      return this.repository.saveEntry(manager, 'agency', code, {
        body: agency,
        checksum,
        origin: 'admin',
        by,
      });
    });
  }

  private async refuseIfBreaking(
    next: Catalogue,
    manager: Parameters<DefinitionsRepository['listPublished']>[0],
  ): Promise<void> {
    const facts: FactType[] = [...next.facts.values()];
    const agencies: Agency[] = [...next.agencies.values()];
    // One entry changes at a time, so a new produced fact comes before the action producing it.
    const catalogueProblems = checkCatalogue(facts, agencies, { requireProducers: false });
    if (catalogueProblems.length > 0) {
      throw new DomainError(
        'unprocessable',
        'catalogue-inconsistent',
        'The change leaves the catalogue inconsistent.',
        catalogueProblems.map((p) => ({ path: p.path, reason: p.message })),
      );
    }
    const broken = breakingChanges(next, await this.repository.listInUse(manager));
    if (broken.length > 0) {
      throw new DomainError(
        'conflict',
        'breaks-published-definitions',
        'The change would make life events in use invalid (published, or deprecated with running cases).',
        broken,
      );
    }
  }
}

/**
 * A configured mock must make values its facts accept: each `value`, `generate` and `template`
 * rule is tried once, and a value its fact's schema refuses is refused here, naming the rule,
 * rather than failing a citizen's step later.
 */
async function refuseMockValuesNotFitting(agency: Agency, catalogue: Catalogue): Promise<void> {
  const configured = agency.actions.filter((action) => action.mock?.produce);
  if (configured.length === 0) return;
  const validator = createFactValidator([...catalogue.facts.values()]);
  const problems: FieldProblem[] = [];
  for (const action of configured) {
    const index = agency.actions.indexOf(action);
    const seen = new Set<string>();
    for (const sample of await sampleProduced(agency, action)) {
      for (const [key, value] of Object.entries(sample)) {
        const issue = validator.validate(key, value)[0];
        if (!issue || seen.has(key)) continue;
        seen.add(key);
        problems.push({
          path: `/actions/${index}/mock/produce/${key}`,
          reason: `makes values like ${JSON.stringify(value)}, which ${key} refuses: ${issue.path || '/'} ${issue.reason}`,
        });
      }
    }
  }
  if (problems.length > 0) {
    throw new DomainError(
      'unprocessable',
      'mock-values-invalid',
      "The mock would make values that their facts' schemas refuse.",
      problems,
    );
  }
}

function invalid(problems: FieldProblem[]): DomainError {
  return new DomainError(
    'invalid',
    'validation-failed',
    `The request has ${problems.length} invalid field(s).`,
    problems,
  );
}
