import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import {
  IsIn,
  IsObject,
  IsOptional,
  IsString,
  Matches,
  MaxLength,
  MinLength,
} from 'class-validator';
import type { FactValue } from '#agency-contract';
import { PageQueryDto } from '../common/page-query.dto.js';
import { DEFINITION_KEY_PATTERN, STEP_STATES, type LocalisedText } from '#workflow';
import {
  CASE_STATUSES,
  FACT_RECORD_SOURCES,
  MESSAGE_KINDS,
  type CaseStatus,
  type FactRecordSource,
  type MessageKind,
} from '../engine/engine.types.js';

export class LocalisedTextDto {
  @ApiProperty() sv!: string;
  @ApiProperty() en!: string;
}

// ---- requests ---------------------------------------------------------------------------------

export class OpenCaseDto {
  @ApiProperty({ example: 'start-business', description: 'The key of a published life event' })
  @IsString()
  @Matches(DEFINITION_KEY_PATTERN, { message: 'lifeEvent must be a life-event key' })
  lifeEvent!: string;

  @ApiPropertyOptional({
    type: 'object',
    additionalProperties: true,
    description:
      'Answers by fact key, e.g. {"business.name": "Kaffe & Kod"}. Facts known from the e-identification or provided by an agency are not answers.',
  })
  @IsOptional()
  @IsObject()
  answers?: Record<string, unknown>;
}

export class AnswersDto {
  @ApiProperty({ type: 'object', additionalProperties: true, description: 'Answers by fact key' })
  @IsObject()
  answers!: Record<string, unknown>;
}

export class SubmitCaseDto {
  @ApiProperty({ description: 'The `checksum` of the preview the citizen consents to' })
  @IsString()
  @MinLength(1)
  @MaxLength(100)
  previewChecksum!: string;
}

export class CitizenCancelDto {
  @ApiPropertyOptional({ description: 'Why (recorded in the case history)' })
  @IsOptional()
  @IsString()
  @MinLength(1)
  @MaxLength(500)
  reason?: string;
}

export class CompleteTaskDto {
  @ApiProperty({
    type: 'object',
    additionalProperties: true,
    description: "The facts the task produces, by key (see the step's `task.facts`)",
  })
  @IsObject()
  facts!: Record<string, FactValue>;
}

export class DisclosureQueryDto extends PageQueryDto {
  @ApiPropertyOptional({ description: 'Only disclosures of this case' })
  @IsOptional()
  @Matches(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/, {
    message: 'caseId must be a UUID',
  })
  caseId?: string;
}

export class MessageQueryDto extends DisclosureQueryDto {
  @ApiPropertyOptional({ description: 'Only unread messages' })
  @IsOptional()
  @IsIn(['true', 'false'])
  unread?: 'true' | 'false';
}

export class FactsQueryDto {
  @ApiPropertyOptional({ description: 'Include superseded records (the full history)' })
  @IsOptional()
  @IsIn(['true', 'false'])
  history?: 'true' | 'false';
}

// ---- responses -------------------------------------------------------------------------------

export class LifeEventSummaryDto {
  @ApiProperty() key!: string;
  @ApiProperty({ type: LocalisedTextDto }) title!: LocalisedText;
  @ApiProperty({ type: LocalisedTextDto }) description!: LocalisedText;
  @ApiProperty({ type: [String], description: 'Agencies the life event involves' })
  agencies!: string[];
  @ApiProperty({
    description: 'Questions it would ask you now (before any answer changes a condition)',
  })
  questions!: number;
  @ApiProperty({ description: 'Facts it would look up from agencies instead of asking you' })
  lookups!: number;
  @ApiProperty({ description: 'Facts on file it would reuse' })
  reused!: number;
}

export class QuestionDto {
  @ApiProperty() key!: string;
  @ApiProperty({ type: LocalisedTextDto }) label!: LocalisedText;
  @ApiPropertyOptional({ type: LocalisedTextDto }) description?: LocalisedText;
  @ApiProperty({
    type: 'object',
    additionalProperties: true,
    description: 'JSON Schema of the value',
  })
  schema!: Record<string, unknown>;
}

export const FACT_STATUSES = [
  'to-ask',
  'looking-up',
  'looked-up',
  'given',
  'reused',
  'from-e-identification',
] as const;

