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

  /** The agencies holding at least one standing (not revoked) adapter credential. */
  async agenciesWithCredential(
    manager: EntityManager = this.dataSource.manager,
  ): Promise<Set<string>> {
    const rows: Array<{ agency: string }> = await manager.query(
      'SELECT DISTINCT agency FROM agency_credentials WHERE revoked_at IS NULL',
    );
    return new Set(rows.map((row) => row.agency));
  }

  /** Serialises writers of the catalogue and definitions for the rest of the transaction. */
  async lockCatalogue(manager: EntityManager): Promise<void> {
    await manager.query('SELECT pg_advisory_xact_lock($1)', ['7359420271002']);
  }

  /**
   * A fingerprint of the catalogue that changes with every edit (each edit bumps an entry's
   * revision and its time): cheap to ask often, so caches reload only what changed.
   */
  async catalogueVersion(): Promise<string> {
    const rows = await this.dataSource.query<Array<{ version: string }>>(
      `SELECT count(*)::text || ':' || coalesce(sum(revision), 0)::text || ':' ||
              coalesce(max(updated_at)::text, '') AS version FROM catalogue_entries`,
    );
    return rows[0]?.version ?? '';
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

  findVersion(
    key: string,
    version: number,
    manager: EntityManager = this.dataSource.manager,
  ): Promise<LifeEventDefinitionRow | null> {
    return manager.findOne(LifeEventDefinitionRow, { where: { key, version } });
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

  /** The newest published (not deprecated) version: the one a new case starts on. */
  findCurrent(
    key: string,
    manager: EntityManager = this.dataSource.manager,
  ): Promise<LifeEventDefinitionRow | null> {
    return manager.findOne(LifeEventDefinitionRow, {
      where: { key, status: 'published' },
      order: { version: 'DESC' },
    });
  }

  findById(
    id: string,
    manager: EntityManager = this.dataSource.manager,
  ): Promise<LifeEventDefinitionRow | null> {
    return manager.findOne(LifeEventDefinitionRow, { where: { id } });
  }

  /**
   * The versions cases depend on: every published one, and each deprecated one that still has a
   * case that has not finished.
   */
  listInUse(manager: EntityManager = this.dataSource.manager): Promise<LifeEventDefinitionRow[]> {
    return manager
      .createQueryBuilder(LifeEventDefinitionRow, 'd')
      .where(
        `d.status = 'published' OR (d.status = 'deprecated' AND EXISTS (
           SELECT 1 FROM cases c WHERE c.definition_id = d.id AND c.status NOT IN ('completed', 'failed', 'cancelled')))`,
      )
      .orderBy('d.key', 'ASC')
      .addOrderBy('d.version', 'DESC')
      .getMany();
  }

  /** Whether this exact content was ever applied to the entry (a seed must only move forward). */
  async hasRevision(
    manager: EntityManager,
    kind: CatalogueKind,
    key: string,
    checksum: string,
  ): Promise<boolean> {
    return (
      (await manager.count(CatalogueRevisionRow, { where: { kind, entryKey: key, checksum } })) > 0
    );
  }

  /** Deprecates a published version atomically; returns null when it was not published. */
  async deprecateVersion(
    manager: EntityManager,
    key: string,
    version: number,
    by: string,
  ): Promise<LifeEventDefinitionRow | null> {
    const result = await manager
      .createQueryBuilder()
      .update(LifeEventDefinitionRow)
      .set({
        status: 'deprecated',
        deprecatedAt: () => 'now()',
        deprecatedBy: by,
        updatedAt: () => 'now()',
      })
      .where("key = :key AND version = :version AND status = 'published'", { key, version })
      .execute();
    return (result.affected ?? 0) > 0
      ? manager.findOne(LifeEventDefinitionRow, { where: { key, version } })
      : null;
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

  /** Deletes the draft; false when it is no longer a draft (published meanwhile). */
  async deleteDraft(manager: EntityManager, draft: LifeEventDefinitionRow): Promise<boolean> {
    const result = await manager.delete(LifeEventDefinitionRow, { id: draft.id, status: 'draft' });
    return (result.affected ?? 0) > 0;
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
}
