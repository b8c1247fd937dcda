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
  private loading: Promise<CachedCatalogue> | undefined;
  private published: { at: number; definitions: DefinitionWithDefaults[] } | undefined;
  private publishedLoading: Promise<DefinitionWithDefaults[]> | undefined;
  private readonly current = new Map<string, { at: number; row: LifeEventDefinitionRow | null }>();
  private readonly currentLoading = new Map<string, Promise<LifeEventDefinitionRow | null>>();

  constructor(private readonly repository: DefinitionsRepository) {}

  /**
   * The catalogue and its value validator. Whether it changed is asked at most every few
   * seconds (one small query); it is loaded again, and its schemas compiled, only when it did.
   */
  async catalogue(): Promise<{ catalogue: Catalogue; validator: FactValidator }> {
    const cached = this.cached;
    if (cached && Date.now() - cached.at <= CATALOGUE_TTL_MS) return cached;
    this.loading ??= (async () => {
      try {
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
      } finally {
        this.loading = undefined;
      }
    })();
    return this.loading;
  }

  /** The version a new case of a life event starts on (null: none is published). */
  async currentVersion(key: string): Promise<LifeEventDefinitionRow | null> {
    const cached = this.current.get(key);
    if (cached && Date.now() - cached.at <= CATALOGUE_TTL_MS) return cached.row;
    // One read for all the callers that find it stale at once (a burst of new cases would
    // otherwise read the whole definition once each, every few seconds).
    let loading = this.currentLoading.get(key);
    if (!loading) {
      loading = (async () => {
        try {
          const row = await this.repository.findCurrent(key);
          this.current.set(key, { at: Date.now(), row });
          if (row && !this.definitions.has(row.id)) {
            this.definitions.set(row.id, withDefaults(row.body));
          }
          return row;
        } finally {
          this.currentLoading.delete(key);
        }
      })();
      this.currentLoading.set(key, loading);
    }
    return loading;
  }

  /** A published version, by its id. */
  async definition(definitionId: string): Promise<DefinitionWithDefaults> {
    let definition = this.definitions.get(definitionId);
    if (!definition) {
      const row = await this.repository.findById(definitionId);
      if (!row) throw new Error(`definition ${definitionId} is missing`);
      definition = withDefaults(row.body);
      this.definitions.set(definitionId, definition);
    }
    return definition;
  }

  /** The current published version of every life event. */
  async publishedDefinitions(): Promise<DefinitionWithDefaults[]> {
    if (this.published && Date.now() - this.published.at <= CATALOGUE_TTL_MS) {
      return this.published.definitions;
    }
    // As currentVersion: one read for the callers that find the list stale at once.
    this.publishedLoading ??= (async () => {
      try {
        const rows = await this.repository.listPublished();
        const current = new Map<string, DefinitionWithDefaults>();
        for (const row of rows) {
          if (!current.has(row.key)) current.set(row.key, withDefaults(row.body));
        }
        this.published = { at: Date.now(), definitions: [...current.values()] };
        return this.published.definitions;
      } finally {
        this.publishedLoading = undefined;
      }
    })();
    return this.publishedLoading;
  }
}
