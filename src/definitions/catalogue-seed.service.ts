import { Injectable, Logger, type OnApplicationBootstrap } from '@nestjs/common';
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { checkCatalogue, parseAgencies, parseFactCatalogue } from '#facts';
import {
  validate,
  withDefaults,
  type Agency,
  type FactType,
  type LifeEventDefinition,
} from '#workflow';
import { DefinitionsRepository } from './definitions.repository.js';
import { breakingChanges, entryChecksum } from './catalogue-rules.js';
import { contentChecksum, problemsOf } from './definitions.service.js';

/** `config/` of this checkout or image: beside the package.json above this file (in src/ or dist/src/), whatever the cwd. */
function packageRoot(from: string): string {
  let dir = from;
  while (!existsSync(path.join(dir, 'package.json'))) {
    const parent = path.dirname(dir);
    if (parent === dir) return process.cwd();
    dir = parent;
  }
  return dir;
}
export const DEFAULT_SEED_DIR = path.join(
  packageRoot(path.dirname(fileURLToPath(import.meta.url))),
  'config',
);

export interface SeedReport {
  factTypes: { added: string[]; updated: string[]; keptAdminEdits: string[] };
  agencies: { added: string[]; updated: string[]; keptAdminEdits: string[] };
  /** deferred: the seed changed but an administrator has a draft open for that life event. */
  lifeEvents: { published: string[]; unchanged: string[]; deferred: string[] };
}

