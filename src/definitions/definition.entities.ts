import { Column, Entity, PrimaryColumn, PrimaryGeneratedColumn } from 'typeorm';
import type { Agency, FactType, LifeEventDefinition } from '#workflow';

export type Origin = 'seed' | 'admin';
export type DefinitionStatus = 'draft' | 'published' | 'deprecated';
export type CatalogueKind = 'fact-type' | 'agency';

/** The body type stored for each kind of catalogue entry. */
export interface CatalogueBodies {
  'fact-type': FactType;
  agency: Agency;
}

/** One fact type or agency, kept whole as one JSON document. */
@Entity({ name: 'catalogue_entries' })
export class CatalogueEntryRow<K extends CatalogueKind = CatalogueKind> {
  @PrimaryColumn({ type: 'text' }) kind!: K;
  /** The fact key or the agency code. */
  @PrimaryColumn({ type: 'text' }) key!: string;
  @Column({ type: 'jsonb' }) body!: CatalogueBodies[K];
  @Column({ type: 'text' }) checksum!: string;
  @Column({ type: 'integer' }) revision!: number;
  @Column({ type: 'text' }) origin!: Origin;
  /** Checksum of the seed entry last applied to this row (kept when an administrator edits it). */
  @Column({ type: 'text', name: 'seed_checksum', nullable: true }) seedChecksum!: string | null;
  @Column({ type: 'timestamptz', name: 'updated_at' }) updatedAt!: Date;
  @Column({ type: 'text', name: 'updated_by' }) updatedBy!: string;
}

@Entity({ name: 'catalogue_revisions' })
export class CatalogueRevisionRow {
  @PrimaryGeneratedColumn('identity', { type: 'bigint', generatedIdentity: 'ALWAYS' }) id!: string;
  @Column({ type: 'text' }) kind!: CatalogueKind;
  @Column({ type: 'text', name: 'entry_key' }) entryKey!: string;
  @Column({ type: 'integer' }) revision!: number;
  @Column({ type: 'jsonb' }) body!: FactType | Agency;
  @Column({ type: 'text' }) checksum!: string;
  @Column({ type: 'timestamptz', name: 'changed_at' }) changedAt!: Date;
  @Column({ type: 'text', name: 'changed_by' }) changedBy!: string;
}

@Entity({ name: 'life_event_definitions' })
export class LifeEventDefinitionRow {
  @PrimaryGeneratedColumn('uuid') id!: string;
  @Column({ type: 'text' }) key!: string;
  @Column({ type: 'integer' }) version!: number;
  @Column({ type: 'text' }) status!: DefinitionStatus;
  /** The definition as authored (a draft may not validate yet). */
  @Column({ type: 'jsonb' }) body!: LifeEventDefinition;
  @Column({ type: 'text', nullable: true }) checksum!: string | null;
  @Column({ type: 'text' }) origin!: Origin;
  @Column({ type: 'timestamptz', name: 'created_at' }) createdAt!: Date;
  @Column({ type: 'text', name: 'created_by' }) createdBy!: string;
  @Column({ type: 'timestamptz', name: 'updated_at' }) updatedAt!: Date;
  @Column({ type: 'timestamptz', name: 'published_at', nullable: true }) publishedAt!: Date | null;
  @Column({ type: 'text', name: 'published_by', nullable: true }) publishedBy!: string | null;
  @Column({ type: 'timestamptz', name: 'deprecated_at', nullable: true })
  deprecatedAt!: Date | null;
  @Column({ type: 'text', name: 'deprecated_by', nullable: true }) deprecatedBy!: string | null;
}

export const DEFINITION_ENTITIES = [
  CatalogueEntryRow,
  CatalogueRevisionRow,
  LifeEventDefinitionRow,
];
