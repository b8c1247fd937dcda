import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { ANSWER_LIMITS, type FactValue } from '#agency-contract';
import {
  IsIn,
  IsObject,
  IsOptional,
  IsString,
  IsUUID,
  Matches,
  MaxLength,
  MinLength,
  ValidateIf,
} from 'class-validator';

export class AgencyDecisionDto {
  @ApiProperty({
    format: 'uuid',
    description: 'The step run the decision is for (from the job: stepRunId).',
  })
  @IsUUID()
  stepRunId!: string;

  @ApiProperty({
    enum: ['completed', 'rejected'],
    description: 'completed: approved, with the facts produced; rejected: refused.',
  })
  @IsIn(['completed', 'rejected'])
  outcome!: 'completed' | 'rejected';

  @ApiPropertyOptional({
    type: 'object',
    additionalProperties: true,
    description: 'For completed: exactly the facts the step produces, by fact key.',
  })
  @ValidateIf((o: AgencyDecisionDto) => o.outcome === 'completed')
  @IsObject()
  produced?: Record<string, FactValue>;

  @ApiPropertyOptional({ description: "The agency's own reference (diarienummer)." })
  @IsOptional()
  @IsString()
  @MinLength(1)
  @MaxLength(ANSWER_LIMITS.referenceMaxLength)
  reference?: string;

  @ApiPropertyOptional({
    description: 'For rejected: a stable code.',
    example: 'incomplete-application',
  })
  @ValidateIf((o: AgencyDecisionDto) => o.outcome === 'rejected')
  @Matches(ANSWER_LIMITS.codePattern, { message: 'code must be a kebab-case code' })
  code?: string;

  @ApiPropertyOptional({ description: 'For rejected: the reason, for the citizen.' })
  @ValidateIf((o: AgencyDecisionDto) => o.outcome === 'rejected')
  @IsString()
  @MinLength(1)
  @MaxLength(ANSWER_LIMITS.reasonMaxLength)
  reason?: string;
}

export class DecisionAcceptedDto {
  @ApiProperty({ example: true }) applied!: true;
}
