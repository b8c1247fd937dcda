import { decodeCursor as decodePosition } from '../common/cursor.js';
import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import {
  IsIn,
  IsISO8601,
  IsOptional,
  IsString,
  Matches,
  MaxLength,
  MinLength,
} from 'class-validator';
import { STEP_STATES } from '#workflow';
import { PageQueryDto } from '../common/page-query.dto.js';
import {
  CASE_STATUSES,
  type CaseRecord,
  type CaseStatus,
  type StepRunRecord,
} from './engine.types.js';

export class CaseSearchQueryDto extends PageQueryDto {
  @ApiPropertyOptional({ enum: CASE_STATUSES })
  @IsOptional()
  @IsIn(CASE_STATUSES)
  status?: CaseStatus;

  @ApiPropertyOptional({ example: 'start-business' })
  @IsOptional()
  @Matches(/^[a-z][a-z0-9-]{1,62}$/, { message: 'lifeEvent must be a life-event key' })
  lifeEvent?: string;

  @ApiPropertyOptional({
    example: 'skatteverket',
    description:
      'Cases with a step at this agency (for an agency of many, such as kommun, at any of them, or at one: kommun-0180)',
  })
  @IsOptional()
  @Matches(/^[a-z][a-z0-9-]{1,31}$/, { message: 'agency must be an agency code' })
  agency?: string;

  @ApiPropertyOptional({ description: 'Created at or after (ISO 8601)' })
  @IsOptional()
  @IsISO8601({ strict: true })
  from?: string;

  @ApiPropertyOptional({ description: 'Created before (ISO 8601)' })
  @IsOptional()
  @IsISO8601({ strict: true })
  to?: string;
}

export class CancelCaseDto {
  @ApiProperty({ description: 'Why, recorded in the case history and told to the agencies.' })
  @IsString()
  @MinLength(3)
  @MaxLength(500)
  reason!: string;
}

export class CaseSummaryDto {
  @ApiProperty() id!: string;
  @ApiProperty({ description: 'Pseudonymous subject id' }) subjectId!: string;
  @ApiProperty() lifeEvent!: string;
  @ApiProperty() version!: number;
  @ApiProperty({ enum: CASE_STATUSES }) status!: CaseStatus;
  @ApiProperty() createdAt!: string;
  @ApiProperty() updatedAt!: string;
  @ApiPropertyOptional({ nullable: true }) submittedAt!: string | null;
  @ApiPropertyOptional({ nullable: true }) finishedAt!: string | null;
}

export class CasePageDto {
  @ApiProperty({ type: [CaseSummaryDto] }) cases!: CaseSummaryDto[];
  @ApiPropertyOptional({ nullable: true, description: 'Pass as `cursor` for the next page' })
  next!: string | null;
}

export class StepRunDto {
  @ApiProperty() id!: string;
  @ApiProperty() stepId!: string;
  @ApiProperty() agency!: string;
  @ApiProperty() action!: string;
  @ApiProperty() kind!: string;
  @ApiProperty({ enum: STEP_STATES }) state!: string;
  @ApiProperty() attempt!: number;
  @ApiProperty() maxAttempts!: number;
  @ApiPropertyOptional({ nullable: true }) agencyReference!: string | null;
  @ApiPropertyOptional({ nullable: true }) expectedDecisionAt!: string | null;
  @ApiPropertyOptional({ nullable: true }) deadlineAt!: string | null;
  @ApiProperty() overdue!: boolean;
  @ApiPropertyOptional({ nullable: true }) lastError!: string | null;
  @ApiProperty() updatedAt!: string;
}

export class CaseEventDto {
  @ApiProperty() seq!: number;
  @ApiProperty() type!: string;
  @ApiPropertyOptional({ nullable: true }) stepId!: string | null;
  @ApiProperty({ type: 'object', additionalProperties: true }) data!: unknown;
  @ApiProperty() at!: string;
}

export class CaseDetailDto extends CaseSummaryDto {
  @ApiProperty({ type: [StepRunDto] }) steps!: StepRunDto[];
  @ApiProperty({ type: [CaseEventDto] }) history!: CaseEventDto[];
}

const iso = (d: Date | null): string | null => (d ? d.toISOString() : null);

export function caseSummary(c: CaseRecord): CaseSummaryDto {
  return {
    id: c.id,
    subjectId: c.subjectId,
    lifeEvent: c.lifeEventKey,
    version: c.definitionVersion,
    status: c.status,
    createdAt: c.createdAt.toISOString(),
    updatedAt: c.updatedAt.toISOString(),
    submittedAt: iso(c.submittedAt),
    finishedAt: iso(c.finishedAt),
  };
}

export function stepRunView(r: StepRunRecord): StepRunDto {
  return {
    id: r.id,
    stepId: r.stepId,
    agency: r.agency,
    action: r.action,
    kind: r.kind,
    state: r.state,
    attempt: r.attempt,
    maxAttempts: r.maxAttempts,
    agencyReference: r.agencyReference,
    expectedDecisionAt: iso(r.expectedDecisionAt),
    deadlineAt: iso(r.deadlineAt),
    overdue: r.overdue,
    lastError: r.lastError,
    updatedAt: r.updatedAt.toISOString(),
  };
}

export function encodeCursor(c: CaseRecord): string {
  return Buffer.from(`${c.createdAt.toISOString()}|${c.id}`).toString('base64url');
}

export function decodeCursor(cursor: string): { createdAt: Date; id: string } | undefined {
  // The same cursor form and checks as every other paged route (src/common/cursor.ts).
  const position = decodePosition(cursor, /^[0-9a-f-]{36}$/);
  return position && { createdAt: position.at, id: position.id };
}
