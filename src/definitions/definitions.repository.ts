import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, QueryFailedError, type EntityManager } from 'typeorm';
import type { Agency, Catalogue, FactType, LifeEventDefinition } from '#workflow';
import { DomainError } from '../common/domain-error.js';
import {
  CatalogueEntryRow,
  CatalogueRevisionRow,
  LifeEventDefinitionRow,
  type CatalogueBodies,
  type CatalogueKind,
  type Origin,
} from './definition.entities.js';

export interface CatalogueEntryChange<T> {
  body: T;
  checksum: string;
  origin: Origin;
  /**
   * The checksum of the seed entry applied, for a change from a seed file; undefined for an
   * administrator's edit, which keeps the one before (so a later start can tell whether the
   * seed itself changed since).
   */
  seedChecksum?: string;
  by: string;
}

const UNIQUE_VIOLATION = '23505';

function isUniqueViolation(error: unknown): boolean {
  return (
    error instanceof QueryFailedError &&
    (error.driverError as { code?: string }).code === UNIQUE_VIOLATION
  );
}

/**
 * Named operations on the catalogue and the life-event definitions; the only place that knows
 * their tables. Immutability of published definitions is also enforced by a trigger.
 */
@Injectable()
export class DefinitionsRepository {
  constructor(@InjectDataSource() private readonly dataSource: DataSource) {}

  transaction<T>(work: (manager: EntityManager) => Promise<T>): Promise<T> {
    return this.dataSource.transaction(work);
  }

  /** Serialises writers of the catalogue and definitions for the rest of the transaction. */
  async lockCatalogue(manager: EntityManager): Promise<void> {
    await manager.query('SELECT pg_advisory_xact_lock($1)', ['7359420271002']);
  }

  async loadCatalogue(manager: EntityManager = this.dataSource.manager): Promise<Catalogue> {
    const rows = await manager.find(CatalogueEntryRow, { order: { key: 'ASC' } });
    const facts = new Map<string, FactType>();
    const agencies = new Map<string, Agency>();
    for (const row of rows) {
      if (row.kind === 'fact-type') facts.set(row.key, row.body as FactType);
      else agencies.set(row.key, row.body as Agency);
    }
    return { facts, agencies };
  }

  // ---- fact types and agencies ------------------------------------------------------------

  listEntries<K extends CatalogueKind>(kind: K): Promise<Array<CatalogueEntryRow<K>>> {
    return this.dataSource.manager.find(CatalogueEntryRow, {
      where: { kind },
      order: { key: 'ASC' },
    }) as Promise<Array<CatalogueEntryRow<K>>>;
  }

  findEntry<K extends CatalogueKind>(
    kind: K,
    key: string,
    manager: EntityManager = this.dataSource.manager,
  ): Promise<CatalogueEntryRow<K> | null> {
    return manager.findOne(CatalogueEntryRow, {
      where: { kind, key },
    }) as Promise<CatalogueEntryRow<K> | null>;
  }

  /** Inserts or replaces a catalogue entry, appending its revision to the history. */
  async saveEntry<K extends CatalogueKind>(
    manager: EntityManager,
    kind: K,
    key: string,
    change: CatalogueEntryChange<CatalogueBodies[K]>,
  ): Promise<CatalogueEntryRow<K>> {
    const existing = await this.findEntry(kind, key, manager);
    const now = new Date();
    const row = manager.create(CatalogueEntryRow, {
      kind,
      key,
      body: change.body,
      checksum: change.checksum,
      revision: (existing?.revision ?? 0) + 1,
      origin: change.origin,
      seedChecksum: change.seedChecksum ?? existing?.seedChecksum ?? null,
      updatedAt: now,
      updatedBy: change.by,
    }) as CatalogueEntryRow<K>;
    await manager.save(CatalogueEntryRow, row);
    await manager.save(
      manager.create(CatalogueRevisionRow, {
        kind,
        entryKey: key,
        revision: row.revision,
        body: change.body,
        checksum: change.checksum,
        changedAt: now,
        changedBy: change.by,
      }),
    );
    return row;
  }

  listCatalogueRevisions(kind: CatalogueKind, entryKey: string): Promise<CatalogueRevisionRow[]> {
    return this.dataSource.manager.find(CatalogueRevisionRow, {
      where: { kind, entryKey },
      order: { revision: 'ASC' },
    });
  }

  // ---- life-event definitions -------------------------------------------------------------

