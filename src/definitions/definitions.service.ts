import { Injectable, Logger } from '@nestjs/common';
import { parse as parseYaml } from 'yaml';
import {
  DEFINITION_KEY_PATTERN,
  definitionChecksum,
  servingDiagnostics,
  sortDiagnostics,
  toMermaid,
  validate,
  withDefaults,
  type Catalogue,
  type Diagnostic,
  type LifeEventDefinition,
} from '#workflow';
import { BUILT_IN_MOCK_ACTIONS } from '#mock-agencies';
import { DomainError, type FieldProblem } from '../common/domain-error.js';
import { assertStorableJson } from '../common/params.js';
import type { LifeEventDefinitionRow } from './definition.entities.js';
import { DefinitionsRepository } from './definitions.repository.js';

type Manager = Parameters<DefinitionsRepository['loadCatalogue']>[0];

const KEY_PATTERN = DEFINITION_KEY_PATTERN;

export function problemsOf(diagnostics: readonly Diagnostic[]): FieldProblem[] {
  return diagnostics.map((d) => ({ path: d.path, reason: d.message, code: d.code }));
}

/**
 * The checksum a published version carries: of its content with defaults applied, without the
 * version number, so the same content always has the same checksum (how seeding recognises a
 * definition it has already published).
 */
export function contentChecksum(definition: LifeEventDefinition): string {
  return definitionChecksum({ ...withDefaults(definition), version: 0 });
}

/**
 * Reads an authored definition: a JSON object, or YAML text. Refuses, with 400, only what is
 * not a definition at all (no object, no valid key); anything else is saved and diagnosed.
 */
export function readDefinitionBody(body: unknown): { definition: LifeEventDefinition } {
  let value: unknown = body;
  if (typeof body === 'string') {
    try {
      value = parseYaml(body, { prettyErrors: true });
    } catch (error) {
      throw new DomainError(
        'invalid',
        'definition-unreadable',
        'The definition is not valid YAML or JSON.',
        [
          {
            path: '',
            reason:
              error instanceof Error
                ? (error.message.split('\n')[0] ?? 'unreadable')
                : 'unreadable',
          },
        ],
      );
    }
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new DomainError(
      'invalid',
      'definition-not-an-object',
      'A life-event definition is a JSON object.',
      [{ path: '', reason: 'must be an object' }],
    );
  }
  const key = (value as { key?: unknown }).key;
  if (typeof key !== 'string' || !KEY_PATTERN.test(key)) {
    throw new DomainError('invalid', 'validation-failed', 'The definition needs a valid key.', [
      { path: '/key', reason: `must be a kebab-case key matching ${KEY_PATTERN.source}` },
    ]);
  }
  assertStorableJson(value);
  // Saved as authored: a draft may be incomplete; `validate` reports what is wrong with it.
  return { definition: value as LifeEventDefinition };
}

export interface DraftView {
  row: LifeEventDefinitionRow;
  diagnostics: Diagnostic[];
}

/** Use cases of administrators authoring life events. */
@Injectable()
export class DefinitionsService {
  private readonly logger = new Logger(DefinitionsService.name);

  constructor(private readonly repository: DefinitionsRepository) {}

  catalogue(): Promise<Catalogue> {
    return this.repository.loadCatalogue();
  }

  async validate(body: unknown): Promise<Diagnostic[]> {
    const { definition } = readDefinitionBody(body);
    return this.diagnose(definition);
  }

  /**
   * Everything wrong with a definition: `validate`'s diagnostics against the catalogue, and
   * whether each step's action is served (by leo's mock, built in or configured, or an external
   * adapter with a credential).
   */
  private async diagnose(
    definition: LifeEventDefinition,
    manager?: Manager,
  ): Promise<Diagnostic[]> {
    const catalogue = await this.repository.loadCatalogue(manager);
    const agenciesWithCredential = await this.repository.agenciesWithCredential(manager);
    return sortDiagnostics([
      ...validate(definition, catalogue),
      ...servingDiagnostics(definition, catalogue, {
        builtInMocks: BUILT_IN_MOCK_ACTIONS,
        agenciesWithCredential,
      }),
    ]);
  }

  list(): Promise<LifeEventDefinitionRow[]> {
    return this.repository.listDefinitions();
  }

