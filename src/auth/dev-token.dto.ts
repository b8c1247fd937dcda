import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsIn, IsOptional, IsString, Matches, MaxLength, ValidateIf } from 'class-validator';
import { AGENCY_CODE_PATTERN } from '#agency-contract';
import { PRINCIPAL_ROLES, type PrincipalRole } from './principal.js';

export class DevTokenRequestDto {
  @ApiProperty({ enum: PRINCIPAL_ROLES, description: 'Who the token speaks for.' })
  @IsIn(PRINCIPAL_ROLES)
  role!: PrincipalRole;

  @ApiPropertyOptional({
    description:
      'For role citizen: a valid Swedish personal identity number or coordination number (use test numbers).',
    example: '199012119948',
  })
  @ValidateIf((o: DevTokenRequestDto) => o.role === 'citizen' || o.personalNumber !== undefined)
  @IsString()
  @MaxLength(20)
  personalNumber?: string;

  @ApiPropertyOptional({
    description: 'For role agency: the agency code.',
    example: 'skatteverket',
  })
  @ValidateIf((o: DevTokenRequestDto) => o.role === 'agency' || o.agency !== undefined)
  @IsString()
  @Matches(AGENCY_CODE_PATTERN, {
    message: 'agency must be a lower-case agency code such as skatteverket',
  })
  agency?: string;

  @ApiPropertyOptional({
    description: 'The token subject; derived when omitted.',
    example: 'admin-anna',
  })
  @IsOptional()
  @IsString()
  @Matches(/^[A-Za-z0-9._:@-]{1,64}$/, { message: 'subject must be 1-64 letters, digits or ._:@-' })
  subject?: string;
}

export class DevTokenResponseDto {
  @ApiProperty() accessToken!: string;
  @ApiProperty({ example: 'Bearer' }) tokenType!: 'Bearer';
  @ApiProperty({ description: 'Seconds until the token expires.' }) expiresIn!: number;
}

export class PrincipalDto {
  @ApiProperty({ enum: PRINCIPAL_ROLES }) role!: PrincipalRole;
  @ApiProperty() subject!: string;
  @ApiPropertyOptional({ description: 'For agency callers.' }) agency?: string;
}