  /** Every version of every life event, newest first within a key. */
  listDefinitions(): Promise<LifeEventDefinitionRow[]> {
    return this.dataSource.manager.find(LifeEventDefinitionRow, {
      order: { key: 'ASC', version: 'DESC' },
    });
  }

  listVersions(key: string): Promise<LifeEventDefinitionRow[]> {
    return this.dataSource.manager.find(LifeEventDefinitionRow, {
      where: { key },
      order: { version: 'DESC' },
    });
  }

  findVersion(key: string, version: number): Promise<LifeEventDefinitionRow | null> {
    return this.dataSource.manager.findOne(LifeEventDefinitionRow, { where: { key, version } });
  }

  findDraft(
    key: string,
    manager: EntityManager = this.dataSource.manager,
  ): Promise<LifeEventDefinitionRow | null> {
    return manager.findOne(LifeEventDefinitionRow, { where: { key, status: 'draft' } });
  }

  /** The published (not deprecated) versions: the ones new cases may start on. */
  listPublished(
    manager: EntityManager = this.dataSource.manager,
  ): Promise<LifeEventDefinitionRow[]> {
    return manager.find(LifeEventDefinitionRow, {
      where: { status: 'published' },
      order: { key: 'ASC', version: 'DESC' },
    });
  }

  async findByChecksum(
    manager: EntityManager,
    key: string,
    checksum: string,
  ): Promise<LifeEventDefinitionRow | null> {
    return manager.findOne(LifeEventDefinitionRow, { where: { key, checksum } });
  }

  private async highestVersion(
    manager: EntityManager,
    key: string,
    includeDrafts: boolean,
  ): Promise<number> {
    const rows = await manager.query<Array<{ max: number | null }>>(
      `SELECT max(version) AS max FROM life_event_definitions WHERE key = $1 ${includeDrafts ? '' : "AND status <> 'draft'"}`,
      [key],
    );
    return rows[0]?.max ?? 0;
  }

  async createDraft(
    manager: EntityManager,
    body: LifeEventDefinition,
    origin: Origin,
    by: string,
  ): Promise<LifeEventDefinitionRow> {
    const version = (await this.highestVersion(manager, body.key, true)) + 1;
    const now = new Date();
    try {
      return await manager.save(
        manager.create(LifeEventDefinitionRow, {
          key: body.key,
          version,
          status: 'draft',
          body: { ...body, version },
          checksum: null,
          origin,
          createdAt: now,
          createdBy: by,
          updatedAt: now,
          publishedAt: null,
          publishedBy: null,
          deprecatedAt: null,
          deprecatedBy: null,
        }),
      );
    } catch (error) {
      if (isUniqueViolation(error)) {
        throw new DomainError(
          'conflict',
          'draft-exists',
          `Life event ${body.key} already has a draft: edit or discard it.`,
        );
      }
      throw error;
    }
  }

  async replaceDraft(
    manager: EntityManager,
    draft: LifeEventDefinitionRow,
    body: LifeEventDefinition,
  ): Promise<LifeEventDefinitionRow> {
    draft.body = { ...body, version: draft.version };
    draft.updatedAt = new Date();
    return manager.save(draft);
  }

  async deleteDraft(manager: EntityManager, draft: LifeEventDefinitionRow): Promise<void> {
    await manager.delete(LifeEventDefinitionRow, { id: draft.id, status: 'draft' });
  }

  /**
   * Publishes a draft under the next version number after every published one (a draft opened
   * before another version was published moves up), with the checksum of its final body.
   */
  async publishDraft(
    manager: EntityManager,
    draft: LifeEventDefinitionRow,
    body: (version: number) => LifeEventDefinition,
    checksum: (definition: LifeEventDefinition) => string,
    by: string,
  ): Promise<LifeEventDefinitionRow> {
    const version = (await this.highestVersion(manager, draft.key, false)) + 1;
    const final = body(version);
    const now = new Date();
    draft.version = version;
    draft.body = final;
    draft.checksum = checksum(final);
    draft.status = 'published';
    draft.updatedAt = now;
    draft.publishedAt = now;
    draft.publishedBy = by;
    return manager.save(draft);
  }

  async deprecate(
    manager: EntityManager,
    row: LifeEventDefinitionRow,
    by: string,
  ): Promise<LifeEventDefinitionRow> {
    row.status = 'deprecated';
    row.deprecatedAt = new Date();
    row.deprecatedBy = by;
    row.updatedAt = row.deprecatedAt;
    return manager.save(row);
  }
}
