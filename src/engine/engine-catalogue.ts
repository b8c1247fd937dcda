import { Injectable } from '@nestjs/common';
import { createFactValidator, type FactValidator } from '#facts';
import { withDefaults, type Catalogue, type DefinitionWithDefaults } from '#workflow';
import type { LifeEventDefinitionRow } from '../definitions/definition.entities.js';
import { DefinitionsRepository } from '../definitions/definitions.repository.js';

const CATALOGUE_TTL_MS = 5_000;

interface CachedCatalogue {
  at: number;
  version: string;
  catalogue: Catalogue;
  validator: FactValidator;
}

/**
 * What the engine decides with besides a case, read from Postgres and kept: the catalogue and
 * its compiled value validator, the published definitions, and the current version of each life
 * event. Published versions never change, so each is read once per process; the rest is asked
 * again at most every few seconds (an edit or a publication takes effect within them).
 */
@Injectable()
export class EngineCatalogue {
  private readonly definitions = new Map<string, DefinitionWithDefaults>();
  private cached: CachedCatalogue | undefined;
  private published: { at: number; definitions: DefinitionWithDefaults[] } | undefined;
  private readonly current = new Map<string, { at: number; row: LifeEventDefinitionRow | null }>();
  /** The reads under way, by what they read: every caller that finds it stale waits for one. */
  private readonly reading = new Map<string, Promise<unknown>>();

  constructor(private readonly repository: DefinitionsRepository) {}

  /**
   * Runs `read` unless a read of `what` is under way, in which case its outcome is shared: a
   * burst of requests that find a kept value stale at once makes one read, not one each.
   */
  private once<T>(what: string, read: () => Promise<T>): Promise<T> {
    let pending = this.reading.get(what) as Promise<T> | undefined;
    if (!pending) {
      pending = read().finally(() => this.reading.delete(what));
      this.reading.set(what, pending);
    }
    return pending;
  }

  /**
   * The catalogue and its value validator. Whether it changed is asked at most every few
   * seconds (one small query); it is loaded again, and its schemas compiled, only when it did.
   */
  async catalogue(): Promise<{ catalogue: Catalogue; validator: FactValidator }> {
    const cached = this.cached;
    if (cached && Date.now() - cached.at <= CATALOGUE_TTL_MS) return cached;
    return this.once('catalogue', async () => {
      const version = await this.repository.catalogueVersion();
      if (cached && cached.version === version) {
        cached.at = Date.now();
        return cached;
      }
      const catalogue = await this.repository.loadCatalogue();
      this.cached = {
        at: Date.now(),
        version,
        catalogue,
        validator: createFactValidator([...catalogue.facts.values()]),
      };
      return this.cached;
    });
  }

  /** The version a new case of a life event starts on (null: none is published). */
  async currentVersion(key: string): Promise<LifeEventDefinitionRow | null> {
    const cached = this.current.get(key);
    if (cached && Date.now() - cached.at <= CATALOGUE_TTL_MS) return cached.row;
    return this.once(`current ${key}`, async () => {
      const row = await this.repository.findCurrent(key);
      this.current.set(key, { at: Date.now(), row });
      if (row && !this.definitions.has(row.id)) {
        this.definitions.set(row.id, withDefaults(row.body));
        // A version new to this process may use catalogue entries added just before it was
        // published: ask again whether the catalogue changed, rather than trust the kept one.
        if (this.cached) this.cached.at = 0;
        this.published = undefined;
      }
      return row;
    });
  }

  /** A published version, by its id. */
  async definition(definitionId: string): Promise<DefinitionWithDefaults> {
    const kept = this.definitions.get(definitionId);
    if (kept) return kept;
    return this.once(`definition ${definitionId}`, async () => {
      const row = await this.repository.findById(definitionId);
      if (!row) throw new Error(`definition ${definitionId} is missing`);
      const definition = withDefaults(row.body);
      this.definitions.set(definitionId, definition);
      return definition;
    });
  }

  /** The current published version of every life event. */
  async publishedDefinitions(): Promise<DefinitionWithDefaults[]> {
    if (this.published && Date.now() - this.published.at <= CATALOGUE_TTL_MS) {
      return this.published.definitions;
    }
    return this.once('published', async () => {
      const rows = await this.repository.listPublished();
      const current = new Map<string, DefinitionWithDefaults>();
      for (const row of rows) {
        if (!current.has(row.key)) current.set(row.key, withDefaults(row.body));
      }
      this.published = { at: Date.now(), definitions: [...current.values()] };
      return this.published.definitions;
    });
  }
}