export class SeedError extends Error {
  constructor(
    message: string,
    readonly problems: string[],
  ) {
    super(`${message}:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'SeedError';
  }
}

export interface SeedFiles {
  facts: FactType[];
  agencies: Agency[];
  lifeEvents: Array<{ file: string; definition: LifeEventDefinition }>;
}

/** Reads and cross-checks facts.yaml and agencies.yaml; the problems name file and path. */
export async function readCatalogueFiles(
  dir: string,
): Promise<{ facts: FactType[]; agencies: Agency[]; problems: string[] }> {
  const factsFile = path.join(dir, 'facts.yaml');
  const agenciesFile = path.join(dir, 'agencies.yaml');
  const facts = parseFactCatalogue(await readFile(factsFile, 'utf8'));
  const agencies = parseAgencies(await readFile(agenciesFile, 'utf8'));
  return {
    facts: facts.facts,
    agencies: agencies.agencies,
    problems: [
      ...facts.problems.map((p) => `${factsFile}:${p.path}: ${p.message}`),
      ...agencies.problems.map((p) => `${agenciesFile}:${p.path}: ${p.message}`),
      ...checkCatalogue(facts.facts, agencies.agencies).map(
        (p) => `${dir}:${p.path}: ${p.message}`,
      ),
    ],
  };
}

/** Reads and checks the seed files; throws naming every problem with its file and path. */
export async function readSeedFiles(dir: string): Promise<SeedFiles> {
  const { facts, agencies, problems } = await readCatalogueFiles(dir);
  const lifeEventDir = path.join(dir, 'life-events');
  const files = (await readdir(lifeEventDir)).filter((f) => /\.(ya?ml|json)$/.test(f)).sort();
  const lifeEvents: SeedFiles['lifeEvents'] = [];
  for (const name of files) {
    const file = path.join(lifeEventDir, name);
    try {
      lifeEvents.push({
        file,
        definition: parseYaml(await readFile(file, 'utf8')) as LifeEventDefinition,
      });
    } catch (error) {
      problems.push(
        `${file}: not valid YAML: ${error instanceof Error ? error.message : String(error)}`,
      );
    }
  }
  if (problems.length > 0) throw new SeedError('The seed files have problems', problems);
  return { facts, agencies, lifeEvents };
}

/**
 * Loads config/ into the database at start-up, idempotently and under the catalogue lock, so
 * replicas starting together do it once: new entries are added; an entry whose seed changed is
 * updated unless an administrator has edited it since (their edit wins, and is logged); a life
 * event whose content is already published is left alone, a changed one is published as a new
 * version (the old one stays for the cases running on it). A seed that does not validate stops
 * start-up: leo must never run on a definition that could ask twice or wait forever.
 */
@Injectable()
export class CatalogueSeedService implements OnApplicationBootstrap {
  private readonly logger = new Logger(CatalogueSeedService.name);
  private seedDir = DEFAULT_SEED_DIR;

  constructor(private readonly repository: DefinitionsRepository) {}

  private seeding: Promise<void> | undefined;

  async onApplicationBootstrap(): Promise<void> {
    await this.seeded();
  }

  /**
   * The start-up seed, run once per process whoever asks first (the mock agencies wait for it
   * before they read which agencies they serve).
   */
  seeded(): Promise<void> {
    this.seeding ??= this.seedAtStart();
    return this.seeding;
  }

  private async seedAtStart(): Promise<void> {
    const report = await this.seed(this.seedDir);
    const changed =
      report.factTypes.added.length +
      report.factTypes.updated.length +
      report.agencies.added.length +
      report.agencies.updated.length +
      report.lifeEvents.published.length;
    if (changed > 0) this.logger.log({ report }, 'catalogue seeded');
    for (const key of [...report.factTypes.keptAdminEdits, ...report.agencies.keptAdminEdits]) {
      this.logger.warn(
        { entry: key },
        'seed changed for an entry an administrator has edited; kept the edit',
      );
    }
    for (const key of report.lifeEvents.deferred) {
      this.logger.warn(
        { lifeEvent: key },
        'seed changed for a life event with an open draft; publish it later',
      );
    }
  }

  async seed(dir: string): Promise<SeedReport> {
    const files = await readSeedFiles(dir);
    return this.repository.transaction(async (manager) => {
      await this.repository.lockCatalogue(manager);
      const report: SeedReport = {
        factTypes: { added: [], updated: [], keptAdminEdits: [] },
        agencies: { added: [], updated: [], keptAdminEdits: [] },
        lifeEvents: { published: [], unchanged: [], deferred: [] },
      };

      const entries = [
        ...files.agencies.map((body) => ({
          kind: 'agency' as const,
          key: body.code,
          body,
          report: report.agencies,
        })),
        ...files.facts.map((body) => ({
          kind: 'fact-type' as const,
          key: body.key,
          body,
          report: report.factTypes,
        })),
      ];
      for (const entry of entries) {
        const checksum = entryChecksum(entry.body);
        const existing = await this.repository.findEntry(entry.kind, entry.key, manager);
        if (existing?.seedChecksum === checksum) continue;
        // An older image restarting during a rolling deployment must not roll the entry back.
        if (
          existing &&
          (await this.repository.hasRevision(manager, entry.kind, entry.key, checksum))
        )
          continue;
        if (existing?.origin === 'admin') {
          entry.report.keptAdminEdits.push(entry.key);
          continue;
        }
        const change = { checksum, origin: 'seed' as const, seedChecksum: checksum, by: 'seed' };
        if (entry.kind === 'agency')
          await this.repository.saveEntry(manager, 'agency', entry.key, {
            ...change,
            body: entry.body,
          });
        else
          await this.repository.saveEntry(manager, 'fact-type', entry.key, {
            ...change,
            body: entry.body,
          });
        (existing ? entry.report.updated : entry.report.added).push(entry.key);
      }

      const catalogue = await this.repository.loadCatalogue(manager);
      // A seed may not strand a version that cases depend on, any more than an administrator may.
      const broken = breakingChanges(catalogue, await this.repository.listInUse(manager));
      if (broken.length > 0) {
        throw new SeedError(
          'The seeded catalogue would make life events in use invalid',
          broken.map((p) => `${p.path}: ${p.code ?? 'error'}: ${p.reason}`),
        );
      }
      // Only what is not yet published must validate: a version already published (perhaps since
      // deprecated) was validated when it was, against the catalogue of its time.
      const fresh: typeof files.lifeEvents = [];
      for (const entry of files.lifeEvents) {
        const known = await this.repository.findByChecksum(
          manager,
          entry.definition.key,
          contentChecksum(entry.definition),
        );
        if (known) report.lifeEvents.unchanged.push(entry.definition.key);
        else fresh.push(entry);
      }
      const problems: string[] = [];
      for (const { file, definition } of fresh) {
        const errors = validate(definition, catalogue).filter((d) => d.severity === 'error');
        problems.push(
          ...problemsOf(errors).map((p) => `${file}:${p.path}: ${p.code ?? 'error'}: ${p.reason}`),
        );
      }
      if (problems.length > 0) throw new SeedError('Seeded life events do not validate', problems);

      for (const { definition } of fresh) {
        const open = await this.repository.findDraft(definition.key, manager);
        if (open) {
          // An administrator is editing this life event: their draft is not overwritten, and the
          // seed's version waits for the next start after they publish or discard it.
          report.lifeEvents.deferred.push(definition.key);
          continue;
        }
        const draft = await this.repository.createDraft(
          manager,
          withDefaults(definition),
          'seed',
          'seed',
        );
        const row = await this.repository.publishDraft(
          manager,
          draft,
          (version) => ({ ...withDefaults(definition), version }),
          contentChecksum,
          'seed',
        );
        report.lifeEvents.published.push(`${row.key}@${row.version}`);
      }
      return report;
    });
  }
}