export class FactStatusDto {
  @ApiProperty() key!: string;
  @ApiProperty({ type: LocalisedTextDto }) label!: LocalisedText;
  @ApiProperty({
    enum: FACT_STATUSES,
    description:
      'to-ask: you must answer it; looking-up / looked-up: asked of / provided by `agency`; given: you answered it in this case; reused: on file from `caseId`; from-e-identification: read from your sign-in',
  })
  status!: (typeof FACT_STATUSES)[number];
  @ApiPropertyOptional({ enum: FACT_RECORD_SOURCES }) source?: FactRecordSource;
  @ApiPropertyOptional() agency?: string;
  @ApiPropertyOptional({ description: 'The case the reused value was given or produced in' })
  caseId?: string;
  @ApiPropertyOptional() recordId?: string;
  @ApiPropertyOptional() recordedAt?: string;
}

export class ResolutionDto {
  @ApiProperty({
    enum: ['resolving', 'needs-answers', 'ready'],
    description:
      'resolving: facts are being looked up; needs-answers: answer `questions`; ready: preview and submit',
  })
  state!: 'resolving' | 'needs-answers' | 'ready';
  @ApiProperty({ type: [QuestionDto] }) questions!: QuestionDto[];
  @ApiProperty({ type: [FactStatusDto] }) facts!: FactStatusDto[];
}

export class TaskDto {
  @ApiProperty({ type: [QuestionDto], description: 'What completing the task takes' })
  facts!: QuestionDto[];
}

export class StepViewDto {
  @ApiProperty() stepId!: string;
  @ApiProperty({ type: LocalisedTextDto }) title!: LocalisedText;
  @ApiProperty() agency!: string;
  @ApiProperty({ type: LocalisedTextDto }) agencyName!: LocalisedText;
  @ApiProperty({ enum: ['automatic', 'decision', 'citizen-task'] }) kind!: string;
  @ApiProperty({ enum: STEP_STATES }) state!: string;
  @ApiPropertyOptional({ nullable: true, description: "The agency's own case number" })
  agencyReference!: string | null;
  @ApiPropertyOptional({ nullable: true }) expectedDecisionAt!: string | null;
  @ApiPropertyOptional({ nullable: true }) deadline!: string | null;
  @ApiProperty() overdue!: boolean;
  @ApiProperty({
    description:
      'The step takes longer than it should: past its deadline, or held up on our side (the agency cannot take it yet). Nothing is needed from you.',
  })
  delayed!: boolean;
  @ApiPropertyOptional({ type: TaskDto, description: 'Present while the step waits for you' })
  task?: TaskDto;
}

export class CaseViewDto {
  @ApiProperty() id!: string;
  @ApiProperty() lifeEvent!: string;
  @ApiProperty() version!: number;
  @ApiProperty({ type: LocalisedTextDto }) title!: LocalisedText;
  @ApiProperty({ enum: CASE_STATUSES }) status!: CaseStatus;
  @ApiProperty() createdAt!: string;
  @ApiPropertyOptional({ nullable: true }) submittedAt!: string | null;
  @ApiPropertyOptional({ nullable: true }) finishedAt!: string | null;
  @ApiProperty({ description: 'Grows with every change (the last event number)' })
  revision!: number;
  @ApiProperty({
    type: ResolutionDto,
    description:
      'Each fact the case needs and where it came from; questions only while the case is open (after, state is ready and questions empty)',
  })
  resolution!: ResolutionDto;
  @ApiProperty({ type: [StepViewDto] }) steps!: StepViewDto[];
}

export class CaseListItemDto {
  @ApiProperty() id!: string;
  @ApiProperty() lifeEvent!: string;
  @ApiProperty() version!: number;
  @ApiProperty({ enum: CASE_STATUSES }) status!: CaseStatus;
  @ApiProperty() createdAt!: string;
  @ApiProperty() updatedAt!: string;
  @ApiPropertyOptional({ nullable: true }) submittedAt!: string | null;
  @ApiPropertyOptional({ nullable: true }) finishedAt!: string | null;
}

export class CaseListDto {
  @ApiProperty({ type: [CaseListItemDto] }) cases!: CaseListItemDto[];
  @ApiPropertyOptional({ nullable: true }) next!: string | null;
}

export class PreviewSourceDto {
  @ApiProperty({
    enum: [...FACT_RECORD_SOURCES, 'will-be-produced'],
    description: 'Where the value comes from; will-be-produced: an earlier step yields it',
  })
  kind!: FactRecordSource | 'will-be-produced';
  @ApiPropertyOptional({ description: 'On file from an earlier case rather than this one' })
  reused?: boolean;
  @ApiPropertyOptional() agency?: string;
  @ApiPropertyOptional() caseId?: string;
  @ApiPropertyOptional() stepId?: string;
  @ApiPropertyOptional() recordedAt?: string;
}