  async versions(key: string): Promise<LifeEventDefinitionRow[]> {
    const rows = await this.repository.listVersions(key);
    if (rows.length === 0) throw notFound(key);
    return rows;
  }

  async version(key: string, version: number): Promise<LifeEventDefinitionRow> {
    const row = await this.repository.findVersion(key, version);
    if (!row) throw notFound(`${key} version ${version}`);
    return row;
  }

  async draft(key: string): Promise<DraftView> {
    const row = await this.repository.findDraft(key);
    if (!row) throw new DomainError('not-found', 'no-draft', `Life event ${key} has no draft.`);
    return { row, diagnostics: await this.diagnose(row.body) };
  }

  async createDraft(body: unknown, by: string): Promise<DraftView> {
    const { definition } = readDefinitionBody(body);
    return this.repository.transaction(async (manager) => {
      await this.repository.lockCatalogue(manager);
      const row = await this.repository.createDraft(manager, definition, 'admin', by);
      return { row, diagnostics: await this.diagnose(row.body, manager) };
    });
  }

  async replaceDraft(key: string, body: unknown): Promise<DraftView> {
    const { definition } = readDefinitionBody(body);
    if (definition.key !== key) {
      throw new DomainError('invalid', 'validation-failed', 'The key of a draft cannot change.', [
        { path: '/key', reason: `must be ${key}, the life event this draft belongs to` },
      ]);
    }
    return this.repository.transaction(async (manager) => {
      await this.repository.lockCatalogue(manager);
      const draft = await this.repository.findDraft(key, manager);
      if (!draft) throw new DomainError('not-found', 'no-draft', `Life event ${key} has no draft.`);
      const row = await this.repository.replaceDraft(manager, draft, definition);
      return { row, diagnostics: await this.diagnose(row.body, manager) };
    });
  }

  async discardDraft(key: string): Promise<void> {
    await this.repository.transaction(async (manager) => {
      await this.repository.lockCatalogue(manager);
      const draft = await this.repository.findDraft(key, manager);
      if (!draft || !(await this.repository.deleteDraft(manager, draft))) {
        throw new DomainError('not-found', 'no-draft', `Life event ${key} has no draft.`);
      }
    });
  }

  /** Publishes the draft if it validates; otherwise 422 with every diagnostic. */
  async publishDraft(key: string, by: string): Promise<DraftView> {
    return this.repository.transaction(async (manager) => {
      await this.repository.lockCatalogue(manager);
      const draft = await this.repository.findDraft(key, manager);
      if (!draft) throw new DomainError('not-found', 'no-draft', `Life event ${key} has no draft.`);
      const diagnostics = await this.diagnose(draft.body, manager);
      const errors = diagnostics.filter((d) => d.severity === 'error');
      if (errors.length > 0) {
        throw new DomainError(
          'unprocessable',
          'definition-invalid',
          `The draft of ${key} has ${errors.length} error${errors.length === 1 ? '' : 's'} and cannot be published.`,
          problemsOf(errors),
        );
      }
      const row = await this.repository.publishDraft(
        manager,
        draft,
        (version) => ({ ...withDefaults(draft.body), version }),
        contentChecksum,
        by,
      );
      this.logger.log(
        { lifeEvent: key, version: row.version, checksum: row.checksum },
        'life event published',
      );
      return { row, diagnostics };
    });
  }

  /** Deprecates a published version; deprecating a deprecated one again is a no-op. */
  async deprecate(key: string, version: number, by: string): Promise<LifeEventDefinitionRow> {
    return this.repository.transaction(async (manager) => {
      const deprecated = await this.repository.deprecateVersion(manager, key, version, by);
      if (deprecated) return deprecated;
      const row = await this.repository.findVersion(key, version, manager);
      if (!row) throw notFound(`${key} version ${String(version)}`);
      if (row.status === 'draft') {
        throw new DomainError(
          'conflict',
          'not-published',
          'A draft cannot be deprecated; discard it instead.',
        );
      }
      return row;
    });
  }

  async diagram(key: string, version: number): Promise<string> {
    const row = await this.version(key, version);
    return toMermaid(row.body, await this.catalogue());
  }
}

function notFound(what: string): DomainError {
  return new DomainError('not-found', 'life-event-not-found', `No life event ${what}.`);
}
