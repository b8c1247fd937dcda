import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import type { Diagnostic, LifeEventDefinition } from '#workflow';
import type {
  CatalogueEntryRow,
  CatalogueRevisionRow,
  LifeEventDefinitionRow,
} from './definition.entities.js';

export class DiagnosticDto {
  @ApiProperty({ enum: ['error', 'warning'] }) severity!: 'error' | 'warning';
  @ApiProperty({ example: 'need-unavailable' }) code!: string;
  @ApiProperty({ example: '/steps/2/needs/0', description: 'JSON pointer into the definition' })
  path!: string;
  @ApiProperty() message!: string;
}

export class ValidationResultDto {
  @ApiProperty({ description: 'True when there are no errors (warnings allowed).' })
  valid!: boolean;
  @ApiProperty({ type: [DiagnosticDto] }) diagnostics!: DiagnosticDto[];
}

export class LifeEventVersionDto {
  @ApiProperty({ example: 'start-business' }) key!: string;
  @ApiProperty() version!: number;
  @ApiProperty({ enum: ['draft', 'published', 'deprecated'] }) status!: string;
  @ApiPropertyOptional({
    description: 'sha256 of the canonical content; set when published',
    nullable: true,
  })
  checksum!: string | null;
  @ApiProperty({ enum: ['seed', 'admin'] }) origin!: string;
  @ApiProperty() createdAt!: string;
  @ApiProperty() createdBy!: string;
  @ApiPropertyOptional({ nullable: true }) publishedAt!: string | null;
  @ApiPropertyOptional({ nullable: true }) publishedBy!: string | null;
  @ApiPropertyOptional({ nullable: true }) deprecatedAt!: string | null;
  @ApiPropertyOptional({ nullable: true }) deprecatedBy!: string | null;
}

export class LifeEventDocumentDto extends LifeEventVersionDto {
  @ApiProperty({
    type: 'object',
    additionalProperties: true,
    description: 'The definition (docs/schemas/life-event.schema.json)',
  })
  definition!: LifeEventDefinition;
}

export class DraftDto extends LifeEventDocumentDto {
  @ApiProperty({ type: [DiagnosticDto] }) diagnostics!: DiagnosticDto[];
}

export class LifeEventSummaryDto {
  @ApiProperty() key!: string;
  @ApiProperty({ type: 'object', properties: { sv: { type: 'string' }, en: { type: 'string' } } })
  title!: { sv: string; en: string };
  @ApiPropertyOptional({
    description: 'The newest published (not deprecated) version',
    nullable: true,
  })
  currentVersion!: number | null;
  @ApiProperty({ description: 'Whether an administrator has a draft open' }) hasDraft!: boolean;
  @ApiProperty({ type: [LifeEventVersionDto] }) versions!: LifeEventVersionDto[];
}

export class CatalogueEntryDto {
  @ApiProperty({ type: 'object', additionalProperties: true }) entry!: object;
  @ApiProperty() revision!: number;
  @ApiProperty() checksum!: string;
  @ApiProperty({ enum: ['seed', 'admin'] }) origin!: string;
  @ApiProperty() updatedAt!: string;
  @ApiProperty() updatedBy!: string;
}

export class CatalogueRevisionDto {
  @ApiProperty() revision!: number;
  @ApiProperty({ type: 'object', additionalProperties: true }) entry!: object;
  @ApiProperty() checksum!: string;
  @ApiProperty() changedAt!: string;
  @ApiProperty() changedBy!: string;
}

const iso = (d: Date | null): string | null => (d ? d.toISOString() : null);

export function versionView(row: LifeEventDefinitionRow): LifeEventVersionDto {
  return {
    key: row.key,
    version: row.version,
    status: row.status,
    checksum: row.checksum,
    origin: row.origin,
    createdAt: row.createdAt.toISOString(),
    createdBy: row.createdBy,
    publishedAt: iso(row.publishedAt),
    publishedBy: row.publishedBy,
    deprecatedAt: iso(row.deprecatedAt),
    deprecatedBy: row.deprecatedBy,
  };
}

export function documentView(row: LifeEventDefinitionRow): LifeEventDocumentDto {
  return Object.assign(versionView(row), { definition: row.body });
}

export function draftView(row: LifeEventDefinitionRow, diagnostics: Diagnostic[]): DraftDto {
  return Object.assign(documentView(row), { diagnostics });
}

export function entryView(row: CatalogueEntryRow): CatalogueEntryDto {
  return {
    entry: row.body,
    revision: row.revision,
    checksum: row.checksum,
    origin: row.origin,
    updatedAt: row.updatedAt.toISOString(),
    updatedBy: row.updatedBy,
  };
}

export function revisionView(row: CatalogueRevisionRow): CatalogueRevisionDto {
  return {
    revision: row.revision,
    entry: row.body,
    checksum: row.checksum,
    changedAt: row.changedAt.toISOString(),
    changedBy: row.changedBy,
  };
}