export class PreviewFactDto {
  @ApiProperty() key!: string;
  @ApiProperty({ type: LocalisedTextDto }) label!: LocalisedText;
  @ApiPropertyOptional({ description: 'The value sent; absent when a step will produce it first' })
  value?: FactValue;
  @ApiProperty({ type: PreviewSourceDto }) source!: PreviewSourceDto;
}

export class PreviewStepDto {
  @ApiProperty() stepId!: string;
  @ApiProperty({ type: LocalisedTextDto }) title!: LocalisedText;
  @ApiProperty({ description: "Runs only if a condition on an agency's answer holds" })
  conditional!: boolean;
  @ApiProperty({ type: [PreviewFactDto] }) facts!: PreviewFactDto[];
}

export class PreviewAgencyDto {
  @ApiProperty() agency!: string;
  @ApiProperty({ type: LocalisedTextDto }) name!: LocalisedText;
  @ApiProperty({ type: [PreviewStepDto] }) steps!: PreviewStepDto[];
}

export class PreviewDto {
  @ApiProperty() caseId!: string;
  @ApiProperty({ description: 'Name it in the submit: consent to exactly this preview' })
  checksum!: string;
  @ApiProperty({ type: [PreviewAgencyDto] }) agencies!: PreviewAgencyDto[];
}

export class SentToDto {
  @ApiProperty() agency!: string;
  @ApiProperty() caseId!: string;
  @ApiPropertyOptional({ nullable: true }) stepId!: string | null;
  @ApiProperty() at!: string;
}

export class FactRecordDto {
  @ApiProperty() id!: string;
  @ApiProperty() key!: string;
  @ApiProperty({ type: LocalisedTextDto }) label!: LocalisedText;
  @ApiProperty({ description: 'The value (JSON)' }) value!: unknown;
  @ApiProperty({ enum: FACT_RECORD_SOURCES }) source!: FactRecordSource;
  @ApiPropertyOptional({ nullable: true }) agency!: string | null;
  @ApiPropertyOptional({ nullable: true }) caseId!: string | null;
  @ApiPropertyOptional({ nullable: true }) stepId!: string | null;
  @ApiPropertyOptional({ nullable: true, description: 'The record this one replaced' })
  supersedes!: string | null;
  @ApiProperty({ description: 'False for a record a newer one replaced' }) current!: boolean;
  @ApiProperty() recordedAt!: string;
  @ApiProperty({ type: [SentToDto], description: 'Who received this very value' })
  sentTo!: SentToDto[];
}

export class FactListDto {
  @ApiProperty({ type: [FactRecordDto] }) facts!: FactRecordDto[];
}

export class DisclosureDto {
  @ApiProperty() id!: string;
  @ApiProperty() caseId!: string;
  @ApiProperty() lifeEvent!: string;
  @ApiProperty() agency!: string;
  @ApiProperty({ type: LocalisedTextDto }) agencyName!: LocalisedText;
  @ApiPropertyOptional({ nullable: true }) stepId!: string | null;
  @ApiProperty({ enum: ['step', 'lookup'], description: 'Sent with a step, or to look facts up' })
  purpose!: 'step' | 'lookup';
  @ApiProperty({ type: [String] }) factKeys!: string[];
  @ApiProperty({ type: [String] }) factRecordIds!: string[];
  @ApiProperty({
    enum: ['consent', 'lookup'],
    description:
      'consent: you consented to the preview naming it; lookup: to ask the agency for facts of its register about you, for the case you opened',
  })
  basis!: string;
  @ApiProperty() at!: string;
}

export class DisclosurePageDto {
  @ApiProperty({ type: [DisclosureDto] }) disclosures!: DisclosureDto[];
  @ApiPropertyOptional({ nullable: true }) next!: string | null;
}

export class MessageDto {
  @ApiProperty() id!: string;
  @ApiPropertyOptional({ nullable: true }) caseId!: string | null;
  @ApiPropertyOptional({ nullable: true }) stepId!: string | null;
  @ApiProperty({ description: '`leo`, or the agency code' }) sender!: string;
  @ApiProperty({ type: LocalisedTextDto }) senderName!: LocalisedText;
  @ApiProperty({ enum: MESSAGE_KINDS }) kind!: MessageKind;
  @ApiProperty() template!: string;
  @ApiProperty({ type: LocalisedTextDto }) subject!: LocalisedText;
  @ApiProperty({ type: LocalisedTextDto }) body!: LocalisedText;
  @ApiProperty({ type: 'object', additionalProperties: true }) params!: Record<string, unknown>;
  @ApiProperty() at!: string;
  @ApiProperty() read!: boolean;
}

export class MessagePageDto {
  @ApiProperty({ type: [MessageDto] }) messages!: MessageDto[];
  @ApiPropertyOptional({ nullable: true }) next!: string | null;
}
